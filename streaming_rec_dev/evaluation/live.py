"""Talking to a real worker through the real topics: publish the catalog and the training
feedback, wait until the worker has applied it, ask many queries with bounded in-flight.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from tqdm import tqdm

from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec.edge.kafka_config import client_config
from streaming_rec.errors import RequestTimeout
from streaming_rec.schemas import Recommendation
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import WorkerProcess
from streaming_rec_dev.evaluation.split import Interaction

log = logging.getLogger(__name__)


def publish_catalog(settings: Settings, movies: Sequence[Movie]) -> None:
    with RecClient(settings, listen=False) as client:
        for movie in movies:
            client.upsert_item(movie.as_item())
        client.flush()


def publish_feedback(
    settings: Settings, rows: Sequence[Interaction], progress: bool = True
) -> float:
    """Every row as one `feedback` message (key user_id, ts = rating time), in list order.

    The Kafka record timestamp stays the send time: rating times are years old and the
    topic's retention would delete them. Returns the seconds spent (flush included).
    """
    topic = settings.topic("feedback")
    producer = KafkaProducer(
        **client_config(settings), acks="all", linger_ms=20, batch_size=512 * 1024
    )
    started = time.monotonic()
    try:
        for row in tqdm(rows, desc="feedback → Kafka", unit="ev", disable=not progress):
            value = orjson.dumps(
                {"user_id": row.user_id, "item_id": row.item_id, "event": row.event, "ts": row.ts}
            )
            producer.send(topic, key=row.user_id.encode(), value=value)
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=30)
    return time.monotonic() - started


def topic_size(settings: Settings, logical: str) -> int:
    """Records ever written to a topic (the sum of its end offsets)."""
    topic = settings.topic(logical)
    consumer = KafkaConsumer(**client_config(settings))
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return int(sum(consumer.end_offsets(parts).values()))
    finally:
        consumer.close()


class FeedbackProgress:
    """How far the worker's consumer group is on `feedback`: (committed, written) records.

    One admin client and one consumer, reused for every poll."""

    def __init__(self, settings: Settings) -> None:
        self.group = settings.app_id
        topic = settings.topic("feedback")
        self.admin = KafkaAdminClient(**client_config(settings), client_id=f"{self.group}-eval")
        self.consumer = KafkaConsumer(**client_config(settings))
        self.parts = [
            TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic))
        ]

    def poll(self) -> tuple[int, int]:
        ends = self.consumer.end_offsets(self.parts)
        committed = self.admin.list_group_offsets({self.group: self.parts}).get(self.group, {})
        done = sum(max(0, committed[tp].offset) for tp in self.parts if tp in committed)
        return done, int(sum(ends.values()))

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def wait_applied(
    settings: Settings,
    worker: WorkerProcess,
    timeout: float,
    progress: bool = True,
) -> float:
    """Block until the consumer group has committed every `feedback` record.

    Returns the apply rate (records/s) over the wait. Raises when the worker dies or the
    time runs out.
    """
    started = time.monotonic()
    tracker = FeedbackProgress(settings)
    done, total = tracker.poll()
    first = done
    bar = tqdm(total=total, initial=done, desc="worker applies", unit="ev", disable=not progress)
    try:
        while done < total:
            if not worker.alive():
                raise RuntimeError(f"worker died while applying feedback:\n{worker.log_tail()}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"feedback not applied in {timeout:.0f} s ({done}/{total})")
            time.sleep(1.0)
            now_done, total = tracker.poll()
            bar.update(now_done - done)
            done = now_done
    finally:
        bar.close()
        tracker.close()
    return (done - first) / max(time.monotonic() - started, 1e-9)


@dataclass(frozen=True)
class Ask:
    """One query to send: ``tag`` is the caller's name for it (a user, a query id)."""

    tag: str
    user_id: str
    text: str = ""
    k: int = 10
    exclude_ids: tuple[str, ...] = ()


@dataclass
class AskResult:
    replies: dict[str, Recommendation] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def ask_many(
    client: RecClient,
    asks: Iterable[Ask],
    max_in_flight: int = 64,
    timeout: float = 60.0,
    desc: str = "queries",
    progress: bool = True,
) -> AskResult:
    """Send every ask, at most ``max_in_flight`` unanswered at once; collect by request_id."""
    asks = list(asks)
    result = AskResult()
    in_flight: deque[tuple[str, str]] = deque()
    started = time.monotonic()
    bar = tqdm(total=len(asks), desc=desc, unit="q", disable=not progress)

    def collect_oldest() -> None:
        request_id, tag = in_flight.popleft()
        try:
            result.replies[tag] = client.wait(request_id, timeout)
        except RequestTimeout:
            result.failed.append(tag)
        bar.update(1)

    try:
        for ask in asks:
            extra: dict[str, Any] = {"exclude_ids": ask.exclude_ids} if ask.exclude_ids else {}
            request_id = f"eval-{uuid.uuid4().hex}"
            client.send_query(ask.user_id, ask.text, k=ask.k, request_id=request_id, **extra)
            in_flight.append((request_id, ask.tag))
            if len(in_flight) >= max_in_flight:
                client.flush()
                collect_oldest()
        client.flush()
        while in_flight:
            collect_oldest()
    finally:
        bar.close()
    result.seconds = time.monotonic() - started
    return result
