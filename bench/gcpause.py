"""Part gc: how long a full garbage collection holds a worker-sized process, before and
after ``gc.freeze`` (edge/gcwatch.py, SREC_GC_FREEZE).

In process: the recommender as a worker builds it (the encoder loaded, the ML-1M catalog
embedded and indexed), then ``gc.collect()`` (generation 2) timed ``REPEAT`` times, then
``freeze_startup_objects()`` as the worker calls it once ready, and the same collections
again. The objects a worker makes while it runs (user states, impressions, caches) are
not frozen and are not in this measurement; ``streaming_rec_gc_pause_seconds`` on a
worker's /metrics shows its live pauses.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from common import Context, log, pct, settings_record, write_json

REPEAT = 7


def _full_collections() -> dict[str, float | None]:
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000.0)
    return pct(times, 50, 100)


def run(ctx: Context) -> dict[str, Any]:
    from streaming_rec.edge.gcwatch import freeze_startup_objects

    ctx.recommender()  # the encoder and the catalog, as in a worker
    tracked = len(gc.get_objects())
    before = _full_collections()
    try:
        frozen = freeze_startup_objects()
        after = _full_collections()
        tracked_after = len(gc.get_objects())
    finally:
        gc.unfreeze()  # the other parts of this run measure as before
    log(f"gc: full collection p50 {before['p50']:.1f} ms → {after['p50']:.1f} ms frozen")
    results = {
        "objects_tracked": tracked,
        "objects_frozen": frozen,
        "objects_tracked_after_freeze": tracked_after,
        "full_collection_ms": {"not_frozen": before, "frozen": after},
        "how": f"gc.collect() x{REPEAT} (p50, max) in the bench process after building the "
        "in-process recommender with the ML-1M catalog; then freeze_startup_objects() and "
        "the same",
    }
    write_json("gc", results, settings_record(ctx.settings()))
    return results
