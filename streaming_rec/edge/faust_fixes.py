"""Workarounds for faust-streaming 0.15.3: a startup race, table writes from batches, and
an idempotent producer.

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
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

from faust import streams
from faust.tables import recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT

_applied = False


def apply() -> None:
    """Patch Recovery.on_recovery_completed and the producer settings once per process."""
    global _applied
    if _applied:
        return
    original = recovery.Recovery.on_recovery_completed

    async def on_recovery_completed(self: Any, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        consumer.stop_flow()
        self.app.flow_control.suspend()
        await consumer.wait_for_stopped_flow()
        await original(self, generation_id)

    recovery.Recovery.on_recovery_completed = on_recovery_completed  # type: ignore[method-assign]

    producer_defaults = faust_aiokafka.Producer._settings_default

    def idempotent_settings(self: Any) -> Any:
        return {**producer_defaults(self), "enable_idempotence": True}

    faust_aiokafka.Producer._settings_default = idempotent_settings  # type: ignore[method-assign]
    _applied = True


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
