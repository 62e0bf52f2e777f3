"""Record batches a consumer cannot read are skipped with a dead letter, never raised.

A Kafka consumer that meets a batch it cannot read — a codec the process lacks
(``UnsupportedCodecError``), a payload that does not decompress, a CRC mismatch, a record
that does not parse — raises from inside the client's fetcher. Faust lets that crash the
worker, and a restarted worker fetches the same batch again: a poison pill. Both clients
we ship read batches the same way: ``PartitionRecords`` (aiokafka's
``aiokafka.consumer.fetcher.PartitionRecords``, kafka-python's
``Fetcher.PartitionRecords``) walks a ``MemoryRecords`` batch by batch
(``next_batch()``), checks each batch's CRC (``validate_crc()``), skips control and
aborted batches by their header (``is_control_batch``, ``producer_id``), iterates the
records of the rest, and moves its fetch position to ``batch.next_offset`` after a batch.

The guard wraps the ``records`` argument of ``PartitionRecords.__init__`` — the narrowest
place both clients share — and changes nothing on the happy path:

- a batch whose CRC does not match is shown to the client as an empty control batch, so
  the client steps over it by its own rule (offsets ``base_offset .. next_offset - 1``);
- a batch whose records raise while being iterated (decompression, parsing) ends there:
  the records read before stay delivered, the rest of the batch is skipped when the client
  moves to ``next_offset``.

Each skip is :func:`report`-ed once per process: logged (WARNING, with topic, partition,
offsets and reason), counted in ``streaming_rec_unreadable_batches_total`` and
``streaming_rec_unreadable_records_total`` (offsets skipped), and queued as a dead letter
that :func:`forward` (in a worker: :func:`forward_dead_letters`) sends to `dead-letters`.
A process without a forwarder (the trainer, the client, the CLI) logs and counts only.

:func:`apply` checks the installed versions and the shape of what it wraps, and raises
:class:`~streaming_rec.edge.patching.PatchMismatch` at start when they differ; see
docs/transport.md.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from streaming_rec import codec
from streaming_rec.edge import metrics, patching
from streaming_rec.schemas import DeadLetter

log = logging.getLogger(__name__)

#: Versions the guard was written against (major.minor): another one fails at start.
AIOKAFKA_SERIES = "0.14"
KAFKA_PYTHON_SERIES = "3.0"
#: Skips kept for the forwarder; older ones are dropped (still logged and counted).
QUEUE_MAX = 10_000
#: How often the forwarder looks for new skips (s).
FORWARD_INTERVAL_S = 0.2


@dataclass(frozen=True)
class Skipped:
    """Offsets ``first .. last`` (inclusive) of ``topic[partition]`` skipped unread."""

    topic: str
    partition: int
    first: int
    last: int
    error: str  # the client's exception class (or "CorruptRecord" for a CRC mismatch)
    reason: str
    at: float  # unix time (s)

    @property
    def records(self) -> int:
        return self.last - self.first + 1

    def describe(self) -> str:
        return (
            f"offsets {self.first}-{self.last} of {self.topic}[{self.partition}] unreadable, "
            f"skipped: {self.error}: {self.reason}"
        )


class _Skips:
    """The skips of this process, each (topic, partition, first offset) once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: collections.deque[Skipped] = collections.deque(maxlen=QUEUE_MAX)
        self._seen: collections.OrderedDict[tuple[str, int, int], None] = collections.OrderedDict()

    def add(self, skip: Skipped) -> bool:
        key = (skip.topic, skip.partition, skip.first)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > QUEUE_MAX:
                self._seen.popitem(last=False)
            self._queue.append(skip)
            return True

    def drain(self) -> list[Skipped]:
        with self._lock:
            taken = list(self._queue)
            self._queue.clear()
        return taken


_skips = _Skips()


