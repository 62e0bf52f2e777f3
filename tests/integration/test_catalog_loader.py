"""`streaming-rec load-catalog` streams a JSON-lines file into `items`, names the lines it
skips, and reports items/s."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from streaming_rec.config import load_settings
from streaming_rec.edge.admin import ensure_topics
from streaming_rec.edge.kafka_config import client_config
from streaming_rec.topics import TopicCatalog

pytestmark = pytest.mark.integration


def test_load_catalog_streams_the_file_and_names_bad_lines(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = load_settings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"c{uuid.uuid4().hex[:8]}."
    )
    ensure_topics(settings, TopicCatalog.load())
    path = tmp_path / "items.jsonl"
    lines = [
        orjson.dumps({"item_id": f"it-{n}", "title": f"Item {n}", "categories": ["Drama"]})
        for n in range(500)
    ]
    lines[100:100] = [b"{not json", b"[1, 2]", b""]
    path.write_bytes(b"\n".join(lines) + b"\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SREC_")}
    env.update(SREC_BOOTSTRAP_SERVERS=kafka_bootstrap, SREC_TOPIC_PREFIX=settings.topic_prefix)
    done = subprocess.run(
        [sys.executable, "-m", "streaming_rec", "load-catalog", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "published 500 items" in done.stdout and "items/s" in done.stdout
    assert "2 lines skipped" in done.stdout
    assert f"{path}:101: skipped" in done.stderr and f"{path}:102: skipped" in done.stderr
    consumer = KafkaConsumer(**client_config(settings))
    try:
        topic = settings.topic("items")
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert sum(consumer.end_offsets(parts).values()) == 500
    finally:
        consumer.close()
