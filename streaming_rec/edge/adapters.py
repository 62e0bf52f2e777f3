"""The flows' ports over Faust and Kafka: records, the sink, the user-state table, the
compute thread, Prometheus, and the few-line loops that feed a Faust stream to a flow."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

import faust
import orjson

from streaming_rec.core.service import Recommender
from streaming_rec.edge import faust_fixes, metrics, patching
from streaming_rec.flows.ports import NO_TIMESTAMP, Handler, Record

log = logging.getLogger(__name__)
T = TypeVar("T")


def from_event(event: faust.EventT[bytes]) -> Record:
    """The Record of a Faust event (Faust gives the timestamp in s; −1 ms becomes −0.001)."""
    message = event.message
    ts = message.timestamp
    timestamp_ms = round(ts * 1000.0) if ts is not None and ts >= 0 else NO_TIMESTAMP
    return Record(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        message.value,
        timestamp_ms,
        source=event,
    )


class FaustSink:
    """The ``Sink`` port over Faust topics, by logical name."""

    def __init__(self, topics: Mapping[str, faust.TopicT]) -> None:
        self.topics = topics

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        await self.topics[topic].send(key=key, value=value, partition=partition)
        if topic == DEAD_LETTERS and value is not None:
            _count_dead_letter(value)


DEAD_LETTERS = "dead-letters"


def _count_dead_letter(value: bytes) -> None:
    """Count a dead letter by the topic of the refused record and its error class (read
    from the dead letter itself: the public `dead-letters` contract)."""
    try:
        letter = orjson.loads(value)
        metrics.DEAD_LETTERS.labels(str(letter["topic"]), str(letter["error"])).inc()
    except (orjson.JSONDecodeError, KeyError, TypeError):
        metrics.DEAD_LETTERS.labels("unknown", "unknown").inc()


class FaustTable:
    """The ``StateStore`` port over a Faust table of bytes; each write goes to the
    changelog partition of the record it derives from."""

    def __init__(self, table: faust.types.TableT[bytes, bytes]) -> None:
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.table.get(key)
        return value

    def put(self, key: bytes, value: bytes, record: Record) -> None:
        with faust_fixes.as_current_event(record.source):
            self.table[key] = value

    def delete(self, key: bytes, record: Record) -> None:
        with faust_fixes.as_current_event(record.source):
            self.table.pop(key, None)


class ThreadCompute:
    """The ``Compute`` port: one named thread that runs blocking work in order."""

    def __init__(self, name: str) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=name)

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


class PrometheusMeter:
    """The ``Meter`` port over the instruments of ``streaming_rec.edge.metrics``."""

    def messages(self, topic: str, outcome: str, n: int = 1) -> None:
        if n:
            metrics.MESSAGES.labels(topic, outcome).inc(n)

    def stage_ms(self, stage: str, ms: float) -> None:
        """Observed in seconds (``streaming_rec_stage_seconds``): flows time in ms."""
        metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000.0)

    def batch(self, size: int) -> None:
        metrics.BATCH_SIZE.observe(size)


async def feed(
    stream: faust.StreamT[bytes], handler: Handler, most: int = 1, within_s: float = 0.0
) -> None:
    """Feed ``stream`` to ``handler`` in micro-batches of up to ``most`` records.

    ``most`` 1: each record at once. ``within_s`` > 0: Faust's ``take_events`` (a batch
    waits up to ``within_s`` seconds to fill, on a timer that ticks while idle). ``within_s``
    0 (the default): ``take_ready``, no timer: a batch is every record that has arrived by
    the time the handler is free, so an idle worker adds no wait and a busy one batches."""
    async for events in _batches(stream, most, within_s):
        await handler([from_event(e) for e in events])


def _batches(
    stream: faust.StreamT[bytes], most: int, within_s: float
) -> AsyncIterator[list[faust.EventT[bytes]]]:
    if most <= 1:
        return _one_at_a_time(stream)
    if within_s <= 0:
        return take_ready(stream, most)
    return cast(
        AsyncIterator[list[faust.EventT[bytes]]],
        stream.take_events(most, within=within_s),  # type: ignore[attr-defined]
    )


async def _one_at_a_time(stream: faust.StreamT[bytes]) -> AsyncIterator[list[faust.EventT[bytes]]]:
    """The stream's events as batches of one (no batch timer)."""
    async for event in stream.events():
        yield [event]


def check_take_ready() -> None:
    """PatchMismatch unless Faust's Stream still has the internals ``take_ready`` uses (the
    same ones its own ``take_events`` uses): called once when the app is built."""
    patch = "take_ready (edge/adapters.py)"
    patching.check_version("faust-streaming", "0.15", patch)
    patching.check_callable(faust.Stream, "_enable_passive", ["self", "channel"], patch)
    patching.check_callable(faust.Stream, "add_processor", ["self", "processor"], patch)
    patching.check_callable(faust.Stream, "ack", ["self", "event"], patch, is_async=True)


async def take_ready(
    stream: faust.StreamT[bytes], most: int
) -> AsyncIterator[list[faust.EventT[bytes]]]:
    """Micro-batches without a timer: at least one event, at most ``most``, each batch
    holding what arrived while the previous one was handled. Acks each event after its
    batch is handled (at-least-once), as Faust's own ``take_events`` does, and uses the
    same Stream internals (checked by ``check_take_ready``)."""
    buffer: list[faust.EventT[bytes]] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()
    impl = cast(Any, stream)

    async def add(value: bytes) -> bytes:
        event = impl.current_event
        if event is None:
            raise RuntimeError("take_ready: the stream has no current event")
        while len(buffer) >= most:  # never more than ``most`` waiting
            room.clear()
            await room.wait()
        buffer.append(event)
        arrived.set()
        return value

    acks_before = impl.enable_acks
    impl.enable_acks = False  # acked below, once handled
    impl.add_processor(add)
    impl._enable_passive(cast(Any, aiter(impl.channel)))
    try:
        while not impl.should_stop:
            if (await impl.wait(arrived)).stopped:
                break
            await asyncio.sleep(0)  # let records already on their way join the batch
            batch = buffer[:most]
            del buffer[:most]
            if not buffer:
                arrived.clear()
            room.set()
            try:
                yield batch
            finally:
                for event in batch:
                    await impl.ack(event)
    finally:
        impl.enable_acks = acks_before
        impl._processors.remove(add)


class BlendFile:
    """The learned blend weights in the worker's data folder, so that a restarted worker
    goes on from what it learned (a new worker starts from the configured weights)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load_into(self, service: Recommender) -> None:
        """Restore the saved blend into ``service``; an unreadable file is logged and ignored."""
        if not self.path.exists():
            return
        try:
            service.restore_blend(orjson.loads(self.path.read_bytes()))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("unreadable %s (%s): starting from the configured blend", self.path, exc)
            return
        log.info("blend weights restored from %s: %s", self.path, service.blend())

    def save(self, service: Recommender) -> None:
        """Write the service's blend atomically (write, then rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(service.blend()))
        tmp.replace(self.path)
