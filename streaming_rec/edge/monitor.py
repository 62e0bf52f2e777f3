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

Table recovery (reading the user-state changelog after a rebalance) can wait forever for
records Faust's fetcher never hands it: faust-streaming's recovery-hang class
(faust-streaming/faust#74, robinhood/faust#218), seen here once in a CI run after one of two
workers was killed: "No event received for active tp … since recovery start" for
minutes, every changelog partition at its start offset. ``RecoveryWatch`` notices a
recovery whose read offsets have not moved for ``SREC_RECOVERY_STALL_S`` and the sensor
restarts it the way Faust itself does after a rebalance — by asking the consumer to
rejoin its group (a rebalance seeks, resumes and fetches every partition afresh). After
``KICKS_MAX`` restarts that did not help, the worker is wedged and ``/live`` says so, so
that an orchestrator restarts it.
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
#: Restarts of one stalled table recovery before the worker calls itself wedged.
KICKS_MAX = 3


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


@dataclass
class RecoveryWatch:
    """Whether a table recovery is stalled (pure: the sensor feeds it samples; unit tests
    call it directly). A sample is Faust's ``Recovery.in_recovery`` and the read offsets
    of the changelog partitions it recovers, ``(topic, partition) → offset`` (None before
    the first record). Stalled: in recovery and those offsets unchanged for ``stall_s``
    seconds (0: never)."""

    stall_s: float
    kicks_max: int = KICKS_MAX
    kicks: int = 0
    _offsets: tuple[tuple[tuple[str, int], int | None], ...] | None = None
    _since: float = 0.0

    def update(
        self, in_recovery: bool, offsets: Mapping[tuple[str, int], int | None], now: float
    ) -> bool:
        """One sample at ``now`` (monotonic s). True when the recovery should be restarted
        now: stalled, and fewer than ``kicks_max`` restarts of this recovery so far (the
        count starts again when a recovery ends)."""
        if not in_recovery or self.stall_s <= 0:
            self._offsets, self.kicks = None, 0
            return False
        at = tuple(sorted(offsets.items()))
        if at != self._offsets:
            self._offsets, self._since = at, now
            return False
        if now - self._since < self.stall_s or self.kicks >= self.kicks_max:
            return False
        self.kicks += 1
        self._since = now  # the restart gets stall_s of its own
        return True

    def stuck(self, now: float) -> float | None:
        """Seconds the recovery has been stalled once every restart was spent, else None."""
        if self._offsets is None or self.kicks < self.kicks_max:
            return None
        stalled = now - self._since
        return stalled if stalled >= self.stall_s else None


class StreamMonitor(faust.Sensor):
    """The sensor of one Faust app (added by ``faust_base.new_faust_app``). ``ready`` is set
    by ``faust_base.add_pages`` to the worker's readiness."""

    def __init__(
        self,
        app: faust.App,
        stall_s: float,
        sample_s: float = SAMPLE_S,
        recovery_stall_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.app = app
        self.sample_s = sample_s
        self.tracker = LagTracker(stall_s)
        self.recovery = RecoveryWatch(recovery_stall_s)
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
        stuck = self.recovery.stuck(now)
        if stuck is not None:
            return (
                f"table recovery has read nothing for {stuck:.0f} s after "
                f"{self.recovery.kicks} restarts"
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
                await self.watch_recovery()
            except Exception as exc:  # never let the watch take the sensor down
                log.warning("recovery watch skipped: %s", exc)
            try:
                await self.sample()
            except Exception as exc:  # a consumer not started yet, a broker away: next time
                log.debug("lag sample skipped: %s", exc)

    async def watch_recovery(self) -> None:
        """Feed ``RecoveryWatch`` from Faust's recovery; restart a stalled one by a rejoin."""
        # ``_recovery``, not ``recovery``: the property would create one in an app without tables
        recovery = getattr(self.app.tables, "_recovery", None)
        if recovery is None:
            return
        offsets = {(tp.topic, tp.partition): at for tp, at in recovery.active_offsets.items()}
        if not self.recovery.update(bool(recovery.in_recovery), offsets, time.monotonic()):
            return
        remaining = {
            f"{tp.topic}[{tp.partition}]": n for tp, n in recovery.active_remaining().items() if n
        }
        log.warning(
            "table recovery has read nothing for %.0f s (remaining %s): rejoining the "
            "consumer group to restart it (%d of %d)",
            self.recovery.stall_s,
            remaining,
            self.recovery.kicks,
            self.recovery.kicks_max,
        )
        metrics.RECOVERY_RESTARTS.inc()
        await rejoin_group(self.app)

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


async def rejoin_group(app: faust.App) -> None:
    """Ask the worker's Kafka consumer to rejoin its group: a rebalance, after which Faust
    seeks, resumes and recovers every assigned partition afresh. The consumer lives on
    Faust's consumer thread, so the request is made there. RuntimeError when the installed
    Faust/aiokafka no longer have the consumer thread and group coordinator this uses."""
    thread = getattr(app.consumer, "_thread", None)
    consumer = thread._ensure_consumer() if thread is not None else None
    coordinator = getattr(consumer, "_coordinator", None)
    request = getattr(coordinator, "request_rejoin", None)
    if thread is None or request is None:
        raise RuntimeError("rejoin: no Faust consumer thread or aiokafka group coordinator")
    await thread.call_thread(request)


def monitor_of(app: faust.App) -> StreamMonitor | None:
    """The StreamMonitor among ``app``'s sensors, if any."""
    for sensor in app.sensors:
        if isinstance(sensor, StreamMonitor):
            return sensor
    return None
