"""Soak: one worker under a steady open-loop load for a long time; does anything drift?

    .venv/bin/python bench/soak.py                       # 20 min at half the measured max rate
    .venv/bin/python bench/soak.py --minutes 2 --rate 10 --out /tmp/soak-smoke   # a smoke run

A broker of its own (or KAFKA_BOOTSTRAP_SERVERS), topics with a unique prefix, the ML-1M
catalog and ONE worker (bench Context). Queries arrive as a Poisson process at --rate q/s
(default: half of `max_achieved_qps` in docs/bench/load.json, the README's "max load"),
from --users users, with one click per query: on an item of that user's last answer (with
its request_id, so the blend learns) or, before the user has one, a random catalog item.
Every --interval seconds: worker (and broker) RSS, the group's lag on queries and
feedback, p50/p99 of the answers that arrived in that window, answers/s, index size and
users. Writes <out>/soak.json (samples, least-squares slopes per hour over the whole run
and its second half) and <out>/soak.png.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    OPTIONS,
    ROOT,
    SEED,
    Context,
    log,
    out_dir,
    pct,
    queries,
    set_out_dir,
    settings_record,
    write_json,
)
from e2e import Listener, cpu_seconds, machine_busy_seconds

LOAD_JSON = ROOT / "docs" / "bench" / "load.json"
K = 10


def default_rate(path: Path) -> tuple[float, dict[str, Any]]:
    """Half of the measured max rate: ``max_achieved_qps`` of the load part, the figure the
    README calls the max load (its "p99 at half of max load" row uses the same half)."""
    results = json.loads(path.read_text())["results"]
    max_qps = float(results["max_achieved_qps"])
    source = {
        "from": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
        "field": "results.max_achieved_qps",
        "max_achieved_qps": max_qps,
        "max_offered_qps_under_p99_bound (not used)": results.get("max_offered_qps_under_bound"),
        "rule": "rate = max_achieved_qps / 2",
    }
    return round(max_qps / 2, 1), source


def vm_rss_mib(pid: int | None) -> float | None:
    """VmRSS of a process in MiB (None when it is gone or unknown)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def broker_pid(ctx: Context) -> int | None:
    """The local broker's pid from kafka.sh's pid file (None with an external cluster)."""
    pid_file = Path(ctx._tmp) / "kafka" / "broker.pid"  # local_broker's data dir in Context
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


class SoakListener(Listener):
    """Matches every answer to its query on arrival: latency from the scheduled send time,
    the window's latencies, and each user's last answer (for the next click)."""

    def __init__(self, settings: Any) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, tuple[float, str]] = {}  # request_id → (scheduled, user)
        self.window: list[float] = []
        self.window_replies: list[Any] = []
        self.last_answer: dict[str, tuple[str, list[str]]] = {}
        self.statuses: Counter[str] = Counter()
        self.answered = 0
        super().__init__(settings)

    def _listen(self) -> None:
        for reply in self.client.subscribe():
            now = time.perf_counter()
            with self.lock:
                entry = self.pending.pop(reply.request_id, None)
                if entry is None:  # a probe (or a repeat after a rebalance)
                    self.arrived[reply.request_id] = (now, reply)
                    continue
                scheduled, user = entry
                self.window.append((now - scheduled) * 1000.0)
                self.window_replies.append(reply)
                self.statuses[reply.status] += 1
                self.answered += 1
                items = [item.item_id for item in reply.items]
                if items:
                    self.last_answer[user] = (reply.request_id, items)

    def take_window(self) -> tuple[list[float], list[Any]]:
        with self.lock:
            latencies, replies = self.window, self.window_replies
            self.window, self.window_replies = [], []
        return latencies, replies


