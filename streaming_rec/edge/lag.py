"""Consumer lag of the workers' group: records in a topic that the group has not yet
committed past (the backlog a flood leaves, and how fast it drains)."""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from streaming_rec.config import KafkaSettings
from streaming_rec.edge.kafka_config import client_config, consumer_config


class LagProbe:
    """Reads the group's committed offsets and the topics' end offsets on demand."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._admin = KafkaAdminClient(
            **client_config(settings), client_id=f"{settings.app_id}-lag"
        )
        self._consumer = KafkaConsumer(**consumer_config(settings), enable_auto_commit=False)

    def lag(self, logical_topic: str) -> int:
        """Records of ``logical_topic`` past the group's committed offsets (a partition
        the group never committed counts from its beginning)."""
        topic = self.settings.topic(logical_topic)
        partitions = [
            TopicPartition(topic, p)
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        ends = self._consumer.end_offsets(partitions)
        firsts = self._consumer.beginning_offsets(partitions)
        group = self.settings.app_id
        committed = self._admin.list_group_offsets({group: partitions}).get(group, {})
        total = 0
        for tp in partitions:
            meta = committed.get(tp)
            at = meta.offset if meta is not None and meta.offset >= 0 else firsts[tp]
            total += max(0, ends[tp] - at)
        return total

    def close(self) -> None:
        self._admin.close()
        self._consumer.close()

    def __enter__(self) -> LagProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
