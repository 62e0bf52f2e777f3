"""Part rank: the CPU a query costs the compute thread besides the encoder.

In process: the recommender as a worker builds it (ML-1M catalog embedded and indexed),
the bench's query texts encoded once up front, then ``Recommender.recommend`` called on
batches of requests that carry their vector (as from an embed-only worker), so that what
is timed is the parse of the query (core/understand), retrieval (HNSW, or the exact scan
of a hard filter's matches), the rerank, exploration and the answer. Half the requests
come from users with a history of ``HISTORY`` items (their seen items are excluded, which
widens the search). Thread CPU time (``time.thread_time``), so the figure is what the
compute thread holds the GIL for, in the worker, per query: every such millisecond is one
the event loop and the Kafka consumer thread wait for.

Then the other way round: the wall time of one batch of 8, alone and while another thread
runs pure Python (as the event loop does under load). Each time the compute thread gives
the GIL up (ONNX Runtime, hnswlib's search) it waits to take it back, up to Python's
switch interval (5 ms by default) per hand-over; the ratio shows how much that costs a
batch, at Python's default interval and at the shorter ones SREC_GIL_SWITCH_INTERVAL_MS
can set.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from typing import Any

from common import Context, log, pct, queries, settings_record, write_json

QUERIES = 512
HISTORY = 50
BATCHES = (1, 8, 32)
ROUNDS = 3
SWITCH_INTERVALS_MS = (5.0, 1.0, 0.5)  # Python's default first (sys.setswitchinterval)


def _requests(ctx: Context, rec: Any, n: int) -> list[Any]:
    from streaming_rec.core.requests import Request
    from streaming_rec.core.user_state import Event, UserState

    texts = queries(n)
    vectors = rec.embed_queries(texts)
    ids = [m.item_id for m in ctx.movies()]
    rng = random.Random(7)
    out = []
    for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        user = None
        if i % 2:
            seen = rng.sample(ids, HISTORY)
            history = tuple(Event(item, "click", float(t)) for t, item in enumerate(seen))
            user = UserState(f"u{i}", history=history, events=HISTORY)
        out.append(Request(f"r{i}", f"u{i}", text, 10, user=user, vector=vector))
    return out


def _wall_ms_per_batch(rec: Any, requests: list[Any], size: int, busy: bool) -> float:
    """Median wall ms of ``rec.recommend`` on batches of ``size``, with a thread spinning in
    Python beside it when ``busy``."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    if busy:
        spinner.start()
    try:
        walls = []
        for start in range(0, len(requests) - size + 1, size):
            started = time.perf_counter()
            rec.recommend(requests[start : start + size])
            walls.append((time.perf_counter() - started) * 1000.0)
    finally:
        stop.set()
        if busy:
            spinner.join()
    return float(pct(walls, 50)["p50"] or 0.0)


def run(ctx: Context) -> dict[str, Any]:
    rec = ctx.recommender()
    requests = _requests(ctx, rec, QUERIES)
    rec.recommend(requests[:32])  # warm
    per_batch: dict[str, Any] = {}
    for size in BATCHES:
        costs = []
        for _ in range(ROUNDS):
            for start in range(0, len(requests), size):
                batch = requests[start : start + size]
                cpu0 = time.thread_time()
                rec.recommend(batch)
                costs.append((time.thread_time() - cpu0) * 1000.0 / len(batch))
        per_batch[str(size)] = pct(costs, 50, 99)
        log(f"rank: batch {size}: {per_batch[str(size)]['p50']:.3f} ms CPU per query (p50)")
    beside: dict[str, dict[str, float | None]] = {}
    default_interval = sys.getswitchinterval()
    try:
        for interval_ms in SWITCH_INTERVALS_MS:
            sys.setswitchinterval(interval_ms / 1000.0)
            alone = _wall_ms_per_batch(rec, requests, 8, busy=False)
            busy = _wall_ms_per_batch(rec, requests, 8, busy=True)
            beside[f"{interval_ms:g}"] = {
                "alone": round(alone, 3),
                "beside_a_busy_python_thread": round(busy, 3),
                "ratio": round(busy / alone, 2) if alone else None,
            }
            log(
                f"rank: switch interval {interval_ms:g} ms: batch of 8 in {alone:.2f} ms "
                f"alone, {busy:.2f} ms beside a busy thread"
            )
    finally:
        sys.setswitchinterval(default_interval)
    results = {
        "cpu_ms_per_query": per_batch,
        "wall_ms_per_batch_of_8_by_switch_interval_ms": beside,
        "how": f"Recommender.recommend on batches of requests carrying their query vector "
        f"({QUERIES} bench queries, half from users with {HISTORY} seen items), thread CPU "
        f"per query, p50 and p99 over {ROUNDS} rounds; the encoder is not timed",
    }
    write_json("rank", results, settings_record(ctx.settings()))
    return results