class Sender(threading.Thread):
    """Open-loop Poisson queries at ``rate`` q/s, one click per query."""

    def __init__(self, listener: SoakListener, items: list[str], rate: float, users: int) -> None:
        super().__init__(name="soak-sender", daemon=True)
        self.listener = listener
        self.items = items
        self.rate = rate
        self.users = [f"soak-{i}" for i in range(users)]
        self.stop = threading.Event()
        self.sent = 0
        self.clicks_on_answers = 0
        self.clicks_random = 0
        self.users_clicked: set[str] = set()
        self.max_sender_lag_ms = 0.0
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # recorded, the main loop stops on it
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        rng = np.random.default_rng(SEED)
        pick = random.Random(SEED)
        texts = queries(997)
        client = self.listener.client
        next_at = time.perf_counter() + 0.2
        i = 0
        while not self.stop.is_set():
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.max_sender_lag_ms = max(
                self.max_sender_lag_ms, (time.perf_counter() - next_at) * 1000.0
            )
            user = self.users[int(rng.integers(len(self.users)))]
            rid = f"soak-{i}"
            with self.listener.lock:
                self.listener.pending[rid] = (next_at, user)
                last = self.listener.last_answer.pop(user, None)
            client.send_query(user, texts[i % len(texts)], k=K, request_id=rid)
            if last is not None:
                shown_rid, shown = last
                client.feedback(user, pick.choice(shown), "click", request_id=shown_rid)
                self.clicks_on_answers += 1
            else:
                client.feedback(user, pick.choice(self.items), "click")
                self.clicks_random += 1
            self.users_clicked.add(user)
            self.sent += 1
            i += 1
            next_at += float(rng.exponential(1.0 / self.rate))
        client.flush()


def slope_per_hour(t_min: list[float], values: list[float | None]) -> float | None:
    """Least-squares slope of ``values`` against time, per hour (None: < 3 points)."""
    pts = [(t, v) for t, v in zip(t_min, values, strict=True) if v is not None]
    if len(pts) < 3:
        return None
    t = np.array([p[0] for p in pts]) / 60.0
    v = np.array([p[1] for p in pts], dtype=np.float64)
    if np.ptp(t) == 0:
        return None
    return round(float(np.polyfit(t, v, 1)[0]), 3)


METRICS = {  # sample field → unit of its slope
    "worker_rss_mib": "MiB/h",
    "broker_rss_mib": "MiB/h",
    "lag_queries": "records/h",
    "lag_feedback": "records/h",
    "p50_ms": "ms/h",
    "p99_ms": "ms/h",
    "answers_per_s": "answers/s per h",
    "worker_cpu_cores": "cores/h",
}


def summarize(samples: list[dict[str, Any]], minutes: float) -> dict[str, Any]:
    t = [s["t_min"] for s in samples]
    second = [s for s in samples if s["t_min"] >= minutes / 2]
    out: dict[str, Any] = {}
    for key, unit in METRICS.items():
        values = [s.get(key) for s in samples]
        present = [v for v in values if v is not None]
        out[key] = {
            "unit_of_slope": unit,
            "slope_whole_run": slope_per_hour(t, values),
            "slope_second_half": slope_per_hour(
                [s["t_min"] for s in second], [s.get(key) for s in second]
            ),
            "start": present[0] if present else None,
            "end": present[-1] if present else None,
            "min": min(present) if present else None,
            "max": max(present) if present else None,
        }
    return out


