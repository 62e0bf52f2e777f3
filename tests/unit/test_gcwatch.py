"""edge/gcwatch.py: collections are timed into the pause histogram; freezing hides the
objects alive from later collections."""

import gc

import pytest

from streaming_rec.edge import metrics
from streaming_rec.edge.gcwatch import GcWatch, freeze_startup_objects


def _count(generation: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "streaming_rec_gc_pause_seconds_count", {"generation": generation}
    )
    return value or 0.0


def test_each_collection_is_timed_and_a_slow_one_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = GcWatch(slow_s=0.0).install()  # every pause counts as slow here
    try:
        before = _count("2")
        gc.collect(2)
        assert _count("2") == before + 1
        assert watch.pauses >= 1
        assert "generation 2 collection paused the process" in caplog.text
    finally:
        watch.remove()
    assert watch not in gc.callbacks


def test_a_watch_installed_twice_is_called_once() -> None:
    watch = GcWatch().install().install()
    try:
        assert gc.callbacks.count(watch) == 1
    finally:
        watch.remove()


def test_freezing_moves_the_objects_alive_out_of_the_collected_generations() -> None:
    kept = [[i] for i in range(10_000)]  # containers: tracked by the collector
    probe = kept[-1]

    def collected_sees_probe() -> bool:
        return any(o is probe for g in (0, 1, 2) for o in gc.get_objects(g))

    assert collected_sees_probe()
    try:
        frozen = freeze_startup_objects()
        # frozen objects that die leave the permanent generation (temporaries alive at the
        # freeze, such as the log call's): the count can only fall after it, never rise
        assert frozen >= len(kept) and gc.get_freeze_count() <= frozen
        assert not collected_sees_probe()
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