def report(topic: str, partition: int, first: int, last: int, exc: BaseException) -> None:
    """Record that offsets ``first .. last`` of ``topic[partition]`` were skipped because of
    ``exc``: logged, counted and queued for :func:`forward` (once per process and batch)."""
    error = "CorruptRecord" if isinstance(exc, _CrcMismatch) else type(exc).__name__
    skip = Skipped(topic, partition, first, max(first, last), error, str(exc), time.time())
    if not _skips.add(skip):
        return
    log.warning("%s", skip.describe())
    metrics.UNREADABLE_BATCHES.labels(topic, error).inc()
    metrics.UNREADABLE_RECORDS.labels(topic).inc(skip.records)


def drain() -> list[Skipped]:
    """The skips reported since the last call, oldest first."""
    return _skips.drain()


def dead_letter(skip: Skipped, worker: str) -> bytes:
    """The dead letter (JSON) of a skipped range: ``offset`` is its first offset and
    ``last_offset`` its last; the reason names the range; key and value are null (the
    bytes could not be read)."""
    letter = DeadLetter(
        topic=skip.topic,
        partition=skip.partition,
        offset=skip.first,
        key=None,
        value=None,
        reason=skip.describe()[:4000],
        field=None,
        error=skip.error[:200],
        worker=worker,
        at=skip.at,
        last_offset=skip.last,
    )
    return codec.encode_dead_letter(letter)


Send = Callable[[bytes | None, bytes], Awaitable[Any]]


async def forward(send: Send, worker: str, interval_s: float = FORWARD_INTERVAL_S) -> None:
    """Send each skip as a dead letter through ``send(key, value)``, forever (cancel to
    stop). A failed send is logged and that letter dropped (the skip stays counted)."""
    while True:
        for skip in drain():
            try:
                await send(None, dead_letter(skip, worker))
            except Exception as exc:  # the worker goes on without this letter
                log.error("dead letter of %s not sent: %s", skip.describe(), exc)
            else:
                metrics.MESSAGES.labels(skip.topic, "dead_letter").inc()
        await asyncio.sleep(interval_s)


def forward_dead_letters(app: Any, topic: Any, worker: str) -> None:
    """Register a task on the Faust ``app`` that sends every skip of this process to the
    Faust ``topic`` (`dead-letters`) as ``worker``; call it while building the app."""

    async def send(key: bytes | None, value: bytes) -> Any:
        return await topic.send(key=key, value=value)

    async def unreadable_batches() -> None:
        await forward(send, worker)

    app.task(unreadable_batches)


# --- the guard -------------------------------------------------------------------------


class _CrcMismatch(Exception):
    pass


class GuardedBatch:
    """A record batch as the client sees it through the guard (every attribute is the
    batch's own unless the batch is unreadable)."""

    def __init__(self, batch: Any, topic: str, partition: int) -> None:
        self._batch = batch
        self._topic = topic
        self._partition = partition
        self._bad = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def _skip(self, first: int, exc: BaseException) -> None:
        report(self._topic, self._partition, first, self._batch.next_offset - 1, exc)

    def validate_crc(self) -> bool:
        """True; a batch whose CRC does not match is reported and shown as empty."""
        if not self._batch.validate_crc():
            self._bad = True
            self._skip(self._batch.base_offset, _CrcMismatch("CRC mismatch"))
        return True

    @property
    def is_control_batch(self) -> bool:
        return self._bad or bool(self._batch.is_control_batch)

    @property
    def producer_id(self) -> Any:
        return None if self._bad else self._batch.producer_id

    def has_producer_id(self) -> bool:  # kafka-python
        return not self._bad and bool(self._batch.has_producer_id())

    def __next__(self) -> Any:  # the clients read a control batch's marker with next()
        return next(self._batch)

    def __iter__(self) -> Iterator[Any]:
        if self._bad:
            return iter(())
        return self._records()

    def _records(self) -> Iterator[Any]:
        first = self._batch.base_offset
        try:
            for record in self._batch:
                first = record.offset + 1
                yield record
        except Exception as exc:  # decompression or parsing: the rest of the batch is lost
            self._skip(first, exc)


