"""What a flow is built from: the records it reads and the ports it writes through.

A flow never sees Kafka or Faust. The edge turns each consumed record into a ``Record``
and hands flows a ``Sink`` (Kafka producers, or a list in a unit test), a ``StateStore``
(Faust's table, or a dict), a ``Compute`` hand-off (the worker's compute thread, or a
plain call) and a ``Meter`` (Prometheus, or a counter in a test).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from streaming_rec.core.offsets import PartitionOffset

T = TypeVar("T")

NO_TIMESTAMP = -1
"""Kafka's record timestamp when the producer set none (old protocol, hand-rolled)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record. ``topic`` is the real topic name (prefix included);
    ``timestamp_ms`` is Kafka's record timestamp in ms (``NO_TIMESTAMP`` = −1 when the
    producer set none); ``source`` is the edge's own object for it (a Faust event), opaque
    to flows."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = NO_TIMESTAMP
    source: Any = field(default=None, compare=False, repr=False)

    @property
    def where(self) -> PartitionOffset:
        return PartitionOffset(self.partition, self.offset)

    @property
    def timestamp_s(self) -> float | None:
        """The record timestamp in seconds, or None when the producer set none."""
        return self.timestamp_ms / 1000.0 if self.timestamp_ms >= 0 else None


class Sink(Protocol):
    """Where a flow's output goes, by logical topic name ("recommendations", ...)."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        """Send one record, to ``partition`` when given (else the key's partition); raises
        whatever the transport raises (the flow does not retry)."""


class StateStore(Protocol):
    """Per-key state bytes (the user-state table)."""

    def get(self, key: bytes) -> bytes | None:
        """The stored value, or None."""

    def put(self, key: bytes, value: bytes, record: Record) -> None:
        """Store ``value``; ``record`` is the input it derives from (the changelog record
        goes to that record's partition)."""

    def delete(self, key: bytes, record: Record) -> None:
        """Remove the key (a tombstone on the changelog, in ``record``'s partition)."""


class Compute(Protocol):
    """Runs blocking work off the event loop (one compute thread per worker)."""

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T: ...


class Meter(Protocol):
    """What flows count and time (Prometheus at the edge)."""

    def messages(self, topic: str, outcome: str, n: int = 1) -> None:
        """``n`` records of ``topic`` ended with ``outcome`` (ok, dead_letter, expired,
        redelivered, held, refused, skipped)."""

    def stage_ms(self, stage: str, ms: float) -> None:
        """Time of one stage of a query (embed, search, rank, total, ...), ms."""

    def batch(self, size: int) -> None:
        """Size of one query micro-batch."""


async def direct(fn: Callable[..., T], *args: Any) -> T:
    """A ``Compute`` that calls ``fn`` on the event loop (unit tests, tiny work)."""
    return fn(*args)


class NullMeter:
    """A ``Meter`` that counts nothing."""

    def messages(self, topic: str, outcome: str, n: int = 1) -> None:
        pass

    def stage_ms(self, stage: str, ms: float) -> None:
        pass

    def batch(self, size: int) -> None:
        pass


Handler = Callable[[list[Record]], Awaitable[None]]