def plot(samples: list[dict[str, Any]], rate: float, minutes: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_min"] for s in samples]

    def series(key: str) -> list[float]:
        return [float("nan") if s.get(key) is None else s[key] for s in samples]

    fig, (ax_rss, ax_lag, ax_lat) = plt.subplots(3, 1, figsize=(7, 8), dpi=120, sharex=True)
    ax_rss.plot(t, series("worker_rss_mib"), "-", label="worker")
    if any(s.get("broker_rss_mib") is not None for s in samples):
        ax_rss.plot(t, series("broker_rss_mib"), "-", label="broker")
    ax_rss.set_ylabel("RSS (MiB)")
    ax_lag.plot(t, series("lag_queries"), "-", label="queries")
    ax_lag.plot(t, series("lag_feedback"), "-", label="feedback")
    ax_lag.set_ylabel("consumer lag (records)")
    ax_lat.plot(t, series("p50_ms"), "-", label="p50")
    ax_lat.plot(t, series("p99_ms"), "-", label="p99")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("publish → answer (ms)")
    ax_lat.set_xlabel("minutes into the load")
    ax_rss.set_title(f"Soak: one worker, {rate:g} q/s + 1 click per query, {minutes:g} min")
    for ax in (ax_rss, ax_lag, ax_lat):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = out_dir() / "soak.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def sample(
    ctx: Context,
    listener: SoakListener,
    sender: Sender,
    probe: Any,
    t0: float,
    prev: dict[str, float],
    broker: int | None,
) -> dict[str, Any]:
    """One row: what the window since ``prev`` saw."""
    pid = ctx.worker.process.pid
    now = time.monotonic()
    wall = max(now - prev["at"], 1e-9)
    latencies, replies = listener.take_window()
    lag: dict[str, int | None] = {}
    for topic in ("queries", "feedback"):
        try:
            lag[topic] = probe.lag(topic)
        except Exception as exc:  # a slow or failed admin call is a gap, not the end
            log(f"lag of {topic}: {exc}")
            lag[topic] = None
    cpu, busy = cpu_seconds(pid), machine_busy_seconds()
    lat = pct(latencies, 50, 99)
    row = {
        "t_min": round((now - t0) / 60.0, 3),
        "worker_rss_mib": vm_rss_mib(pid),
        "broker_rss_mib": vm_rss_mib(broker),
        "lag_queries": lag["queries"],
        "lag_feedback": lag["feedback"],
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
        "answers": len(latencies),
        "answers_per_s": round(len(latencies) / wall, 2),
        "sent_total": sender.sent,
        "answered_total": listener.answered,
        "worker_cpu_cores": round((cpu - prev["cpu"]) / wall, 3),
        "machine_busy_cores": round((busy - prev["busy"]) / wall, 3),
        "index_size": replies[-1].index_size if replies else None,
        "users_clicked": len(sender.users_clicked),
        "user_events_max": max((r.user_events for r in replies), default=None),
        "user_events_mean": (
            round(sum(r.user_events for r in replies) / len(replies), 1) if replies else None
        ),
    }
    prev.update(at=now, cpu=cpu, busy=busy)
    return row