class GuardedRecords:
    """A client's ``MemoryRecords`` whose batches come wrapped in :class:`GuardedBatch`."""

    def __init__(self, records: Any, topic: str, partition: int) -> None:
        self._records = records
        self._topic = topic
        self._partition = partition

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    def next_batch(self) -> GuardedBatch | None:
        batch = self._records.next_batch()
        return None if batch is None else GuardedBatch(batch, self._topic, self._partition)


_applied: set[str] = set()
_apply_lock = threading.Lock()
#: What the guard relies on in each client's ``PartitionRecords._unpack_records``.
_READS_BATCHES_WITH = ("next_batch()", "validate_crc()", "is_control_batch", "next_offset")


def _guard_init(owner: type, tp_at: int, records_at: int, patch: str) -> None:
    """Wrap ``owner.__init__`` so that its ``records`` argument (positional index
    ``records_at`` after self, or keyword) is guarded; ``tp_at`` is the topic-partition's."""
    original = vars(owner)["__init__"]

    def guarded_init(self: Any, *args: Any, **kwargs: Any) -> None:
        tp = args[tp_at] if len(args) > tp_at else kwargs["tp"]
        if len(args) > records_at:
            guarded = GuardedRecords(args[records_at], tp[0], tp[1])
            args = (*args[:records_at], guarded, *args[records_at + 1 :])
        else:
            kwargs["records"] = GuardedRecords(kwargs["records"], tp[0], tp[1])
        original(self, *args, **kwargs)

    owner.__init__ = patching.mark(guarded_init, original)  # type: ignore[misc]
    log.debug("%s installed", patch)


def guard_aiokafka() -> None:
    """Guard aiokafka's ``PartitionRecords`` (Faust's consumer, our replicas). Idempotent;
    PatchMismatch when aiokafka is not 0.14 or the class is not shaped as expected."""
    from aiokafka.consumer import fetcher

    patch = "unreadable-batch guard (aiokafka)"
    patching.check_version("aiokafka", AIOKAFKA_SERIES, patch)
    owner = fetcher.PartitionRecords
    params = ["self", "tp", "records", "aborted_transactions", "fetch_offset"]
    init = patching.check_callable(owner, "__init__", params, patch)
    if patching.is_patched(init):
        return
    unpack = patching.check_callable(owner, "_unpack_records", ["self"], patch)
    patching.check_source(unpack, _READS_BATCHES_WITH, patch)
    _guard_init(owner, tp_at=0, records_at=1, patch=patch)


def guard_kafka_python() -> None:
    """Guard kafka-python's ``Fetcher.PartitionRecords`` (RecClient, the CLI, the lag
    probe). Idempotent; PatchMismatch when kafka-python is not 3.0 or the class differs."""
    from kafka.consumer import fetcher

    patch = "unreadable-batch guard (kafka-python)"
    patching.check_version("kafka-python", KAFKA_PYTHON_SERIES, patch)
    owner = fetcher.Fetcher.PartitionRecords
    init = patching.check_callable(
        owner, "__init__", ["self", "fetch_offset", "tp", "records"], patch
    )
    if patching.is_patched(init):
        return
    unpack = patching.check_callable(owner, "_unpack_records", ["self", "tp", "records"], patch)
    patching.check_source(unpack, _READS_BATCHES_WITH, patch)
    _guard_init(owner, tp_at=1, records_at=2, patch=patch)


def apply() -> None:
    """Install the guard in aiokafka and kafka-python, once per process; PatchMismatch (at
    start, before any record is read) when either is not the version it was written for."""
    with _apply_lock:
        for name, guard in (("aiokafka", guard_aiokafka), ("kafka-python", guard_kafka_python)):
            if name not in _applied:
                guard()
                _applied.add(name)
