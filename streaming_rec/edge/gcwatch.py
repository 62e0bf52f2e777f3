"""Python's garbage collector, watched, and kept off the objects a worker makes at start.

A full (generation 2) collection walks every container object in the process, with the
GIL held: nothing else in the worker runs meanwhile. A worker holds ~280,000 such objects
once its encoder is loaded (the libraries it imports: onnxruntime, tokenizers, and torch
where installed, to look for a GPU), and a full collection of them took ~100 ms on the 2-core
bench machine, which is longer than an ask's whole round trip. ``gc.freeze()`` (CPython ≥
3.7, the technique Instagram described for its forked web workers) moves every object
alive at that moment into a permanent generation that collections skip. Objects made
later, such as user states, impressions and caches, are still collected as before.
Frozen objects are still freed by reference counting; only a reference cycle among them
would stay, and startup objects live as long as the process anyway.

``GcWatch`` times every collection into ``streaming_rec_gc_pause_seconds{generation}``
and logs the slow ones, so the pauses can be seen on a running worker.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from streaming_rec.edge import metrics

log = logging.getLogger(__name__)


def freeze_startup_objects() -> int:
    """Move every object alive into the permanent generation that collections skip
    (``gc.freeze``), after a collection of the young generations only: a full one would
    itself hold the GIL for ~100 ms, at the moment the worker starts to answer, while
    the startup's own full collections have already taken the older garbage. Returns how
    many objects are frozen in all."""
    started = time.perf_counter()
    gc.collect(1)
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "gc: %d objects frozen (skipped by collections from now on; %.0f ms)",
        frozen,
        (time.perf_counter() - started) * 1000.0,
    )
    return frozen


class GcWatch:
    """Times each garbage collection (``gc.callbacks``): a pause histogram per generation,
    and a warning for a pause of at least ``slow_s`` seconds."""

    def __init__(self, slow_s: float = 0.05) -> None:
        self.slow_s = slow_s
        self.pauses = 0
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:  # installed in the middle of a collection
            return
        seconds = time.perf_counter() - self._started
        self._started = None
        self.pauses += 1
        generation = str(info.get("generation", ""))
        metrics.GC_PAUSE_SECONDS.labels(generation=generation).observe(seconds)
        if seconds >= self.slow_s:
            log.warning(
                "gc: generation %s collection paused the process for %.0f ms (%d frozen)",
                generation,
                seconds * 1000.0,
                gc.get_freeze_count(),
            )

    def install(self) -> GcWatch:
        """Register with ``gc.callbacks`` (once) and return self."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self

    def remove(self) -> None:
        """Unregister (tests)."""
        if self in gc.callbacks:
            gc.callbacks.remove(self)
