"""Our Faust sensor: the consumer group's health in our own registry, and what `/live` asks.

Faust's ``setup_prometheus_sensors`` serves a registry of its own, in ms and without a
lag gauge, so it is not switched on. This sensor feeds ``streaming_rec.edge.metrics``:

    every commit          → streaming_rec_commit_seconds (histogram)
    every rebalance       → streaming_rec_rebalances_total, streaming_rec_rebalance_seconds
    every SAMPLE_S        → streaming_rec_consumer_lag_records{topic,partition}
                            (end offset − committed offset of each assigned partition;
                            tables' changelogs left out: read only in recovery),
                            streaming_rec_assigned_partitions{topic}
    every TICK_S          → streaming_rec_event_loop_lag_seconds (how late the tick ran)

Liveness (``StreamMonitor.wedged``) is about a process that will not recover by itself,
never about one that is merely behind: a worker is wedged when, once ready, a partition
it owns holds records past its committed offset and that offset has not moved for
``stall_s`` seconds (a busy worker commits every few seconds), or when the sensor's own
loop tick stopped. A worker that is still loading its catalog is never wedged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from mode import Service

from streaming_rec.edge import metrics

log = logging.getLogger(__name__)

SAMPLE_S = 5.0
TICK_S = 1.0


@dataclass
class _Progress:
    committed: int
    since: float  # time.monotonic() when ``committed`` last changed (or tracking began)


@dataclass
class LagTracker:
    """Lag and progress per partition from samples of end and committed offsets (pure: the
    sensor feeds it; unit tests call it directly). Partitions are ``(topic, partition)``."""

    stall_s: float
    progress: dict[tuple[str, int], _Progress] = field(default_factory=dict)
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    was_ready: bool = False

    def update(
        self,
        ends: Mapping[tuple[str, int], int],
        committed: Mapping[tuple[str, int], int],
        now: float,
        ready: bool,
    ) -> None:
        """One sample: ``ends`` (next offset to be written) and ``committed`` (next offset
        the group will read) of the assigned partitions; ``now`` in monotonic seconds.
        Until ``ready`` every partition counts as progressing (a loading worker waits);
        the stall clock starts at the first sample that is ready."""
        starting = ready and not self.was_ready
        self.was_ready = ready
        self.lag = {tp: max(0, end - committed.get(tp, end)) for tp, end in ends.items()}
        for tp in list(self.progress):
            if tp not in ends:
                del self.progress[tp]
        for tp, end in ends.items():
            at = committed.get(tp, end)
            seen = self.progress.get(tp)
            if seen is None or seen.committed != at or not ready or starting or at >= end:
                self.progress[tp] = _Progress(at, now)

    def stalled(self, now: float) -> list[str]:
        """Partitions ("topic[p]") with records waiting whose committed offset has not moved
        for ``stall_s`` seconds (none when ``stall_s`` is 0)."""
        if self.stall_s <= 0:
            return []
        return [
            f"{topic}[{partition}]"
            for (topic, partition), seen in sorted(self.progress.items())
            if self.lag.get((topic, partition), 0) > 0 and now - seen.since >= self.stall_s
        ]


class StreamMonitor(faust.Sensor):
    """The sensor of one Faust app (added by ``faust_base.new_faust_app``). ``ready`` is set
    by ``faust_base.add_pages`` to the worker's readiness."""

    def __init__(self, app: faust.App, stall_s: float, sample_s: float = SAMPLE_S) -> None:
        super().__init__()
        self.app = app
        self.sample_s = sample_s
        self.tracker = LagTracker(stall_s)
        self.ready: Callable[[], bool] = lambda: False
        self.last_tick = time.monotonic()
        self._rebalance_started: float | None = None
        self._shown: set[tuple[str, str]] = set()
        self._topics_shown: set[str] = set()

    # --- Faust's sensor hooks (called on the event loop) --------------------------------------
    def on_commit_initiated(self, consumer: Any) -> Any:
        return time.monotonic()

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        if isinstance(state, float):
            metrics.COMMIT_SECONDS.observe(time.monotonic() - state)

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        metrics.REBALANCES.inc()
        return {"started": time.monotonic()}

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        started = state.get("started") if isinstance(state, dict) else None
        if isinstance(started, float):
            metrics.REBALANCE_SECONDS.observe(time.monotonic() - started)

    # --- liveness -------------------------------------------------------------------------------
    def wedged(self) -> str | None:
        """Why this worker will not recover by itself, or None (see the module docstring)."""
        now = time.monotonic()
        if now - self.last_tick > max(30.0, 10 * TICK_S):
            return f"the event-loop tick last ran {now - self.last_tick:.0f} s ago"
        stalled = self.tracker.stalled(now)
        if stalled:
            return (
                f"no commit for {self.tracker.stall_s:.0f} s with records waiting on "
                + ", ".join(stalled)
            )
        return None

    # --- background tasks -----------------------------------------------------------------------
    @Service.task
    async def _tick(self) -> None:
        """Measure how late a TICK_S sleep wakes up: the event loop's lag."""
        while not self.should_stop:
            expected = time.monotonic() + TICK_S
            await asyncio.sleep(TICK_S)
            self.last_tick = time.monotonic()
            metrics.EVENT_LOOP_LAG.set(max(0.0, self.last_tick - expected))

    @Service.task
    async def _sample_lag(self) -> None:
        while not self.should_stop:
            await self.sleep(self.sample_s)
            try:
                await self.sample()
            except Exception as exc:  # a consumer not started yet, a broker away: next time
                log.debug("lag sample skipped: %s", exc)

    async def sample(self) -> None:
        """Read end and committed offsets of the assigned partitions; update the gauges."""
        consumer = self.app.consumer
        # a table's changelog is read only in recovery: its "lag" is the worker's own writes
        changelogs = set(getattr(self.app.tables, "changelog_topics", ()))
        assigned = sorted(tp for tp in consumer.assignment() if tp.topic not in changelogs)
        committed_by_tp = getattr(consumer, "_committed_offset", {})
        ends = dict(await consumer.highwaters(*assigned)) if assigned else {}
        unknown = [tp for tp in assigned if committed_by_tp.get(tp) is None]
        firsts = dict(await consumer.earliest_offsets(*unknown)) if unknown else {}
        end_at: dict[tuple[str, int], int] = {}
        committed: dict[tuple[str, int], int] = {}
        for tp in assigned:
            end = ends.get(tp)
            if end is None:
                continue
            key = (tp.topic, tp.partition)
            end_at[key] = int(end)
            at = committed_by_tp.get(tp)
            committed[key] = int(at if at is not None else firsts.get(tp, end))
        self.tracker.update(end_at, committed, time.monotonic(), self.ready())
        self._show(end_at)

    def _show(self, ends: Mapping[tuple[str, int], int]) -> None:
        shown = {(topic, str(partition)) for topic, partition in ends}
        for labels in self._shown - shown:  # a partition that moved to another worker
            metrics.CONSUMER_LAG.remove(*labels)
        for (topic, partition), lag in self.tracker.lag.items():
            metrics.CONSUMER_LAG.labels(topic, str(partition)).set(lag)
        self._shown = shown
        counts: dict[str, int] = {}
        for topic, _ in ends:
            counts[topic] = counts.get(topic, 0) + 1
        for topic in self._topics_shown - set(counts):
            metrics.ASSIGNED_PARTITIONS.labels(topic).set(0)
        for topic, n in counts.items():
            metrics.ASSIGNED_PARTITIONS.labels(topic).set(n)
        self._topics_shown |= set(counts)


def monitor_of(app: faust.App) -> StreamMonitor | None:
    """The StreamMonitor among ``app``'s sensors, if any."""
    for sensor in app.sensors:
        if isinstance(sensor, StreamMonitor):
            return sensor
    return None
