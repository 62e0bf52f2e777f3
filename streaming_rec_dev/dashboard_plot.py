"""The dashboard's main queries over a real run, as a picture (Grafana is not installable
here: this stands in for a screenshot of deploy/grafana/streaming-rec.json).

    python -m streaming_rec_dev.dashboard_plot [--seconds 150] [--out docs/deploy]

A broker of its own, the MovieLens-1M catalog (make data), one worker and the trainer
(real model); queries at a steady rate with clicks on the first item, a flood at one third
(lag grows and drains), a few undecodable queries at two thirds (dead letters). Both
/metrics pages are scraped every SCRAPE_S seconds; the panels are computed from the
scrapes the way Prometheus would (rate over a window, histogram_quantile with linear
interpolation inside a bucket). Writes dashboard.png and dashboard-run.json (the series).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from streaming_rec.edge.client import RecClient
from streaming_rec_dev.datasets.movielens import load_movies
from streaming_rec_dev.devstack import (
    WorkerProcess,
    free_port_pair,
    fresh_topics,
    local_broker,
    worker_env,
)

SCRAPE_S = 2.0
WINDOW_S = 10.0  # the rate window ($__rate_interval of a 2 s scrape)
Labels = tuple[tuple[str, str], ...]
Scrape = dict[tuple[str, Labels], float]


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def total(sample: Scrape, name: str, where: Callable[[dict[str, str]], bool] = bool) -> float:
    return sum(
        v for (n, labels), v in sample.items() if n == name and where(dict(labels) or {"": ""})
    )


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's histogram_quantile over cumulative bucket counts (le → count)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    below, lower = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / max(count - below, 1e-12)
        below, lower = count, le
    return None


class Load:
    """Queries at ``rate`` per second from a few users, a click on each first item."""

    def __init__(self, client: RecClient, rate: float) -> None:
        self.client, self.rate = client, rate
        self.stop = threading.Event()
        self.flood = threading.Event()

    def run(self) -> None:
        texts = ["a funny animated film", "a dark thriller", "space adventure", "a love story"]
        i = 0
        while not self.stop.is_set():
            if self.flood.is_set():
                for j in range(600):
                    self.client.send_query(f"flood-{j % 50}", texts[j % 4])
                self.client.flush()
                self.flood.clear()
            user = f"user-{i % 40}"
            try:
                reply = self.client.ask(user, texts[i % 4], timeout=20)
                if reply.items:
                    self.client.feedback(
                        user, reply.items[0].item_id, "click", request_id=reply.request_id
                    )
            except Exception:  # a timeout under the flood: the next one
                pass
            i += 1
            time.sleep(1.0 / self.rate)


def run(seconds: float, out: Path, rate: float) -> None:
    movies = load_movies("ml-1m")
    with tempfile.TemporaryDirectory() as tmp, local_broker(Path(tmp) / "kafka") as bootstrap:
        settings = fresh_topics(bootstrap, Path(tmp) / "worker", "dash")
        trainer_port = free_port_pair()
        with RecClient(settings, listen=False, bulk=True) as loader:
            for movie in movies:
                loader.upsert_item(movie.as_item())
            loader.flush()
        env = worker_env(settings, "dash-worker", SREC_TRAINER_WEB_PORT=str(trainer_port))
        worker = WorkerProcess(env, Path(tmp) / "worker.log", settings.web_port)
        trainer_env = {**env, "SREC_TRAINER_INTERVAL_S": "10", "SREC_DATA_DIR": f"{tmp}/trainer"}
        trainer = WorkerProcess(trainer_env, Path(tmp) / "trainer.log", trainer_port, "trainer")
        worker.start()
        trainer.start()
        series: list[dict[str, Any]] = []
        try:
            worker.wait_ready(min_items=len(movies), timeout=600)
            trainer.wait_ready(timeout=300)
            with RecClient(settings) as client:
                load = Load(client, rate)
                thread = threading.Thread(target=load.run, daemon=True)
                thread.start()
                started = time.monotonic()
                flooded = bad = False
                while (t := time.monotonic() - started) < seconds:
                    if not flooded and t > seconds / 3:
                        load.flood.set()
                        flooded = True
                    if not bad and t > 2 * seconds / 3:
                        for k in range(20):
                            client.send_raw("queries", b"bad-%d" % k, b"not json")
                        client.flush()
                        bad = True
                    worker_sample, trainer_sample = scrape(worker.port), scrape(trainer_port)
                    series.append({"t": t, "worker": worker_sample, "trainer": trainer_sample})
                    time.sleep(SCRAPE_S)
                load.stop.set()
                thread.join(30)
        finally:
            worker.stop(timeout=30)
            trainer.stop(timeout=30)
    panels = compute(series)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dashboard-run.json").write_bytes(
        orjson.dumps(
            {"seconds": seconds, "rate": rate, "panels": panels}, option=orjson.OPT_INDENT_2
        )
    )
    plot(panels, out / "dashboard.png")
    print(f"wrote {out / 'dashboard.png'} and {out / 'dashboard-run.json'}")


def compute(series: list[dict[str, Any]]) -> dict[str, Any]:
    """The main panels' series from the scrapes (t in s from the start of the load)."""
    lag_step = max(1, int(WINDOW_S / SCRAPE_S))
    panels: dict[str, Any] = {"t": [], "answers_per_s": [], "dead_letters_per_s": []}
    for name in ("p50", "p99"):
        panels[f"stage_{name}_ms"] = {}
    panels.update(lag={}, index_items=[], rss_mib={}, blend={}, trainer_refreshes=[])
    for i, now in enumerate(series):
        w, tr = now["worker"], now["trainer"]
        panels["t"].append(round(now["t"], 1))
        before = series[max(0, i - lag_step)]
        dt = max(now["t"] - before["t"], 1e-9)

        answers = _rate(
            w,
            before["worker"],
            dt,
            "streaming_rec_messages_total",
            lambda lab: lab.get("outcome") == "ok" and lab.get("topic", "").endswith("queries"),
        )
        panels["answers_per_s"].append(round(answers if i else 0.0, 2))
        panels["dead_letters_per_s"].append(
            round(
                _rate(w, before["worker"], dt, "streaming_rec_dead_letters_total", lambda lab: True)
                if i
                else 0.0,
                3,
            )
        )
        for stage in ("queue", "embed", "search", "rank", "total"):
            buckets: dict[float, float] = {}
            for (n, labels), v in w.items():
                lab = dict(labels)
                if n == "streaming_rec_stage_seconds_bucket" and lab.get("stage") == stage:
                    old = before["worker"].get((n, labels), 0.0)
                    buckets[float(lab["le"])] = v - old
            for q, key in ((0.5, "stage_p50_ms"), (0.99, "stage_p99_ms")):
                value = quantile(q, buckets) if i else None
                panels[key].setdefault(stage, []).append(
                    None if value is None else round(value * 1000, 3)
                )
        topics: dict[str, float] = {}
        for (n, labels), v in w.items():
            if n == "streaming_rec_consumer_lag_records":
                topic = dict(labels)["topic"].split(".", 1)[-1]
                topics[topic] = topics.get(topic, 0.0) + v
        for topic in set(topics) | set(panels["lag"]):
            panels["lag"].setdefault(topic, [None] * i).append(topics.get(topic))
        panels["index_items"].append(total(w, "streaming_rec_index_items"))
        for who, sample in (("worker", w), ("trainer", tr)):
            rss = total(sample, "process_resident_memory_bytes") / 2**20
            panels["rss_mib"].setdefault(who, []).append(round(rss, 1))
        for (n, labels), v in w.items():
            if n == "streaming_rec_blend_weight":
                panels["blend"].setdefault(dict(labels)["name"], []).append(round(v, 4))
        panels["trainer_refreshes"].append(total(tr, "streaming_rec_trainer_refreshes_total"))
    return panels


