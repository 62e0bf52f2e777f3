"""Part 1, the floor (in process, no Kafka): one query at a time through
Recommender.recommend (encode + search + rank), and the batched throughput ceiling."""

from __future__ import annotations

import time
import uuid
from typing import Any

from common import Context, log, median, pct, queries, settings_record, write_json

BATCHES = (1, 8, 32, 64, 128)


def request(text: str, user: str = "floor-user") -> Any:
    """A request as the worker builds it for a user with no history."""
    from streaming_rec.core.requests import Request
    from streaming_rec.core.user_state import UserState

    return Request(uuid.uuid4().hex, user, text, k=10, user=UserState(user))


def time_one(rec: Any, text: str) -> tuple[float, dict[str, float]]:
    """Wall ms of recommend([one request]) and the stage timings it reports."""
    req = request(text)
    started = time.perf_counter()
    (answer,) = rec.recommend([req])
    return (time.perf_counter() - started) * 1000.0, answer.timings


def one_at_a_time(rec: Any, texts: list[str], warmup: int = 10) -> dict[str, Any]:
    for text in texts[:warmup]:
        time_one(rec, text)
    walls, stages = [], []
    for text in texts:
        wall, timings = time_one(rec, text)
        walls.append(wall)
        stages.append(timings)
    return {
        "n": len(walls),
        "latency_ms": pct(walls, 50, 90, 99),
        "stage_median_ms": {s: median(t[s] for t in stages) for s in stages[0] if s != "queue_ms"},
    }


def batched(rec: Any, batch: int, seconds: float, min_batches: int = 3) -> dict[str, Any]:
    """Queries per second through recommend(list of ``batch`` requests), run ~``seconds``."""
    texts = queries(max(batch, 50), seed=batch)
    rec.recommend([request(t) for t in texts[:batch]])  # warm this shape
    done, batches, per_batch = 0, 0, []
    cpu0 = time.process_time()
    started = time.perf_counter()
    while batches < min_batches or time.perf_counter() - started < seconds:
        reqs = [request(texts[(batches * batch + i) % len(texts)]) for i in range(batch)]
        t0 = time.perf_counter()
        rec.recommend(reqs)
        per_batch.append((time.perf_counter() - t0) * 1000.0)
        done += batch
        batches += 1
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu0
    return {
        "batch": batch,
        "cpu_ms_per_query": round(1000.0 * cpu_s / done, 3),
        "queries": done,
        "seconds": round(elapsed, 3),
        "qps": round(done / elapsed, 1),
        "batch_ms_p50": median(per_batch),
    }


def run(ctx: Context) -> dict[str, Any]:
    rec = ctx.recommender()
    n = 60 if ctx.quick else 250
    texts = queries(n)
    log(f"floor: {n} queries one at a time")
    single = one_at_a_time(rec, texts)
    log(f"floor p50 {single['latency_ms']['p50']} ms, p99 {single['latency_ms']['p99']} ms")
    ceiling = []
    for batch in BATCHES:
        row = batched(rec, batch, seconds=1.5 if ctx.quick else 6.0)
        log(f"floor batch {batch}: {row['qps']} q/s")
        ceiling.append(row)
    best = max(ceiling, key=lambda r: r["qps"])
    at_max_batch = next((r for r in ceiling if r["batch"] == ctx.settings().max_batch), None)
    results = {
        "one_at_a_time": single,
        "batched": ceiling,
        "ceiling_qps": best["qps"],
        "ceiling_batch": best["batch"],
        "qps_at_worker_max_batch": at_max_batch["qps"] if at_max_batch else None,
        "note": "wall time of Recommender.recommend(): encode + HNSW search (k = candidates, "
        "with the allow filter) + rank + catalog lookups; user with no history",
    }
    settings = settings_record(ctx.settings())
    settings.update({"queries": n, "catalog": "ml-1m", "catalog_items": len(ctx.movies())})
    write_json("floor", results, settings)
    return results