def run(args: argparse.Namespace) -> int:
    if args.rate:
        rate, rate_source = float(args.rate), {"from": "--rate"}
    else:
        rate, rate_source = default_rate(Path(args.load_json))
    log(f"soak: {rate:g} q/s + one click per query for {args.minutes:g} min ({rate_source})")
    ctx = Context(model_settings=dict(item.split("=", 1) for item in args.set))
    samples: list[dict[str, Any]] = []
    died: dict[str, Any] | None = None
    stop_reason = "ran the whole time"
    try:
        ctx.client()
        settings = ctx.settings()
        from streaming_rec.edge.lag import LagProbe

        items = [m.item_id for m in ctx.movies()]
        listener = SoakListener(settings)
        probe = LagProbe(settings)
        broker = broker_pid(ctx)
        pid = ctx.worker.process.pid
        sender = Sender(listener, items, rate, args.users)
        t0 = time.monotonic()
        prev = {"at": t0, "cpu": cpu_seconds(pid), "busy": machine_busy_seconds()}
        sender.start()
        end = t0 + args.minutes * 60.0
        try:
            while time.monotonic() < end:
                time.sleep(max(0.0, min(args.interval, end - time.monotonic())))
                if not ctx.worker.alive():
                    died = {
                        "at_min": round((time.monotonic() - t0) / 60.0, 3),
                        "returncode": ctx.worker.process.returncode,
                        "log_tail": ctx.worker_log_tail(40),
                    }
                    stop_reason = "the worker died"
                    log(f"soak: the worker died at {died['at_min']} min; stopping")
                    break
                if sender.error:
                    stop_reason = f"the sender failed: {sender.error}"
                    log(stop_reason)
                    break
                row = sample(ctx, listener, sender, probe, t0, prev, broker)
                samples.append(row)
                log(
                    f"soak {row['t_min']:6.2f} min: worker RSS {row['worker_rss_mib']} MiB,"
                    f" lag q/f {row['lag_queries']}/{row['lag_feedback']},"
                    f" p50/p99 {row['p50_ms']}/{row['p99_ms']} ms,"
                    f" {row['answers_per_s']} answers/s"
                )
        finally:
            sender.stop.set()
            sender.join(timeout=30)
        # drain: until every query is answered or none came for --drain-idle seconds
        last, changed, deadline = -1, time.monotonic(), time.monotonic() + 120
        while died is None and time.monotonic() < deadline:
            with listener.lock:
                left = len(listener.pending)
            if left == 0:
                break
            if left != last:
                last, changed = left, time.monotonic()
            elif time.monotonic() - changed > args.drain_idle:
                break
            time.sleep(0.5)
        with listener.lock:
            lost = len(listener.pending)
        tail_latencies, _ = listener.take_window()
        probe.close()
        listener.close()
        minutes_run = samples[-1]["t_min"] if samples else 0.0
        results = {
            "rate_qps": rate,
            "rate_source": rate_source,
            "minutes_planned": args.minutes,
            "minutes_run": minutes_run,
            "stop_reason": stop_reason,
            "worker_died": died,
            "queries_sent": sender.sent,
            "queries_answered": listener.answered,
            "queries_lost": lost,
            "answered_after_the_load (drain)": len(tail_latencies),
            "status_counts": dict(listener.statuses),
            "clicks_sent": sender.clicks_on_answers + sender.clicks_random,
            "clicks_on_a_shown_item": sender.clicks_on_answers,
            "clicks_on_a_random_item": sender.clicks_random,
            "users": args.users,
            "max_sender_lag_ms": round(sender.max_sender_lag_ms, 1),
            "summary": summarize(samples, minutes_run),
            "samples": samples,
        }
        if samples:
            results["plot"] = str(plot(samples, rate, minutes_run))
        log(
            f"soak: sent {sender.sent}, answered {listener.answered}, lost {lost};"
            f" slopes (whole / 2nd half): worker RSS"
            f" {results['summary']['worker_rss_mib']['slope_whole_run']} /"
            f" {results['summary']['worker_rss_mib']['slope_second_half']} MiB/h, p99"
            f" {results['summary']['p99_ms']['slope_whole_run']} /"
            f" {results['summary']['p99_ms']['slope_second_half']} ms/h"
        )
        doc = settings_record(settings)
        doc.update(
            {
                "rate_qps": rate,
                "minutes": args.minutes,
                "interval_s": args.interval,
                "arrivals": "Poisson (exponential gaps, open loop, seeded)",
                "clicks": "one per query: an item of the user's last answer, else random",
                "users": args.users,
                "k": K,
                "seed": SEED,
                "latency_from": "scheduled send time (open loop)",
            }
        )
        write_json("soak", results, doc)
    except BaseException:
        if ctx.worker is not None:
            log("worker log tail:\n" + ctx.worker_log_tail())
        raise
    finally:
        ctx.close()
    return 1 if died else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="load duration (min)")
    parser.add_argument("--rate", type=float, default=0.0, help="q/s (default: half max)")
    parser.add_argument("--users", type=int, default=300, help="users sending queries/clicks")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds per sample")
    parser.add_argument("--drain-idle", type=float, default=10.0, help="end of the drain (s)")
    parser.add_argument("--load-json", default=str(LOAD_JSON), help="where the max rate is")
    parser.add_argument("--out", default="", help="output folder (default docs/bench)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a worker setting"
    )
    args = parser.parse_args(argv)
    if args.out:
        set_out_dir(Path(args.out))
    OPTIONS.update(vars(args))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
