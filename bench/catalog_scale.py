"""A big catalog through the real topics and one real worker (issue 5, "a million items").

    python bench/catalog_scale.py                  # 1M items (~15 min on 2 cores)
    python bench/catalog_scale.py --items 20000    # a quick look

Three parts, each on a broker of its own (or KAFKA_BOOTSTRAP_SERVERS) with fresh topics:

loader  N synthetic items (JSON lines) published by `streaming-rec load-catalog`: items/s
        into `items`. Then one worker embeds them for --embed-seconds: items/s through the
        encoder into `item-vectors` (the rate a full catalog load runs at, on this machine).
build   N synthetic item vectors (clustered unit vectors, bench/index_scale.py) published
        straight to `item-vectors`, as a trainer or a bulk embedding job would: the
        worker's time to build its index from the topic (batched adds, SREC_HNSW_THREADS),
        its RSS, the items snapshot it writes, a few queries at that size; then a restart,
        which loads the snapshot instead of reading the topic.

Writes docs/bench/catalog_scale.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from common import SEED, log, pct, set_out_dir, write_json
from index_scale import Clusters, parse_scale

from streaming_rec.codec import vector_to_b64
from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec_dev.devstack import WorkerProcess, fresh_topics, local_broker, worker_env

ROOT = Path(__file__).resolve().parents[1]

ADJECTIVES = [
    "silent",
    "bright",
    "broken",
    "golden",
    "hidden",
    "last",
    "lost",
    "red",
    "wild",
    "frozen",
]
NOUNS = [
    "river",
    "city",
    "garden",
    "machine",
    "kingdom",
    "summer",
    "letter",
    "island",
    "storm",
    "mirror",
]
GENRES = ["Drama", "Comedy", "Action", "Thriller", "Romance", "Horror", "Documentary", "Animation"]
ASKS = ("a quiet drama about a family", "an action film with a storm", "a funny animation")


def synthetic_items(n: int, path: Path) -> None:
    """n items as JSON lines: short titles, a genre or two, a one-line description."""
    rng = np.random.default_rng(SEED)
    a, b, g = (rng.integers(0, 10, n), rng.integers(0, 10, n), rng.integers(0, 8, (n, 2)))
    with path.open("wb") as out:
        for i in range(n):
            title = f"The {ADJECTIVES[a[i]]} {NOUNS[b[i]]} {i}"
            genres = sorted({GENRES[g[i, 0]], GENRES[g[i, 1]]})
            item = {
                "item_id": f"syn-{i}",
                "title": title,
                "categories": genres,
                "description": f"A {genres[0].lower()} about a {NOUNS[b[i]]}.",
            }
            out.write(orjson.dumps(item) + b"\n")


def fresh_settings(bootstrap: str, tmp: Path, part: str) -> Settings:
    return fresh_topics(bootstrap, tmp / f"{part}-worker", "cat")


def end_offsets(settings: Settings, logical: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    from streaming_rec.edge.kafka_config import client_config

    consumer = KafkaConsumer(**client_config(settings))
    try:
        topic = settings.topic(logical)
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return int(sum(consumer.end_offsets(parts).values()))
    finally:
        consumer.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


# --- loader -------------------------------------------------------------------------------
def run_loader(bootstrap: str, tmp: Path, n: int, embed_seconds: float) -> dict[str, Any]:
    settings = fresh_settings(bootstrap, tmp, "loader")
    path = tmp / "items.jsonl"
    started = time.perf_counter()
    synthetic_items(n, path)
    log(f"loader: {n} synthetic items written in {time.perf_counter() - started:.1f} s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SREC_")}
    env.update(SREC_BOOTSTRAP_SERVERS=bootstrap, SREC_TOPIC_PREFIX=settings.topic_prefix)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "streaming_rec", "load-catalog", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started  # the CLI process: interpreter start to flush
    in_topic = end_offsets(settings, "items")
    log(f"loader: {done.stdout.strip()} (process wall {wall:.1f} s)")
    # one worker embeds the catalog: items/s into item-vectors once it is running
    worker = WorkerProcess(
        worker_env(settings, "cat-embed"), tmp / "embed-worker.log", settings.web_port
    )
    worker.start()
    samples: list[tuple[float, int]] = []
    try:
        worker.wait_ready(timeout=300)
        deadline = time.monotonic() + embed_seconds
        while time.monotonic() < deadline:
            samples.append((time.monotonic(), end_offsets(settings, "item-vectors")))
            time.sleep(5)
    finally:
        worker.stop(timeout=30)
    moving = [(t, c) for t, c in samples if c > 0]
    rate = (
        (moving[-1][1] - moving[0][1]) / (moving[-1][0] - moving[0][0])
        if len(moving) >= 2
        else None
    )
    log(f"embed: {rate or 0:.0f} items/s into item-vectors (one worker, CPU)")
    return {
        "items": n,
        "items_in_topic": in_topic,
        "cli_output": done.stdout.strip(),
        "cli_process_wall_s": round(wall, 1),
        "publish_items_per_s": round(n / wall, 0),
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "embed_seconds_sampled": embed_seconds,
        "embed_items_per_s": round(rate, 1) if rate else None,
        "embed_hours_for_1m": round(1_000_000 / rate / 3600, 2) if rate else None,
    }


# --- build --------------------------------------------------------------------------------
def publish_vectors(settings: Settings, n: int) -> float:
    """n clustered unit vectors straight to item-vectors; returns seconds (flush included)."""
    clusters = Clusters()
    started = time.perf_counter()
    with RecClient(settings, listen=False, bulk=True) as client:
        for lo in range(0, n, 50_000):
            vectors = clusters.draw(min(50_000, n - lo), seed=SEED + lo)
            now = time.time()
            for j, vector in enumerate(vectors):
                i = lo + j
                message = {
                    "item_id": f"vec-{i}",
                    "vector": vector_to_b64(vector),
                    "dim": int(vector.shape[0]),
                    "title": f"The {ADJECTIVES[i % 10]} {NOUNS[(i // 10) % 10]} {i}",
                    "categories": [GENRES[i % 8]],
                    "model": "all-MiniLM-L6-v2",
                    "updated_at": now,
                }
                client.send_raw("item-vectors", f"vec-{i}".encode(), orjson.dumps(message))
            log(f"build: {lo + len(vectors)} of {n} vectors published")
        client.flush(timeout=900)
    return time.perf_counter() - started


def start_and_time(worker: WorkerProcess, n: int, timeout: float) -> float:
    started = time.monotonic()
    worker.start()
    worker.wait_ready(min_items=n, timeout=timeout)
    return time.monotonic() - started


def run_build(bootstrap: str, tmp: Path, n: int) -> dict[str, Any]:
    settings = fresh_settings(bootstrap, tmp, "build")
    publish_s = publish_vectors(settings, n)
    log(f"build: {n} vectors published in {publish_s:.1f} s ({n / publish_s:,.0f}/s)")
    worker = WorkerProcess(
        worker_env(settings, "cat-build"), tmp / "build-worker.log", settings.web_port
    )
    out: dict[str, Any] = {
        "items": n,
        "publish_s": round(publish_s, 1),
        "publish_items_per_s": round(n / publish_s),
    }
    try:
        ready_s = start_and_time(worker, n, timeout=3600)
        assert worker.process is not None
        out["build"] = {
            "ready_s": round(ready_s, 1),
            "items_per_s_incl_model_load": round(n / ready_s),
            "rss_mib": rss_mib(worker.process.pid),
        }
        log(f"build: worker ready with {n} items in {ready_s:.1f} s")
        deadline = time.monotonic() + 900  # the first snapshot, written once caught up
        saved = None
        while time.monotonic() < deadline and saved is None:
            saved = metric(
                settings.web_port, 'streaming_rec_items_snapshot_seconds{operation="save"}'
            )
            time.sleep(1)
        snapshot = settings.data_dir / "items-snapshot"
        size = sum(p.stat().st_size for p in snapshot.rglob("*") if p.is_file())
        out["snapshot"] = {"save_s": saved, "size_mib": round(size / 2**20, 1)}
        out["asks_e2e_ms"] = asks(settings)
        out["build"]["rss_mib_after_asks"] = rss_mib(worker.process.pid)
        worker.stop(timeout=60)
        restart_s = start_and_time(worker, n, timeout=1800)
        out["restart"] = {
            "ready_s": round(restart_s, 1),
            "snapshot_load_s": metric(
                settings.web_port, 'streaming_rec_items_snapshot_seconds{operation="load"}'
            ),
            "rss_mib": rss_mib(worker.process.pid),
        }
        log(f"build: restart from the snapshot ready in {restart_s:.1f} s")
    finally:
        if worker.alive():
            worker.stop(timeout=60)
    return out


def asks(settings: Settings, n: int = 30) -> dict[str, Any]:
    """End-to-end asks at this index size (new users, text queries)."""
    times = []
    with RecClient(settings) as client:
        client.ask("cat-warm", "warm up", k=10, timeout=60)
        for i in range(n):
            started = time.perf_counter()
            reply = client.ask(f"cat-{i}", ASKS[i % len(ASKS)], k=10, timeout=60)
            times.append((time.perf_counter() - started) * 1000.0)
            assert reply.status == "ok" and len(reply.items) == 10
    return pct(times, 50, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", default="1m", help="catalog size (e.g. 20k, 1m)")
    parser.add_argument("--parts", default="loader,build")
    parser.add_argument("--embed-seconds", type=float, default=90.0)
    parser.add_argument("--out", type=Path, default=None, help="folder for the JSON")
    args = parser.parse_args()
    if args.out:
        set_out_dir(args.out)
    n = parse_scale(args.items)
    parts = set(args.parts.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="srec-catalog-") as folder:
        tmp = Path(folder)
        with local_broker(tmp / "kafka", heap="-Xmx1g") as bootstrap:
            if "loader" in parts:
                results["loader"] = run_loader(bootstrap, tmp, n, args.embed_seconds)
            if "build" in parts:
                results["build"] = run_build(bootstrap, tmp, n)
    path = write_json("catalog_scale", results, {"items": n, "parts": sorted(parts)})
    print(json.dumps(results, indent=2))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
