"""The lag and stall logic of the worker's sensor (edge/monitor.py), without a broker: lag
is end − committed per partition; a partition is stalled (/live 503) only once the worker
is ready, records wait, and its committed offset has not moved for stall_s."""

from __future__ import annotations

import pytest

from streaming_rec.edge.monitor import LagTracker

pytestmark = pytest.mark.unit
Q0, Q1 = ("srec.queries", 0), ("srec.queries", 1)


def test_lag_is_end_minus_committed_per_partition() -> None:
    tracker = LagTracker(stall_s=60)
    tracker.update({Q0: 100, Q1: 7}, {Q0: 40, Q1: 7}, now=0.0, ready=True)
    assert tracker.lag == {Q0: 60, Q1: 0}


def test_a_partition_that_moves_is_never_stalled() -> None:
    tracker = LagTracker(stall_s=60)
    for second in range(0, 300, 5):
        tracker.update({Q0: 10_000}, {Q0: second}, now=float(second), ready=True)
    assert tracker.stalled(300.0) == []


def test_records_waiting_behind_an_offset_that_stays_put_for_stall_s_is_a_stall() -> None:
    tracker = LagTracker(stall_s=60)
    tracker.update({Q0: 100, Q1: 50}, {Q0: 40, Q1: 50}, now=0.0, ready=True)
    tracker.update({Q0: 120, Q1: 50}, {Q0: 40, Q1: 50}, now=59.0, ready=True)
    assert tracker.stalled(59.0) == []
    tracker.update({Q0: 130, Q1: 50}, {Q0: 40, Q1: 50}, now=61.0, ready=True)
    assert tracker.stalled(61.0) == ["srec.queries[0]"]  # Q1 has nothing waiting


def test_a_worker_still_loading_is_not_stalled_and_its_clock_starts_when_ready() -> None:
    tracker = LagTracker(stall_s=60)
    for second in range(0, 600, 10):  # queries wait while the catalog loads
        tracker.update({Q0: 500}, {Q0: 0}, now=float(second), ready=False)
    assert tracker.stalled(600.0) == []
    tracker.update({Q0: 500}, {Q0: 0}, now=600.0, ready=True)
    assert tracker.stalled(659.0) == []
    tracker.update({Q0: 500}, {Q0: 0}, now=661.0, ready=True)
    assert tracker.stalled(661.0) == ["srec.queries[0]"]


def test_a_partition_that_moved_away_is_forgotten_and_zero_disables() -> None:
    tracker = LagTracker(stall_s=60)
    tracker.update({Q0: 100, Q1: 100}, {Q0: 0, Q1: 0}, now=0.0, ready=True)
    tracker.update({Q1: 100}, {Q1: 0}, now=100.0, ready=True)
    assert set(tracker.lag) == {Q1} and set(tracker.progress) == {Q1}
    assert tracker.stalled(100.0) == ["srec.queries[1]"]
    assert LagTracker(stall_s=0, progress=tracker.progress, lag=tracker.lag).stalled(1e9) == []
