"""The transport against a producer that is not ours (librdkafka, via confluent-kafka):
every Kafka codec is read by a real worker (query answered, item indexed, click applied);
a batch the worker cannot read is skipped with a dead letter naming its offsets, the
worker stays up and answers the next query; a click produced inside an aborted
transaction is never applied (read_committed)."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec.edge.kafka_config import consumer_config
from streaming_rec.schemas import Recommendation
from streaming_rec_dev.devstack import WorkerProcess, worker_env
from tests.integration.test_loop import ask_until

pytestmark = pytest.mark.integration

CODECS = ("gzip", "snappy", "lz4", "zstd")
ITEMS = [
    {"item_id": f"film-{i}", "title": title, "categories": [genre]}
    for i, (title, genre) in enumerate(
        [
            ("A space adventure with robots", "Sci-Fi"),
            ("A funny animated film for children", "Animation"),
            ("A western with outlaws and horses", "Western"),
            ("A romantic comedy in Paris", "Romance"),
            ("A war drama in the trenches", "War"),
            ("A horror film in a haunted house", "Horror"),
        ]
    )
]
#: A sitecustomize that hides cramjam: aiokafka then has no snappy, lz4 or zstd.
NO_CRAMJAM = "import sys\nsys.modules['cramjam'] = None\n"


def start_worker(settings: Settings, tmp: Path, **env: str) -> WorkerProcess:
    with RecClient(settings, listen=False) as loader:
        for item in ITEMS:
            loader.upsert_item(item)
        loader.flush()
    process = WorkerProcess(
        worker_env(settings, "codec-worker", **env), tmp / "w.log", settings.web_port
    )
    process.start()
    process.wait_ready(min_items=len(ITEMS), timeout=300)
    return process


@pytest.fixture
def worker(own_topics: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = start_worker(own_topics, tmp_path)
    try:
        yield process
    finally:
        process.stop(timeout=30)


def librdkafka(settings: Settings, **config: str | int) -> Producer:
    return Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 0, **config})


def produce(producer: Producer, settings: Settings, topic: str, key: str, value: dict) -> int:
    """Produce one record, wait for it; its offset."""
    where: list[int] = []

    def done(err: object, msg: object) -> None:
        assert err is None, err
        where.append(msg.offset())  # type: ignore[attr-defined]

    producer.produce(
        settings.topic(topic), key=key.encode(), value=orjson.dumps(value), on_delivery=done
    )
    producer.flush(30)
    assert len(where) == 1
    return where[0]


def query(user: str, text: str) -> dict:
    return {
        "request_id": uuid.uuid4().hex,
        "user_id": user,
        "text": text,
        "k": 3,
        "sent_at": time.time(),
    }


def test_every_codec_from_librdkafka_is_read(worker: WorkerProcess, own_topics: Settings) -> None:
    settings = own_topics
    with RecClient(settings) as client:
        for name in CODECS:
            producer = librdkafka(settings, **{"compression.type": name})
            user = f"{name}-user-{uuid.uuid4().hex[:6]}"
            ask = query(user, "robots in space")
            ask["reply_to"] = {"partition": client.reply_partition}  # the one it reads
            client.expect(ask["request_id"])
            produce(producer, settings, "queries", user, ask)
            reply = client.wait(ask["request_id"], timeout=30)
            assert reply.status == "ok" and reply.items, name

            item_id = f"{name}-item"
            produce(
                producer,
                settings,
                "items",
                item_id,
                {
                    "item_id": item_id,
                    "title": f"Zorblax {name} quintessence",
                    "categories": ["Sci-Fi"],
                },
            )
            produce(
                producer,
                settings,
                "feedback",
                user,
                {"user_id": user, "item_id": "film-1", "event": "click", "ts": time.time()},
            )

            def indexed(r: Recommendation, item_id: str = item_id) -> bool:
                return bool(r.items) and r.items[0].item_id == item_id

            assert indexed(
                ask_until(
                    client, user, indexed, timeout=30, text=f"Zorblax {name} quintessence", k=3
                )
            ), name
            clicked = ask_until(
                client, user, lambda r: r.user_events == 1, timeout=30, text="", k=3
            )
            assert clicked.user_events == 1, name
    assert worker.alive()


def test_an_unreadable_batch_is_dead_lettered_and_the_worker_goes_on(
    own_topics: Settings, tmp_path: Path
) -> None:
    settings = own_topics
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_CRAMJAM)
    process = start_worker(settings, tmp_path, PYTHONPATH=str(site))
    try:
        pid = process.process.pid if process.process else None
        user = f"u-{uuid.uuid4().hex[:6]}"
        poison = query(user, "robots")
        offset = produce(
            librdkafka(settings, **{"compression.type": "zstd"}), settings, "queries", user, poison
        )
        with RecClient(settings) as client:
            reply = client.ask(user, "a western", k=3, timeout=30)  # same user: same partition
            assert reply.status == "ok" and reply.items
            with pytest.raises(Exception, match="no answer"):
                client.wait(poison["request_id"], timeout=2)
        queries = settings.topic("queries")
        exposition = scrape(process)
        assert (
            "streaming_rec_unreadable_batches_total"
            f'{{error="UnsupportedCodecError",topic="{queries}"}} 1.0' in exposition
        ), exposition
        assert process.alive() and process.process is not None and process.process.pid == pid
        log = process.log_path.read_text(errors="replace")
        assert "Traceback" not in log and "Crashed reason" not in log, log[-3000:]
        letters = dead_letters(settings, timeout=30)
        mine = [x for x in letters if x["topic"] == queries and x["offset"] == offset]
        assert len(mine) == 1, letters
        assert mine[0]["error"] == "UnsupportedCodecError" and mine[0]["last_offset"] == offset
        assert f"offsets {offset}-{offset}" in mine[0]["reason"]
        codec.decode_dead_letter(orjson.dumps(mine[0]))  # a valid dead_letter v1
    finally:
        process.stop(timeout=30)


def test_a_click_of_an_aborted_transaction_is_not_applied(
    worker: WorkerProcess, own_topics: Settings
) -> None:
    settings = own_topics
    user = f"tx-{uuid.uuid4().hex[:6]}"
    tx = librdkafka(settings, **{"transactional.id": f"srec-test-{uuid.uuid4().hex[:6]}"})
    tx.init_transactions(30)
    tx.begin_transaction()
    for _ in range(3):
        tx.produce(
            settings.topic("feedback"),
            key=user.encode(),
            value=orjson.dumps(
                {"user_id": user, "item_id": "film-2", "event": "click", "ts": time.time()}
            ),
        )
    tx.flush(30)
    tx.abort_transaction(30)
    with RecClient(settings) as client:
        client.feedback(user, "film-3", "click")  # committed, after the aborted ones
        client.flush()
        reply = ask_until(client, user, lambda r: r.user_events >= 1, timeout=30, text="", k=3)
        time.sleep(2)  # an aborted click applied late would show now
        reply = client.ask(user, "", k=3)
    assert reply.user_events == 1


def dead_letters(settings: Settings, timeout: float) -> list[dict]:
    topic = settings.topic("dead-letters")
    consumer = KafkaConsumer(**consumer_config(settings), enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while not found and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                found += [orjson.loads(r.value) for r in records]
    finally:
        consumer.close()
    return found


def scrape(process: WorkerProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/metrics", timeout=5) as r:
        return r.read().decode()
