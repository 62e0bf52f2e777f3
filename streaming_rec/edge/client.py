"""The Python client: ask and wait for the answer, send feedback, change the catalog.

    with RecClient(load_settings()) as client:
        answer = client.ask("u1", "a funny animated film for children", k=5)
        client.feedback("u1", answer.items[0].item_id, "click")

Every message is built and checked by the codec (``streaming_rec.codec``), the module the
workers decode with, against the schemas of ``topics/``: a field a worker would refuse
fails here, as a DecodeError naming it, instead of ending in the dead letters.

Replies are matched by request_id. A background thread reads `recommendations` (every
partition, from the end at start-up), so many requests can be in flight at once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.kafka_config import consumer_config, producer_config
from streaming_rec.errors import BrokerError, RequestTimeout
from streaming_rec.schemas import Item, Recommendation

M = TypeVar("M")


class RecClient:
    """Producer for queries/feedback/items and a reply listener for recommendations."""

    def __init__(self, settings: Settings, listen: bool = True, bulk: bool = False) -> None:
        """``bulk``: batch records for throughput (catalog loads) rather than sending each
        one at once (queries, where every millisecond counts)."""
        self.settings = settings
        try:
            self._producer = KafkaProducer(
                **producer_config(settings),
                acks="all",
                enable_idempotence=True,
                linger_ms=20 if bulk else 0,
                batch_size=512 * 1024 if bulk else 16 * 1024,
            )
        except KafkaError as exc:  # no broker, refused credentials or certificate
            raise BrokerError(
                f"cannot connect to Kafka at {settings.bootstrap_servers} "
                f"({settings.security_protocol}): {exc}"
            ) from None
        self._replies: dict[str, Recommendation] = {}
        self._arrived = threading.Condition()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        if listen:
            self._start_listener()

    # --- sending ---------------------------------------------------------------------------
    def send_query(
        self,
        user_id: str,
        text: str = "",
        k: int | None = None,
        categories: Iterable[str] = (),
        exclude_ids: Iterable[str] = (),
        request_id: str | None = None,
    ) -> str:
        """Publish a query; return its request_id (answers arrive on `recommendations`)."""
        request_id = request_id or uuid.uuid4().hex
        fields: dict[str, Any] = {"request_id": request_id, "user_id": user_id, "text": text}
        if k is not None:
            fields["k"] = k
        filters = {"categories": list(categories), "exclude_ids": list(exclude_ids)}
        if filters["categories"] or filters["exclude_ids"]:
            fields["filters"] = filters
        fields["sent_at"] = time.time()
        query = _checked(codec.decode_query, fields)
        self.send_raw("queries", user_id.encode(), codec.encode_query(query))
        return request_id

    def feedback(
        self,
        user_id: str,
        item_id: str,
        event: str,
        ts: float | None = None,
        request_id: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {"user_id": user_id, "item_id": item_id, "event": event}
        fields["ts"] = ts if ts is not None else time.time()
        if request_id:
            fields["request_id"] = request_id
        message = _checked(codec.decode_feedback, fields)
        self.send_raw("feedback", user_id.encode(), codec.encode_feedback(message))

    def upsert_item(self, item: Item | Mapping[str, Any]) -> None:
        """Publish an item (an :class:`Item` or its fields as in topics/schemas/item.v1.json)."""
        if not isinstance(item, Item):
            item = _checked(_decode_item, item)
        self.send_raw("items", item.item_id.encode(), codec.encode_item(item))

    def delete_item(self, item_id: str) -> None:
        item = _checked(_decode_item, {"item_id": item_id, "deleted": True})
        self.send_raw("items", item_id.encode(), codec.encode_item(item))

    def send_raw(self, logical_topic: str, key: bytes | None, value: bytes | None) -> None:
        """Publish bytes as they are (also for testing what workers do with bad input)."""
        self._producer.send(self.settings.topic(logical_topic), key=key, value=value)

    def flush(self, timeout: float | None = 30.0) -> None:
        self._producer.flush(timeout=timeout)

    # --- answers ---------------------------------------------------------------------------
    def ask(
        self, user_id: str, text: str = "", timeout: float = 10.0, **kwargs: Any
    ) -> Recommendation:
        """Send a query and wait for its answer; RequestTimeout if none arrives in time."""
        request_id = self.send_query(user_id, text, **kwargs)
        self.flush()
        return self.wait(request_id, timeout)

    def wait(self, request_id: str, timeout: float = 10.0) -> Recommendation:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while request_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RequestTimeout(f"no answer to request {request_id} within {timeout:g} s")
                self._arrived.wait(left)
            return self._replies.pop(request_id)

    def subscribe(self, from_beginning: bool = False) -> Iterator[Recommendation]:
        """Every recommendation published from now (or from the start), as it arrives."""
        consumer = self._reply_consumer(from_beginning)
        try:
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        yield codec.decode_recommendation(record.value)
        finally:
            consumer.close()

    def _reply_consumer(self, from_beginning: bool) -> KafkaConsumer:
        topic = self.settings.topic("recommendations")
        consumer = KafkaConsumer(**consumer_config(self.settings), enable_auto_commit=False)
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        if from_beginning:
            consumer.seek_to_beginning(*partitions)
        else:
            consumer.seek_to_end(*partitions)
        for tp in partitions:
            consumer.position(tp)  # resolve now, so nothing sent after this is missed
        return consumer

    def _start_listener(self) -> None:
        consumer = self._reply_consumer(from_beginning=False)

        def listen() -> None:
            try:
                while not self._stop.is_set():
                    polled = consumer.poll(timeout_ms=100)
                    if not polled:
                        continue
                    with self._arrived:
                        for records in polled.values():
                            for record in records:
                                reply = codec.decode_recommendation(record.value)
                                self._replies[reply.request_id] = reply
                        self._arrived.notify_all()
            finally:
                consumer.close()

        self._listener = threading.Thread(target=listen, name="srec-replies", daemon=True)
        self._listener.start()

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._producer.flush(timeout=10)
        self._producer.close(timeout=10)

    def __enter__(self) -> RecClient:
        return self

    def __exit__(
        self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None
    ) -> None:
        self.close()


def _checked(decode: Callable[[bytes], M], fields: Mapping[str, Any]) -> M:
    """The message ``fields`` make, as a worker will decode it: built and checked by the
    codec (DecodeError naming the field a worker would refuse)."""
    return decode(orjson.dumps(dict(fields)))


def _decode_item(raw: bytes) -> Item:
    return codec.decode_item(None, raw)  # no key to compare: the key is made from item_id
