"""Workarounds for faust-streaming 0.15: a startup race, table writes from batches, an
idempotent producer, a read_committed consumer with fetch timings for latency, and a
fetcher that skips unreadable batches.

When a worker (re)starts with a backlog, Faust starts fetching the stream partitions
before ``Recovery.on_recovery_completed`` seeks them to their committed offsets, and that
method then clears the agent queues: messages fetched in between are dropped and the gap
is committed. Measured here on Kafka 4.1.1 and 3.9.1: 6 of 10 restarts lost 1–5 of 40
backlog messages without the fix, 12 of 12 lost none with it (deploy/kafka/README.md;
related upstream issues: faust-streaming #216, #596). The fix stops the flow first, so
nothing fetched before the seek can reach the queues.

Faust builds its aiokafka producer without ``enable_idempotence`` (and has no setting for
it): a send retried after a lost acknowledgement could then write a record twice. The
patch turns it on (it needs acks=all, which our app sets).

Faust's worker consumer reads ``read_uncommitted`` unless the app itself is transactional
(exactly_once), so a record of a transaction that was later aborted reached the agents.
The patch makes it ``read_committed`` in every processing mode.

A worker's fetches: aiokafka sends no fetch to a broker while records of any partition
it fetched from there are still unread (Faust reads only its active partitions), for up
to ``prefetch_backoff`` (100 ms, not a constructor option); and Faust asks the broker to
hold a fetch with no new data for 1500 ms, so a partition that the fetch in flight left
out waits for it. With one broker every partition shares the node: an ask waited ~110 ms
in 9 of 19 bench runs of `bench/run_all.py --only freshness`. The patch sets both from
SREC_FETCH_BACKOFF_MS and SREC_FETCH_MAX_WAIT_MS (:func:`configure_fetch`; the worker's
defaults are 5 and 100 ms; None keeps the libraries' own, 100 and 1500 ms).

After a rebalance, Faust seeks every partition to its committed offset and clears what
its agents had queued; but aiokafka's ``seek_to_committed`` leaves a partition that has
no committed offset (or offset 0) where the previous generation's fetches left it. So a
worker that kept such a partition (a fresh group: two workers starting on a backlog,
before the first commit) never read again the records it had fetched and dropped, and
Faust never committed past them: the partition stalled for good. Seen as a worker that
never became ready (its `items` partitions stuck; 4 of 9 runs of the kill -9 test on
2026-12-02 with the fetch timings below). The patch seeks those partitions to the
beginning, as the consumer's auto_offset_reset "earliest" would (at least once: what was
handled but not committed is handled again).

Every patch checks the installed Faust version and the shape of what it replaces when it
is applied, and raises :class:`~streaming_rec.edge.patching.PatchMismatch` at start when
they no longer match (tests/unit/test_faust_fixes.py proves each one applies and works).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from faust import streams
from faust.tables import recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT

from streaming_rec.edge import patching, poison

#: The Faust series every patch here was written against (major.minor).
FAUST_SERIES = "0.15"
ISOLATION = "read_committed"

_lock = threading.Lock()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchTiming:
    """The worker consumer's fetch timings: ``max_wait_ms`` (ms the broker holds a fetch
    with no new record) and ``backoff_ms`` (ms every fetch to a broker waits while records
    of one of its partitions are unread). None: the library's own."""

    max_wait_ms: int | None = None
    backoff_ms: float | None = None


_fetch = [FetchTiming()]


def configure_fetch(timing: FetchTiming) -> None:
    """The fetch timings of the worker consumers made from now on in this process."""
    _fetch[0] = timing


def _recovery_stops_flow_first() -> None:
    patch = "faust fix: stop the flow before recovery seeks"
    owner = recovery.Recovery
    original = patching.check_callable(
        owner, "on_recovery_completed", ["self", "generation_id"], patch, is_async=True
    )
    if patching.is_patched(original):
        return
    patching.check_source(original, ("perform_seek()", "resume_flow()"), patch)

    async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        consumer.stop_flow()
        self.app.flow_control.suspend()
        await consumer.wait_for_stopped_flow()
        await original(self, generation_id)

    owner.on_recovery_completed = patching.mark(on_recovery_completed, original)  # type: ignore[method-assign]


def _idempotent_producer() -> None:
    patch = "faust fix: idempotent producer"
    owner = faust_aiokafka.Producer
    original = patching.check_callable(owner, "_settings_default", ["self"], patch, is_async=False)
    if patching.is_patched(original):
        return
    patching.check_source(original, ('"acks"', '"compression_type"'), patch)

    def idempotent_settings(self: Any) -> Any:
        return {**original(self), "enable_idempotence": True}

    owner._settings_default = patching.mark(idempotent_settings, original)  # type: ignore[method-assign]


