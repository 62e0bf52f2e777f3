"""The lag and stall logic of the worker's sensor (edge/monitor.py), without a broker: lag
is end − committed per partition; a partition is stalled (/live 503) only once the worker
is ready, records wait, and its committed offset has not moved for stall_s. A table recovery
that reads nothing for recovery_stall_s is restarted by a group rejoin, a few times, then
the worker is wedged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from faust.types import TP

from streaming_rec.edge import metrics, monitor
from streaming_rec.edge.monitor import KICKS_MAX, LagTracker, RecoveryWatch, StreamMonitor

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


# --- table recovery: RecoveryWatch and the sensor's restart of a stalled recovery ----------
C0, C1 = ("srec.user-state-changelog", 0), ("srec.user-state-changelog", 1)


def test_a_recovery_that_reads_is_never_restarted() -> None:
    watch = RecoveryWatch(stall_s=20)
    for second in range(0, 300, 5):
        assert not watch.update(True, {C0: second, C1: None}, now=float(second))
    assert watch.kicks == 0 and watch.stuck(300.0) is None


def test_a_recovery_whose_offsets_stay_put_is_restarted_every_stall_s_at_most_kicks_max() -> None:
    watch = RecoveryWatch(stall_s=20, kicks_max=2)
    kicks = [
        second
        for second in range(0, 200, 5)
        if watch.update(True, {C0: None, C1: 7}, now=float(second))
    ]
    assert kicks == [20, 40]  # then it stops restarting and says it is stuck
    assert watch.stuck(59.0) is None  # the last restart still has its stall_s
    assert watch.stuck(60.0) == pytest.approx(20.0)


def test_a_recovery_that_ends_resets_the_count_and_zero_disables() -> None:
    watch = RecoveryWatch(stall_s=20, kicks_max=1)
    assert [watch.update(True, {C0: 3}, now=t) for t in (0.0, 20.0)] == [False, True]
    assert not watch.update(False, {}, now=25.0)  # recovery done
    assert watch.kicks == 0 and watch.stuck(1e9) is None
    off = RecoveryWatch(stall_s=0)
    assert not any(off.update(True, {C0: 3}, now=float(t)) for t in range(0, 1000, 5))


@dataclass
class _FakeRecovery:
    in_recovery: bool
    active_offsets: dict[TP, int | None]

    def active_remaining(self) -> dict[TP, int]:
        return {tp: 10 - (at or 0) for tp, at in self.active_offsets.items()}


class _FakeCoordinator:
    def __init__(self) -> None:
        self.rejoins = 0

    def request_rejoin(self) -> None:
        self.rejoins += 1


class _FakeConsumerThread:
    """Faust's consumer thread as the sensor uses it: its aiokafka consumer, and
    ``call_thread`` (here: a plain call, recorded)."""

    def __init__(self) -> None:
        self.coordinator = _FakeCoordinator()
        self.calls: list[str] = []

    def _ensure_consumer(self) -> SimpleNamespace:
        return SimpleNamespace(_coordinator=self.coordinator)

    async def call_thread(self, fun: Callable[[], None]) -> None:
        self.calls.append(getattr(fun, "__name__", "?"))
        fun()


def test_the_sensor_rejoins_the_group_when_recovery_stalls_and_live_fails_after_the_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(monitor.time, "monotonic", lambda: clock[0])
    recovery = _FakeRecovery(True, {TP("srec.user-state-changelog", 0): None})
    thread = _FakeConsumerThread()
    app = SimpleNamespace(
        tables=SimpleNamespace(_recovery=recovery), consumer=SimpleNamespace(_thread=thread)
    )
    sensor = StreamMonitor(app, stall_s=300, recovery_stall_s=20)  # type: ignore[arg-type]
    before = metrics.RECOVERY_RESTARTS._value.get()

    async def samples(n: int) -> None:
        for _ in range(n):
            await sensor.watch_recovery()
            clock[0] += 5.0

    asyncio.run(samples(5))  # 0 … 20 s: one restart at 20 s
    assert thread.calls == ["request_rejoin"] and thread.coordinator.rejoins == 1
    assert metrics.RECOVERY_RESTARTS._value.get() == before + 1
    assert sensor.wedged() is None
    asyncio.run(samples(5 * KICKS_MAX))  # every restart spent, still nothing read
    assert thread.coordinator.rejoins == KICKS_MAX
    sensor.last_tick = clock[0]
    assert "table recovery has read nothing" in (sensor.wedged() or "")
    recovery.active_offsets = {TP("srec.user-state-changelog", 0): 10}
    recovery.in_recovery = False  # it finally read: no longer wedged
    asyncio.run(samples(1))
    assert sensor.wedged() is None


def test_an_app_without_tables_is_left_alone() -> None:
    app = SimpleNamespace(tables=SimpleNamespace(), consumer=SimpleNamespace())
    sensor = StreamMonitor(app, stall_s=300, recovery_stall_s=20)  # type: ignore[arg-type]
    asyncio.run(sensor.watch_recovery())  # no _recovery: nothing read, nothing created
    assert not hasattr(app.tables, "recovery")
