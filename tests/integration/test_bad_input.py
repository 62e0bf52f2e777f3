"""The bad-input corpus (tests/bad_input/) through the real worker, broker and model: every
message lands in `dead-letters` naming its field, the worker never crashes and goes on
answering, and /metrics counts exactly what was sent."""

from __future__ import annotations

import base64
import re
import time
import urllib.request
import uuid
from collections import Counter

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec.edge.kafka_config import client_config
from streaming_rec.errors import DecodeError
from streaming_rec.flows.convert import DEAD_LETTER_MAX_KEY, DEAD_LETTER_MAX_VALUE
from streaming_rec.schemas import DeadLetter, Recommendation
from streaming_rec_dev.devstack import WorkerProcess
from tests.bad_input.corpus import TOPICS, Case, corpus
from tests.integration.test_loop import ask_until

pytestmark = pytest.mark.integration

Where = tuple[str, int, int]  # topic, partition, offset


def test_every_kind_of_bad_input_is_dead_lettered_and_the_worker_goes_on(
    worker: WorkerProcess, client: RecClient, settings: Settings
) -> None:
    tag = f"bad-{uuid.uuid4().hex[:6]}"
    cases = corpus(tag)
    assert worker.process is not None
    pid, log_start = worker.process.pid, worker.log_path.stat().st_size
    counted_before = dead_letter_counts(worker, settings)

    sent, refused, first_requests = send_corpus(settings, cases)
    assert [c.kind for c in refused] == [c.kind for c in cases if c.never_sent]

    # the worker goes on: a valid query sent after the corpus is answered, and so is the
    # first of the two queries that share a request_id
    reply = client.ask(f"{tag}-after", "a western", k=3)
    assert reply.status == "ok" and len(reply.items) == 3
    answers = read_replies(settings, set(first_requests), timeout=10)  # sent without reply_to
    assert [answers[r].status for r in first_requests] == ["ok"] * len(first_requests)

    letters = read_letters(settings, set(sent), timeout=30)
    assert set(letters) == set(sent), sorted(c.kind for w, c in sent.items() if w not in letters)
    for where, case in sent.items():
        check_letter(letters[where], case)

    # ... and the feedback and item agents too
    item_id = f"{tag}-fine-item"
    client.upsert_item({"item_id": item_id, "title": "Gribbleflax", "categories": ["Sci-Fi"]})
    client.feedback(f"{tag}-fan", "Toy Story (1995)", "click")
    client.flush()

    def has_item(r: Recommendation) -> bool:
        return bool(r.items) and r.items[0].item_id == item_id

    assert has_item(ask_until(client, f"{tag}-fan", has_item, text="Gribbleflax", k=3))
    fan = ask_until(client, f"{tag}-fan", lambda r: r.user_events == 1, text="", k=3)
    assert fan.user_events == 1

    counted = dead_letter_counts(worker, settings)
    per_topic = Counter(settings.topic(case.topic) for case in sent.values())
    for topic in TOPICS:
        name = settings.topic(topic)
        assert counted[name] - counted_before[name] == per_topic[name], name

    assert worker.alive() and worker.process.pid == pid
    health = worker.health()
    assert health is not None and health["ready"]
    log = worker.log_path.read_bytes()[log_start:].decode("utf-8", "replace")
    assert "Crashed reason" not in log and "Traceback" not in log, log[-3000:]


def send_corpus(
    settings: Settings, cases: list[Case]
) -> tuple[dict[Where, Case], list[Case], list[str]]:
    """Send each case (after its `before` messages), one at a time, in order; where each
    landed, the cases the broker refused, and the request ids of the `before` queries."""
    producer = KafkaProducer(**client_config(settings), acks="all", linger_ms=0)
    sent: dict[Where, Case] = {}
    refused: list[Case] = []
    first_requests: list[str] = []
    try:
        for case in cases:
            topic = settings.topic(case.topic)
            for value in case.before:
                producer.send(topic, key=case.key, value=value).get(timeout=30)
                first_requests.append(codec.decode_query(value).request_id)
            try:
                meta = producer.send(topic, key=case.key, value=case.value).get(timeout=30)
            except (KafkaError, ValueError):  # kafka-python: "Need at least one: key or value"
                refused.append(case)
                continue
            sent[(meta.topic, meta.partition, meta.offset)] = case
    finally:
        producer.close(timeout=10)
    return sent, refused, first_requests


def read_replies(
    settings: Settings, request_ids: set[str], timeout: float
) -> dict[str, Recommendation]:
    """The replies to ``request_ids`` on `recommendations`, every partition from the start."""
    topic = settings.topic("recommendations")
    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: dict[str, Recommendation] = {}
    deadline = time.monotonic() + timeout
    try:
        while set(found) != request_ids and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    try:
                        reply = codec.decode_recommendation(record.value)
                    except DecodeError:  # junk other tests put there on purpose
                        continue
                    if reply.request_id in request_ids:
                        found[reply.request_id] = reply
    finally:
        consumer.close()
    return found


def read_letters(settings: Settings, wanted: set[Where], timeout: float) -> dict[Where, DeadLetter]:
    """The dead letters of the messages at ``wanted``, by where the message was."""
    topic = settings.topic("dead-letters")
    consumer = KafkaConsumer(
        **client_config(settings), enable_auto_commit=False, fetch_max_bytes=8 * 1024 * 1024
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: dict[Where, DeadLetter] = {}
    deadline = time.monotonic() + timeout
    try:
        while set(found) != wanted and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    letter = codec.decode_dead_letter(record.value)
                    where = (letter.topic, letter.partition, letter.offset)
                    if where in wanted:
                        found[where] = letter
    finally:
        consumer.close()
    return found


def check_letter(letter: DeadLetter, case: Case) -> None:
    assert letter.field == case.field, (case.kind, letter.reason)
    assert letter.reason.startswith(f"{case.field}: {case.reason}"), (case.kind, letter.reason)
    assert letter.error == case.error, case.kind
    key, value = case.key or b"", case.value or b""
    assert base64.b64decode(letter.key or "") == key[:DEAD_LETTER_MAX_KEY]
    assert (letter.key is None) == (case.key is None)
    assert base64.b64decode(letter.value or "") == value[:DEAD_LETTER_MAX_VALUE]
    assert (letter.value is None) == (case.value is None)
    assert letter.value_size == (None if case.value is None else len(value))
    too_big = len(key) > DEAD_LETTER_MAX_KEY or len(value) > DEAD_LETTER_MAX_VALUE
    assert letter.truncated == too_big, case.kind


def dead_letter_counts(worker: WorkerProcess, settings: Settings) -> Counter[str]:
    """streaming_rec_messages_total{outcome="dead_letter"} per real topic name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as r:
        exposition = r.read().decode()
    counts: Counter[str] = Counter()
    pattern = r'streaming_rec_messages_total\{outcome="dead_letter",topic="([^"]+)"\} (\S+)'
    for topic, value in re.findall(pattern, exposition):
        counts[topic] = int(float(value))
    return counts
