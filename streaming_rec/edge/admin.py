"""Create the topics of the contract (topics/topics.json), idempotently."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from streaming_rec.config import KafkaSettings
from streaming_rec.edge.kafka_config import client_config
from streaming_rec.errors import BrokerError
from streaming_rec.topics import TopicCatalog

log = logging.getLogger(__name__)


def ensure_topics(settings: KafkaSettings, catalog: TopicCatalog) -> list[str]:
    """Create every missing topic; return the names created. Existing topics are kept."""
    try:
        admin = KafkaAdminClient(**client_config(settings), client_id=f"{settings.app_id}-admin")
    except Exception as exc:
        raise BrokerError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        wanted = []
        for spec in catalog.all():
            name = settings.topic(spec.name)
            if name in existing:
                continue
            configs = {"cleanup.policy": spec.cleanup_policy}
            if spec.retention_ms is not None:
                configs["retention.ms"] = str(spec.retention_ms)
            wanted.append(
                NewTopic(name, spec.partitions, spec.replication_factor, topic_configs=configs)
            )
        if wanted:
            admin.create_topics(wanted, timeout_ms=30_000)
            log.info("created topics: %s", ", ".join(t.name for t in wanted))
        return [t.name for t in wanted]
    finally:
        admin.close()


def topic_is_empty(settings: KafkaSettings, topic: str) -> bool:
    """True when no partition of ``topic`` holds a record (end offsets all 0)."""
    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return bool(sum(ends.values()) == 0)
    finally:
        consumer.close()
