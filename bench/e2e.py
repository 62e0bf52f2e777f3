"""Parts 2 and 3 through Kafka and one worker process.

idle: one ask at a time on an idle worker (warm client), beside the in-process
      encode+search+rank of the same query texts, interleaved in the same run.
load: open-loop Poisson arrivals at rising rates; a sender thread that never waits and a
      listener that stamps each answer on arrival; then one step at half the max load.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from common import SEED, Context, log, median, pct, queries, settings_record, stage_medians
from common import write_json as _write
from floor import time_one

P99_BOUND_MS = 100.0  # the speed issue's aim: the highest offered rate with p99 ≤ 100 ms
RATES = (10, 25, 50, 100, 150, 200, 250, 300, 400, 600, 800)


# --- helpers ------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mean_batch(replies: list[Any]) -> float | None:
    """Mean query batch size, from the replies: every answer of one micro-batch carries the
    same embed_ms (the batch's one encode), so distinct values count batches. (The worker's
    /metrics histogram would say it directly, but that page answers 500; see the report.)"""
    texts = [r.timings.embed_ms for r in replies if r.timings.embed_ms > 0]
    return round(len(texts) / len(set(texts)), 2) if texts else None


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


# --- idle ---------------------------------------------------------------------------------
def run_idle(ctx: Context) -> dict[str, Any]:
    client = ctx.client()
    rec = ctx.recommender()
    warmup, n = 5, (15 if ctx.quick else 60)
    texts = queries(warmup + n, seed=SEED + 1)
    pid = ctx.worker.process.pid
    time.sleep(2.0)
    c0, w0 = cpu_seconds(pid), time.monotonic()
    time.sleep(5.0)
    idle_cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - w0)
    log(f"idle: worker uses {100 * idle_cpu:.0f}% of a core while nothing is asked")
    rows = []
    for i, text in enumerate(texts):
        local_ms, _ = time_one(rec, text)
        user = f"idle-{uuid.uuid4().hex[:8]}"  # no history, like the in-process request
        t0, wall0 = time.perf_counter(), time.time()
        rid = client.send_query(user, text, k=10)
        client.flush()
        reply = client.wait(rid, timeout=30)
        e2e_ms = (time.perf_counter() - t0) * 1000.0
        wall1 = time.time()
        out_ms = (wall1 - reply.produced_at) * 1000.0  # reply sent → the client has it
        if i >= warmup:
            t = reply.timings
            compute = t.embed_ms + t.search_ms + t.rank_ms
            rows.append(
                {
                    "e2e": e2e_ms,
                    "local": local_ms,
                    "timings": t,
                    "in": t.queue_ms,  # client send → worker has the batch (Kafka + take wait)
                    "compute": compute,
                    "worker_other": t.total_ms - t.queue_ms - compute,
                    "out": out_ms,
                    "client": (wall1 - wall0) * 1000.0 - t.total_ms - out_ms,
                }
            )
        time.sleep(0.15)  # stay idle between asks
    e2e = pct((r["e2e"] for r in rows), 50, 95, 99)
    local = pct((r["local"] for r in rows), 50, 95, 99)
    assert e2e["p50"] is not None and local["p50"] is not None
    results = {
        "n": len(rows),
        "warmup": warmup,
        "e2e_ms": e2e,
        "in_process_ms": local,
        "e2e_minus_in_process_p50_ms": round(e2e["p50"] - local["p50"], 3),
        "stage_median_ms": stage_medians([r["timings"] for r in rows]),
        "where_the_time_goes_median_ms": {
            "kafka_in_and_batch_wait (queue_ms)": median(r["in"] for r in rows),
            "compute (embed+search+rank)": median(r["compute"] for r in rows),
            "worker_other (decode, state, encode, send)": median(r["worker_other"] for r in rows),
            "kafka_out (produced_at → client)": median(r["out"] for r in rows),
            "client_rest": median(r["client"] for r in rows),
        },
        "worker_idle_cpu_share_of_one_core": round(idle_cpu, 3),
    }
    log(f"idle e2e p50 {e2e['p50']} ms (in process {local['p50']} ms)")
    settings = settings_record(ctx.settings())
    settings.update({"asks": n, "warmup": warmup, "gap_s": 0.15, "k": 10})
    _write("idle", results, settings)
    return results


# --- open-loop load -----------------------------------------------------------------------
class Listener:
    """Stamps every recommendation on arrival (perf_counter), by request_id."""

    def __init__(self, settings: Any) -> None:
        from streaming_rec.edge.client import RecClient

        self.client = RecClient(settings, listen=False)
        self.arrived: dict[str, tuple[float, Any]] = {}
        self.thread = threading.Thread(target=self._listen, name="bench-listener", daemon=True)
        self.thread.start()
        for _ in range(60):  # the consumer is positioned once a probe comes back
            rid = f"probe-{uuid.uuid4().hex}"
            self.client.send_query("bench-probe", "probe", k=1, request_id=rid)
            self.client.flush()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if rid in self.arrived:
                    return
                time.sleep(0.01)
        raise RuntimeError("the listener never saw a probe answer")

    def _listen(self) -> None:
        for reply in self.client.subscribe():
            self.arrived[reply.request_id] = (time.perf_counter(), reply)

    def close(self) -> None:
        self.client.close()
        self.thread.join(timeout=5)


def step(listener: Listener, pid: int, rate: float, seconds: float, tag: str) -> dict[str, Any]:
    """Offer ``rate`` q/s (Poisson, seeded) for ``seconds``; wait for the answers."""
    client = listener.client
    rng = np.random.default_rng(SEED + int(rate * 10))
    n = max(1, int(rate * seconds))
    # Poisson arrivals conditioned on n in the window: sorted uniform times, so the offered
    # rate is exactly n / seconds and the steps compare like with like
    schedule = np.sort(rng.uniform(0.0, seconds, n))
    texts = queries(n, seed=SEED + int(rate))
    sent: list[tuple[str, float, float]] = []
    cpu0 = (cpu_seconds(pid), time.process_time(), machine_busy_seconds(), time.monotonic())
    start = time.perf_counter() + 0.2

    def sender() -> None:
        for i in range(n):
            target = start + float(schedule[i])
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            rid = f"{tag}-{i}"
            actual = time.perf_counter()
            client.send_query(f"load-{i % 1000}", texts[i], k=10, request_id=rid)
            sent.append((rid, target, actual))
        client.flush()

    thread = threading.Thread(target=sender, name="bench-sender")
    thread.start()
    thread.join()
    # drain: until all are answered, or no answer came for 5 s (at most 120 s)
    last_count, last_change, deadline = -1, time.monotonic(), time.monotonic() + 120
    while time.monotonic() < deadline:
        count = sum(1 for rid, _, _ in sent if rid in listener.arrived)
        if count == n:
            break
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > 5.0:
            break
        time.sleep(0.2)
    cpu1 = (cpu_seconds(pid), time.process_time(), machine_busy_seconds(), time.monotonic())
    wall = cpu1[3] - cpu0[3]
    worker_s, client_s, busy_s = (cpu1[i] - cpu0[i] for i in range(3))
    got = [
        (listener.arrived.pop(rid), target, actual)
        for rid, target, actual in sent
        if rid in listener.arrived
    ]
    latencies = [(recv - target) * 1000.0 for (recv, _), target, _ in got]
    lags = [(actual - target) * 1000.0 for _, target, actual in sent]
    last_recv = max((recv for (recv, _), _, _ in got), default=start + seconds)
    return {
        "offered_qps": rate,
        "sent": n,
        "send_rate_qps": round(n / max(sent[-1][2] - start, 1e-9), 1),
        "answered": len(got),
        "answered_share": round(len(got) / n, 4),
        "achieved_qps": round(len(got) / max(last_recv - start, 1e-9), 1),
        "latency_ms": pct(latencies, 50, 95, 99),
        "sender_lag_ms": pct(lags, 50, 99),
        "stage_median_ms": stage_medians([reply.timings for (_, reply), _, _ in got]),
        "cpu_cores_busy": {
            "worker": round(worker_s / wall, 2),
            "bench_client": round(client_s / wall, 2),
            "others (broker, other users)": round((busy_s - worker_s - client_s) / wall, 2),
            "machine": round(busy_s / wall, 2),
        },
        "worker_cpu_ms_per_answer": round(1000 * worker_s / max(len(got), 1), 2),
        "status_counts": dict(Counter(reply.status for (_, reply), _, _ in got)),
        "mean_batch": mean_batch([reply for (_, reply), _, _ in got]),
    }


def closed_loop(ctx: Context, pid: int, askers: int, seconds: float) -> dict[str, Any]:
    """Saturation, steady: ``askers`` threads, each sending its next query as soon as the
    previous one is answered, for ``seconds``; answers/s, latency, worker CPU per answer."""
    from streaming_rec.edge.client import RecClient

    texts = queries(200, seed=SEED + 7)
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    with RecClient(ctx.settings()) as client:
        client.ask("closed-warm", texts[0], timeout=30)

        def asker(n: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                client.ask(f"closed-{n}", texts[(n * 13 + i) % len(texts)], k=10, timeout=30)
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1000.0)
                i += 1

        cpu0, w0 = cpu_seconds(pid), time.monotonic()
        threads = [threading.Thread(target=asker, args=(n,)) for n in range(askers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall, worker_s = time.monotonic() - w0, cpu_seconds(pid) - cpu0
    return {
        "askers": askers,
        "seconds": round(wall, 2),
        "answers": len(latencies),
        "answers_per_s": round(len(latencies) / wall, 1),
        "latency_ms": pct(latencies, 50, 95, 99),
        "worker_cpu_ms_per_answer": round(1000 * worker_s / max(len(latencies), 1), 2),
        "worker_cpu_cores_busy": round(worker_s / wall, 2),
    }


def run_load(ctx: Context, rates: tuple[float, ...] | None = None) -> dict[str, Any]:
    ctx.client()
    settings = ctx.settings()
    seconds = 3.0 if ctx.quick else 15.0
    rates = rates or ((10, 50, 200) if ctx.quick else RATES)
    idle_p50 = (ctx.results.get("idle") or {}).get("e2e_ms", {}).get("p50")
    if idle_p50 is None:
        samples = []
        for i in range(12):
            t0 = time.perf_counter()
            ctx.client().ask(f"load-idle-{i}", queries(12)[i], k=10, timeout=30)
            samples.append((time.perf_counter() - t0) * 1000.0)
        idle_p50 = median(samples[2:])
    assert idle_p50 is not None
    listener = Listener(settings)
    pid = ctx.worker.process.pid
    steps: list[dict[str, Any]] = []
    stop_reason = "ran every rate"
    try:
        for rate in rates:
            log(f"load: offering {rate} q/s for {seconds:g} s")
            row = step(listener, pid, rate, seconds, f"L{rate}-{uuid.uuid4().hex[:6]}")
            steps.append(row)
            log(
                f"load {rate} q/s: achieved {row['achieved_qps']}, p50 {row['latency_ms']['p50']}"
                f" p99 {row['latency_ms']['p99']} ms, answered {row['answered_share']:.3f},"
                f" mean batch {row['mean_batch']}"
            )
            p99 = row["latency_ms"]["p99"]
            if row["achieved_qps"] < 0.9 * rate:
                stop_reason = f"achieved < 0.9 × offered at {rate} q/s"
                break
            if p99 is None or p99 > 10 * idle_p50:
                stop_reason = f"p99 > 10 × idle p50 ({10 * idle_p50:.0f} ms) at {rate} q/s"
                break
        max_qps = max(r["achieved_qps"] for r in steps)
        half = round(max_qps / 2, 1)
        log(f"load: one step at half the max load, {half} q/s")
        half_row = step(listener, pid, half, seconds, f"H-{uuid.uuid4().hex[:6]}")
    finally:
        listener.close()
    ok = [
        r
        for r in steps
        if r["latency_ms"]["p99"] is not None
        and r["latency_ms"]["p99"] <= P99_BOUND_MS
        and r["answered_share"] >= 0.999
        and r["achieved_qps"] >= 0.9 * r["offered_qps"]
    ]
    log("load: closed loop, 16 askers one query after another")
    closed = closed_loop(ctx, pid, askers=16, seconds=seconds)
    log(f"closed loop: {closed['answers_per_s']} answers/s, p50 {closed['latency_ms']['p50']} ms")
    results = {
        "p99_bound_ms": P99_BOUND_MS,
        "closed_loop": closed,
        "idle_p50_ms": idle_p50,
        "steps": steps,
        "stop_reason": stop_reason,
        "max_achieved_qps": max_qps,
        "max_offered_qps_under_bound": max((r["offered_qps"] for r in ok), default=None),
        "half_load": half_row,
    }
    from plots import plot_load

    results["plot"] = str(plot_load(steps, half_row, P99_BOUND_MS))
    settings_doc = settings_record(settings)
    settings_doc.update(
        {
            "rates": list(rates),
            "step_seconds": seconds,
            "arrivals": "Poisson (n = rate × seconds, uniform order statistics)",
            "seed": SEED,
            "users": 1000,
            "k": 10,
            "latency_from": "scheduled send time (open loop)",
        }
    )
    _write("load", results, settings_doc)
    return results
