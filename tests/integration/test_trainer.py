"""The trainer learns collaborative factors from the feedback stream, live."""

from __future__ import annotations

import random
import time
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec.edge.kafka_config import client_config
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import WorkerProcess
from tests.integration.test_loop import ask_until

pytestmark = pytest.mark.integration

HORROR, MUSICAL = "Scream (1996)", "Sound of Music, The (1965)"  # far apart in content


def wait_for_refresh(trainer: WorkerProcess, events: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = trainer.health() or {}
        if health.get("refreshed_at_events", 0) >= events:
            return health
        time.sleep(0.5)
    raise AssertionError(f"trainer did not refresh past {events} events: {health}")


def test_items_consumed_together_are_recommended_together_once_learned(
    worker: WorkerProcess, trainer: WorkerProcess, client: RecClient, movies: list[Movie]
) -> None:
    tag = uuid.uuid4().hex[:6]
    probe = f"u-probe-{tag}"
    client.feedback(probe, HORROR, "click")
    client.flush()
    before = ask_until(client, probe, lambda r: r.user_events == 1, text="", k=10)
    assert MUSICAL not in {i.item_id for i in before.items}  # content alone does not link them

    others = [m.item_id for m in random.Random(7).sample(movies, 20)]
    start = (trainer.health() or {}).get("events", 0)
    for u in range(40):
        user = f"u-co-{tag}-{u}"
        for item in (HORROR, MUSICAL, others[u % 20], others[(u * 7) % 20]):
            client.feedback(user, item, "click")
    client.flush()
    wait_for_refresh(trainer, start + 160)

    after = ask_until(
        client, probe, lambda r: MUSICAL in {i.item_id for i in r.items[:3]}, timeout=20, k=10
    )
    assert MUSICAL in {i.item_id for i in after.items[:3]}, [i.title for i in after.items]


def test_a_new_item_gets_predicted_factors_before_anyone_clicks_it(
    worker: WorkerProcess, trainer: WorkerProcess, client: RecClient, settings: Settings
) -> None:
    health = trainer.health() or {}
    assert health.get("learned", 0) >= 10, health  # the content → factors map exists
    item_id = f"cold-{uuid.uuid4().hex[:8]}"
    client.upsert_item(
        {"item_id": item_id, "title": "A brand new musical", "categories": ["Musical"]}
    )
    client.flush()
    topic = settings.topic("item-vectors")
    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    deadline = time.monotonic() + 20
    factors = None
    try:
        while factors is None and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key == item_id.encode() and record.value is not None:
                        vector = codec.decode_item_vector(record.key, record.value)
                        if vector is not None and vector.factors is not None:
                            factors = vector.factors
    finally:
        consumer.close()
    assert factors is not None and factors.shape == (settings.factor_dim,)
    assert 0.0 < float((factors**2).sum()) <= 1.0 + 1e-5
