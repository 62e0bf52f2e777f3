"""A full replica of a topic in this process: every partition, from the start, forever.

Every worker keeps the whole item index in memory, so each one reads all of
`item-vectors` itself (no consumer group: Faust's GlobalTable has a known recovery
problem with several workers, and a plain consumer that assigns itself every partition
is simpler). ``caught_up`` is set once the replica has read up to the end offsets that
the topic had when the replica started.

A replica may start from given offsets (``start``: partition → next offset, from a
snapshot) instead of the beginning; ``position`` is the next offset of each partition
after the records handled so far, which a snapshot of the handler's state records. When
the start offsets cannot be used (partitions changed, an offset past the end: the topic
was recreated), ``on_stale`` is awaited and the replica reads from the beginning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streaming_rec.config import KafkaSettings
from streaming_rec.edge.kafka_config import consumer_config
from streaming_rec.flows.ports import NO_TIMESTAMP, Record
from streaming_rec.flows.ports import Handler as FlowHandler

log = logging.getLogger(__name__)
REPLICA_BATCH = 2000  # records handed to the handler at most at once (one index update)
REPLICA_POLL_MS = 200  # longest wait of one fetch when the topic is quiet (ms)

Handler = Callable[[Sequence[ConsumerRecord]], Awaitable[None]]


class TopicReplica:
    """Feeds every record of ``topic`` to ``handler`` in batches, in offset order per partition."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        handler: Handler,
        batch: int = REPLICA_BATCH,
        start: Mapping[int, int] | None = None,
        on_stale: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.handler = handler
        self.batch = batch
        self.start = dict(start) if start is not None else None
        self.on_stale = on_stale
        self.caught_up = asyncio.Event()
        self.records = 0
        self.position: dict[int, int] = {}

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            **consumer_config(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"{self.settings.app_id}-replica",
        )
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            consumer.assign(partitions)
            targets = await consumer.end_offsets(partitions)
            firsts = await consumer.beginning_offsets(partitions)
            start = await self._usable_start(firsts, targets)
            for tp in partitions:
                self.position[tp.partition] = start.get(tp.partition, firsts[tp])
                consumer.seek(tp, self.position[tp.partition])
            behind = sum(targets[tp] - self.position[tp.partition] for tp in partitions)
            log.info("replicating %s (%d records to catch up)", self.topic, behind)
            while True:
                if not self.caught_up.is_set() and await self._reached(consumer, targets):
                    log.info("replica of %s caught up: %d records", self.topic, self.records)
                    self.caught_up.set()
                fetched = await consumer.getmany(timeout_ms=REPLICA_POLL_MS, max_records=self.batch)
                records = [r for batch in fetched.values() for r in batch]
                if records:
                    self.records += len(records)
                    await self.handler(records)
                    for tp, batch in fetched.items():
                        if batch:
                            self.position[tp.partition] = batch[-1].offset + 1
        finally:
            await consumer.stop()

    async def _usable_start(
        self, firsts: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int]
    ) -> dict[int, int]:
        """The start offsets, if they fit the topic as it is now; else {} (the beginning)."""
        if self.start is None:
            return {}
        problem = None
        if set(self.start) != {tp.partition for tp in ends}:
            problem = f"partitions {sorted(self.start)} but the topic has {len(ends)}"
        else:
            for tp, end in ends.items():
                at = self.start[tp.partition]
                if not firsts[tp] <= at <= end:
                    problem = (
                        f"offset {at} of partition {tp.partition} not in [{firsts[tp]}, {end}]"
                    )
                    break
        if problem is None:
            return self.start
        if self.on_stale is not None:
            await self.on_stale(problem)
        return {}

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        for _ in range(100):
            # A consumer that subscribes to nothing keeps no metadata of its own; ask for it.
            cluster = await consumer._client.fetch_all_metadata()
            found = cluster.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {self.topic} does not exist (run: streaming-rec topics)")

    @staticmethod
    async def _reached(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> bool:
        for tp, end in targets.items():
            if await consumer.position(tp) < end:
                return False
        return True


def from_consumer_record(record: ConsumerRecord) -> Record:
    """The Record of an aiokafka record (timestamp in ms, −1 when none)."""
    ts = record.timestamp
    return Record(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        ts if ts is not None and ts >= 0 else NO_TIMESTAMP,
        source=record,
    )


def replica_handler(handler: FlowHandler) -> Handler:
    """A TopicReplica handler that feeds a flow's ``handle``."""

    async def handle(records: Sequence[ConsumerRecord]) -> None:
        await handler([from_consumer_record(r) for r in records])

    return handle
