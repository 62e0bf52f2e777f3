"""The cost of the extra hop: one-stage workers vs embed → rank (issue 5, heterogeneous pool).

    python bench/topology.py            # ~4 min on 2 cores
    python bench/topology.py --quick

On one broker, the ML-1M catalog, for each topology in turn on fresh topics:
  one-stage  one worker (SREC_ROLE=all) encodes and ranks
  two-stage  one embed worker (SREC_ROLE=embed) encodes into `embedded-queries`, one rank
             worker (SREC_ROLE=rank) answers them
the same sequential asks on the idle system (end-to-end ms, stage timings from the
replies) and the same open-loop Poisson steps (bench/e2e.py). Here both stages share the
same two CPU cores; on a real pool the embed stage runs on a GPU machine, so this measures
the hop (a produce, a consume, a second deserialisation), not the GPU's gain.
Writes docs/bench/topology.json (or --out).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import SEED, log, pct, queries, set_out_dir, stage_medians, write_json
from e2e import Listener, step

from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec_dev.datasets.movielens import load_movies
from streaming_rec_dev.devstack import (
    WorkerProcess,
    free_port_pair,
    fresh_topics,
    local_broker,
    worker_env,
)


def fresh(bootstrap: str, tmp: Path, name: str) -> Settings:
    return fresh_topics(bootstrap, tmp / name, "topo")


def start(settings: Settings, tmp: Path, topology: str, items: int) -> list[WorkerProcess]:
    """The workers of ``topology``; the answering one first."""
    if topology == "one-stage":
        workers = [WorkerProcess(worker_env(settings, "w-all"), tmp / "all.log", settings.web_port)]
    else:
        port = free_port_pair()
        embed_env = worker_env(
            settings,
            "w-embed",
            SREC_ROLE="embed",
            SREC_WEB_PORT=str(port),
            SREC_DATA_DIR=str(tmp / "embed"),
        )
        workers = [
            WorkerProcess(
                worker_env(settings, "w-rank", SREC_ROLE="rank"),
                tmp / "rank.log",
                settings.web_port,
            ),
            WorkerProcess(embed_env, tmp / "embed.log", port),
        ]
    for worker in workers:
        worker.start()
    workers[0].wait_ready(min_items=items, timeout=600)
    for worker in workers[1:]:
        worker.wait_ready(timeout=600)
    return workers


def idle(client: RecClient, n: int) -> dict[str, Any]:
    texts = queries(n + 5, seed=SEED + 7)
    e2e, replies = [], []
    for i, text in enumerate(texts):
        started = time.perf_counter()
        reply = client.ask(f"topo-{uuid.uuid4().hex[:8]}", text, k=10, timeout=60)
        if i >= 5:  # warm-up
            e2e.append((time.perf_counter() - started) * 1000.0)
            replies.append(reply)
        time.sleep(0.15)
    return {
        "asks": n,
        "e2e_ms": pct(e2e, 50, 90, 99),
        "stage_median_ms": stage_medians([r.timings for r in replies]),
    }


def run(topology: str, bootstrap: str, tmp: Path, quick: bool) -> dict[str, Any]:
    (tmp / topology).mkdir(parents=True, exist_ok=True)
    settings = fresh(bootstrap, tmp / topology, "rank")
    movies = load_movies("ml-1m")
    with RecClient(settings, listen=False, bulk=True) as loader:
        for movie in movies:
            loader.upsert_item(movie.as_item())
        loader.flush()
    workers = start(settings, tmp / topology, topology, len(movies))
    try:
        with RecClient(settings) as client:
            for i in range(5):
                client.ask(f"topo-warm-{i}", "a warm-up query", k=10, timeout=60)
            out: dict[str, Any] = {"idle": idle(client, 15 if quick else 60)}
        log(f"{topology}: idle e2e {out['idle']['e2e_ms']}")
        listener = Listener(settings)
        assert workers[0].process is not None
        try:
            out["load"] = [
                step(
                    listener,
                    workers[0].process.pid,
                    rate,
                    5.0 if quick else 15.0,
                    f"{topology}-{rate}",
                )
                for rate in ((10,) if quick else (10, 25, 50))
            ]
        finally:
            listener.close()
        for row in out["load"]:
            log(
                f"{topology} {row['offered_qps']} q/s: "
                f"p50 {row['latency_ms']['p50']} p99 {row['latency_ms']['p99']}"
            )
        return out
    finally:
        for worker in workers:
            worker.stop(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.out:
        set_out_dir(args.out)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="srec-topology-") as folder:
        tmp = Path(folder)
        with local_broker(tmp / "kafka") as bootstrap:
            for topology in ("one-stage", "two-stage"):
                results[topology] = run(topology, bootstrap, tmp, args.quick)
    one, two = (
        results["one-stage"]["idle"]["e2e_ms"]["p50"],
        results["two-stage"]["idle"]["e2e_ms"]["p50"],
    )
    results["hop_cost_idle_p50_ms"] = round(two - one, 2) if one and two else None
    results["load_p50_ms_by_rate"] = {
        str(a["offered_qps"]): {
            "one-stage": a["latency_ms"]["p50"],
            "two-stage": b["latency_ms"]["p50"],
        }
        for a, b in zip(results["one-stage"]["load"], results["two-stage"]["load"], strict=True)
    }
    write_json("topology", results, {"quick": args.quick})
    log(f"hop cost at idle (p50): {results['hop_cost_idle_p50_ms']} ms")


if __name__ == "__main__":
    main()