def _rate(
    now: Scrape, before: Scrape, dt: float, name: str, where: Callable[[dict[str, str]], bool]
) -> float:
    """Per-second increase of a counter over ``dt`` seconds (a restart counts as 0)."""
    return max(0.0, total(now, name, where) - total(before, name, where)) / dt


def plot(panels: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = panels["t"]
    fig, axes = plt.subplots(3, 3, figsize=(16, 11))
    fig.suptitle("streaming_rec dashboard queries over a real run (1 worker, trainer, ML-1M)")
    ax = axes[0][0]
    ax.plot(t, panels["answers_per_s"])
    ax.set_title("Answers/s (rate of messages_total{outcome=ok})")
    for ax, key, title in (
        (axes[0][1], "stage_p50_ms", "Stage latency p50 (ms)"),
        (axes[0][2], "stage_p99_ms", "Stage latency p99 (ms)"),
    ):
        for stage, values in panels[key].items():
            ax.plot(t, [math.nan if v is None else v for v in values], label=stage)
        ax.set_title(title)
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax = axes[1][0]
    for topic, values in sorted(panels["lag"].items()):
        ax.plot(t, [math.nan if v is None else v for v in values], label=topic)
    ax.set_title("Consumer lag by topic (records)")
    ax.legend(fontsize=8)
    axes[1][1].plot(t, panels["dead_letters_per_s"], color="tab:red")
    axes[1][1].set_title("Dead letters/s")
    axes[1][2].plot(t, panels["index_items"])
    axes[1][2].set_title("Index items")
    ax = axes[2][0]
    for name, values in panels["blend"].items():
        ax.plot(t[: len(values)], values, label=name)
    ax.set_title("Blend weights")
    ax.legend(fontsize=8)
    axes[2][1].step(t, panels["trainer_refreshes"], where="post")
    axes[2][1].set_title("Trainer refreshes (total)")
    ax = axes[2][2]
    for who, values in panels["rss_mib"].items():
        ax.plot(t, values, label=who)
    ax.set_title("Resident memory (MiB)")
    ax.legend(fontsize=8)
    for row in axes:
        for ax in row:
            ax.set_xlabel("s")
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--rate", type=float, default=20.0, help="queries/s of the steady load")
    parser.add_argument("--out", type=Path, default=Path("docs/deploy"))
    args = parser.parse_args()
    run(args.seconds, args.out, args.rate)


if __name__ == "__main__":
    main()