def _read_committed_consumer() -> None:
    patch = "faust fix: read_committed consumer"
    owner = faust_aiokafka.AIOKafkaConsumerThread
    original = patching.check_callable(
        owner, "_create_worker_consumer", ["self", "transport"], patch, is_async=False
    )
    if patching.is_patched(original):
        return
    patching.check_source(original, ("isolation_level=isolation_level",), patch)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        # aiokafka keeps the constructor's isolation_level here until start() builds its
        # fetcher from it (checked below, so a rename fails at start, not silently)
        if getattr(consumer, "_isolation_level", None) not in ("read_uncommitted", ISOLATION):
            raise patching.PatchMismatch(f"{patch}: AIOKafkaConsumer has no _isolation_level")
        consumer._isolation_level = ISOLATION
        timing = _fetch[0]
        if timing.max_wait_ms is not None:
            if not isinstance(getattr(consumer, "_fetch_max_wait_ms", None), int):
                raise patching.PatchMismatch(f"{patch}: AIOKafkaConsumer has no _fetch_max_wait_ms")
            consumer._fetch_max_wait_ms = timing.max_wait_ms
        if timing.backoff_ms is not None:
            _set_backoff_on_start(consumer, timing.backoff_ms / 1000.0, patch)
        return consumer

    owner._create_worker_consumer = patching.mark(create_worker_consumer, original)  # type: ignore[method-assign]


def _set_backoff_on_start(consumer: Any, backoff_s: float, patch: str) -> None:
    """aiokafka builds the consumer's Fetcher in ``start()`` with prefetch_backoff fixed at
    0.1 s: set it on the Fetcher once started (PatchMismatch there if it has no such
    attribute any more)."""
    start = consumer.start

    async def start_then_set_backoff() -> None:
        await start()
        fetcher = getattr(consumer, "_fetcher", None)
        if not isinstance(getattr(fetcher, "_prefetch_backoff", None), float):
            raise patching.PatchMismatch(f"{patch}: aiokafka's Fetcher has no _prefetch_backoff")
        fetcher._prefetch_backoff = backoff_s  # type: ignore[union-attr]

    consumer.start = start_then_set_backoff


def _seek_to_committed_resets_the_uncommitted() -> None:
    patch = "faust fix: seek the uncommitted partitions to the beginning"
    owner = faust_aiokafka.AIOKafkaConsumerThread
    original = patching.check_callable(owner, "seek_to_committed", ["self"], patch, is_async=True)
    if patching.is_patched(original):
        return
    patching.check_source(original, ("seek_to_committed",), patch)
    patching.check_callable(owner, "seek_to_beginning", ["self"], patch, is_async=True)

    async def seek_to_committed(self: Any) -> Any:
        committed = await original(self)
        changelogs = self.app.tables.changelog_topics
        fresh = uncommitted(committed, changelogs)
        if fresh:
            log.info("no committed offset: reading %s from the beginning", sorted(fresh))
            await self.seek_to_beginning(*fresh)
        return committed

    owner.seek_to_committed = patching.mark(seek_to_committed, original)  # type: ignore[method-assign]


def uncommitted(committed: Mapping[Any, int | None], changelogs: Collection[str]) -> list[Any]:
    """The partitions of ``committed`` (partition → committed offset, None: none) that
    aiokafka's seek_to_committed leaves where they are, because their offset is None or 0:
    every one but a table's changelog (the recovery seeks those itself)."""
    return [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]


def _check_current_event() -> None:
    patch = "faust fix: current event of a batched table write"
    if not isinstance(getattr(streams, "_current_event", None), ContextVar):
        raise patching.PatchMismatch(f"{patch}: faust.streams._current_event is not a ContextVar")


def apply() -> None:
    """Apply every Faust patch, and the unreadable-batch guard of aiokafka and kafka-python
    (:func:`streaming_rec.edge.poison.apply`), once per process. PatchMismatch when the
    installed Faust is not 0.15 or a patched place is not shaped as expected."""
    with _lock:
        patching.check_version("faust-streaming", FAUST_SERIES, "faust fixes")
        _check_current_event()
        _recovery_stops_flow_first()
        _idempotent_producer()
        _read_committed_consumer()
        _seek_to_committed_resets_the_uncommitted()
    poison.apply()


@contextlib.contextmanager
def as_current_event(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` Faust's current event for the duration of the block.

    A table write sends its changelog record to the partition of the *current* event. An
    agent that reads micro-batches (``take_events``) holds events of several partitions at
    once, so before writing a user's state it names the event that user's update came
    from: the record then lands in that event's partition (the user's partition, as the
    topics are co-partitioned by user).
    """
    token = streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        streams._current_event.reset(token)
