"""Ready means ready: a worker answers only once its index covers every item that `items`
held when it started.

Each `items` partition is embedded by one worker of the group, so no worker can tell from
its own agent whether the catalog is in. What every worker can read is the group's
committed offsets on `items`: Faust flushes the producer (the item vectors) before it
commits, so once the group has committed past the end offsets `items` had at this
worker's start, every one of those items has its vector (or its dead letter, or its
tombstone) in `item-vectors`. The worker then reads the end offsets of `item-vectors` and
is ready when its index replica has read up to them.

    "N of M items embedded": M records were in `items` at start, N of them committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streaming_rec.config import KafkaSettings
from streaming_rec.edge.kafka_config import client_config

log = logging.getLogger(__name__)
POLL_S = 0.5
SAY_EVERY_S = 15.0
"""While not covered, say where it waits this often (s): a worker that never becomes ready
tells which partition holds it back."""


class ItemsProgress:
    """Follows the group's progress through the `items` records present at start.
    ``embedded``/``total`` count records; ``covered`` is set once ``index_offsets``
    (partition → next offset the index replica will read) reach the end of
    `item-vectors` as it was after the group had committed past them."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.total = 0
        self.embedded = 0
        self.covered = asyncio.Event()

    def describe(self) -> str:
        """E.g. "3883 of 3883 items embedded"."""
        return f"{self.embedded} of {self.total} items embedded"

    async def run(self, index_offsets: Mapping[int, int]) -> None:
        """Wait for the group, then for the index; sets ``covered``. Runs until then."""
        consumer = AIOKafkaConsumer(**client_config(self.settings), group_id=None)
        admin = AIOKafkaAdminClient(**client_config(self.settings))
        await consumer.start()
        await admin.start()
        try:
            items = await self._partitions(consumer, self.settings.topic("items"))
            firsts = await consumer.beginning_offsets(items)
            ends = await consumer.end_offsets(items)
            self.total = sum(ends[tp] - firsts[tp] for tp in items)
            loop = asyncio.get_running_loop()
            say_at = loop.time() + SAY_EVERY_S
            while True:
                committed = await admin.list_consumer_group_offsets(
                    self.settings.app_id, partitions=items
                )
                done = {
                    tp: min(ends[tp], max(firsts[tp], _offset(committed.get(tp)))) for tp in items
                }
                self.embedded = sum(done[tp] - firsts[tp] for tp in items)
                if all(done[tp] >= ends[tp] for tp in items):
                    break
                if loop.time() >= say_at:
                    say_at = loop.time() + SAY_EVERY_S
                    behind = {
                        tp.partition: (done[tp], ends[tp]) for tp in items if done[tp] < ends[tp]
                    }
                    log.info(
                        "not ready: %s; the group has not committed `items` up to the end "
                        "offsets at start (partition: (committed, end)) %s",
                        self.describe(),
                        behind,
                    )
                await asyncio.sleep(POLL_S)
            vectors = await self._partitions(consumer, self.settings.topic("item-vectors"))
            targets = await consumer.end_offsets(vectors)
            while any(index_offsets.get(tp.partition, 0) < end for tp, end in targets.items()):
                if loop.time() >= say_at:
                    say_at = loop.time() + SAY_EVERY_S
                    log.info(
                        "not ready: the index has not read `item-vectors` up to %s (it is at %s)",
                        {tp.partition: end for tp, end in targets.items()},
                        dict(index_offsets),
                    )
                await asyncio.sleep(POLL_S / 5)
            log.info("the index covers the catalog: %s", self.describe())
            self.covered.set()
        finally:
            await admin.close()
            await consumer.stop()

    @staticmethod
    async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
        for _ in range(100):
            cluster = await consumer._client.fetch_all_metadata()
            found = cluster.partitions_for_topic(topic)
            if found:
                return [TopicPartition(topic, p) for p in sorted(found)]
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topic} does not exist (run: streaming-rec topics)")


def _offset(meta: object) -> int:
    offset = getattr(meta, "offset", -1)
    return int(offset) if offset is not None else -1
