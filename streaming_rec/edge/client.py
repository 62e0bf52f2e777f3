"""The Python client: ask and wait for the answer, send feedback, change the catalog.

    with RecClient(load_settings()) as client:
        answer = client.ask("u1", "a funny animated film for children", k=5)
        client.feedback("u1", answer.items[0].item_id, "click")

Every message is built and checked by the codec (``streaming_rec.codec``), the module the
workers decode with, against the schemas of ``topics/``: a field a worker would refuse
fails here, as a DecodeError naming it, instead of ending in the dead letters.

Replies come back to the asker: the client reads one partition of `recommendations` (its
reply partition, see ``streaming_rec.edge.replies``) and names it in every query's
``reply_to``, so it fetches about 1/P of all replies instead of every one. A background
thread reads that partition from its end at start-up and keeps only the replies to requests
this client waits for (bounded: SREC_CLIENT_MAX_PENDING, SREC_CLIENT_REPLY_TTL_S), so many
requests can be in flight at once. A reply that does not decode is logged, counted
(``client.stats.bad``) and skipped; the listener goes on.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.kafka_config import consumer_config, producer_config
from streaming_rec.edge.replies import ReplyStats, ReplyStore, choose_partition, decode_reply
from streaming_rec.errors import BrokerError, DecodeError, RequestTimeout
from streaming_rec.schemas import Id, Item, Recommendation

M = TypeVar("M")
log = logging.getLogger(__name__)


class RecClient:
    """Producer for queries/feedback/items and a listener for the replies to this client."""

    def __init__(
        self,
        settings: Settings,
        listen: bool = True,
        bulk: bool = False,
        reply_partition: int | None = None,
    ) -> None:
        """``listen``: read replies (without it the client only sends, and its queries are
        answered keyed by user_id as before). ``bulk``: batch records for throughput
        (catalog loads) rather than sending each one at once (queries, where every
        millisecond counts). ``reply_partition``: the partition of `recommendations` to
        read (default SREC_CLIENT_REPLY_PARTITION, -1: a hash of a random instance id).
        Raises BrokerError when Kafka cannot be reached, ConfigError for a reply partition
        the topic does not have."""
        self.settings = settings
        self.instance_id = uuid.uuid4().hex
        self.reply_partition: int | None = None  # set once the listener reads it
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
        self._store = ReplyStore(settings.client_max_pending, settings.client_reply_ttl_s)
        self._arrived = threading.Condition()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._listener_error: BaseException | None = None
        if listen:
            chosen = settings.client_reply_partition if reply_partition is None else reply_partition
            self._start_listener(chosen)

    @property
    def stats(self) -> ReplyStats:
        """Records the listener fetched, kept, skipped as another's, refused as bad, and
        pending requests evicted or expired (counts since the client started)."""
        return self._store.stats

    @property
    def pending(self) -> int:
        """Requests this client waits on now, replies arrived or not (≤ client_max_pending)."""
        with self._arrived:
            return len(self._store)

    # --- sending ---------------------------------------------------------------------------
    def send_query(
        self,
        user_id: str,
        text: str = "",
        k: int | None = None,
        categories: Iterable[str] = (),
        exclude_ids: Iterable[str] = (),
        request_id: str | None = None,
        deadline_ms: int | None = None,
        filters: Mapping[str, Any] | None = None,
        understand: bool | None = None,
    ) -> str:
        """Publish a query; return its request_id. A listening client names its reply
        partition (``reply_to``) and waits for the answer from now on (collect it with
        :meth:`wait`). ``filters`` adds the query's other filters (attributes, exclude_
        categories, published_after/before: topics/schemas/query.v1.json); ``understand``
        False turns the parsing of the text off. Raises DecodeError naming a field the
        workers would refuse."""
        request_id = request_id or uuid.uuid4().hex
        fields = query_fields(
            user_id,
            text,
            k,
            categories,
            exclude_ids,
            request_id,
            deadline_ms,
            self.reply_partition,
            filters,
            understand,
        )
        query = _checked(codec.decode_query, fields)
        if self.reply_partition is not None:
            with self._arrived:
                self._store.expect(request_id)
        self.send_raw("queries", user_id.encode(), codec.encode_query(query))
        return request_id

    def feedback(
        self,
        user_id: str,
        item_id: str,
        event: str,
        ts: float | None = None,
        request_id: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """Publish one feedback event (``ts`` in Unix s, default now). ``request_id``: the
        answer the item was shown in (teaches the blend). ``event_id``: chosen by the
        caller; sending the same event again with it (a retry) is applied once. Raises
        DecodeError naming a field the workers would refuse."""
        fields: dict[str, Any] = {"user_id": user_id, "item_id": item_id, "event": event}
        fields["ts"] = ts if ts is not None else time.time()
        if request_id:
            fields["request_id"] = request_id
        if event_id:
            fields["event_id"] = event_id
        message = _checked(codec.decode_feedback, fields)
        self.send_raw("feedback", user_id.encode(), codec.encode_feedback(message))

    def forget_user(self, user_id: str) -> None:
        """Ask the workers to forget ``user_id``: a tombstone (null value) keyed by the user
        on `feedback`, applied after every earlier event of theirs. Their state and
        impressions go; their next query is a cold start."""
        self.send_raw("feedback", checked_user_id(user_id).encode(), None)

    def upsert_item(self, item: Item | Mapping[str, Any]) -> None:
        """Publish an item (an :class:`Item` or its fields as in topics/schemas/item.v1.json)."""
        if not isinstance(item, Item):
            item = _checked(_decode_item, item)
        self.send_raw("items", item.item_id.encode(), codec.encode_item(item))

    def delete_item(self, item_id: str) -> None:
        """Publish the deletion of ``item_id`` (its next version says deleted)."""
        item = _checked(_decode_item, {"item_id": item_id, "deleted": True})
        self.send_raw("items", item_id.encode(), codec.encode_item(item))

    def send_raw(self, logical_topic: str, key: bytes | None, value: bytes | None) -> None:
        """Publish bytes as they are (also for testing what workers do with bad input)."""
        self._producer.send(self.settings.topic(logical_topic), key=key, value=value)

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until everything sent is acknowledged (at most ``timeout`` s)."""
        self._producer.flush(timeout=timeout)

    # --- answers ---------------------------------------------------------------------------
    def ask(
        self, user_id: str, text: str = "", timeout: float = 10.0, **kwargs: Any
    ) -> Recommendation:
        """Send a query and wait for its answer; RequestTimeout if none arrives in time."""
        request_id = self.send_query(user_id, text, **kwargs)
        self.flush()
        return self.wait(request_id, timeout)

    def expect(self, request_id: str, timeout: float | None = None) -> None:
        """Keep the reply to ``request_id`` once it arrives (for ``timeout`` s, default
        SREC_CLIENT_REPLY_TTL_S): for a query published some other way (send_raw, another
        producer) whose ``reply_to`` names this client's ``reply_partition``. Collect it
        with :meth:`wait`. A reply that arrives before anyone expects it is not kept."""
        with self._arrived:
            self._store.expect(request_id, timeout)

    def wait(self, request_id: str, timeout: float = 10.0) -> Recommendation:
        """The answer to ``request_id`` (a query this client sent), waiting at most
        ``timeout`` s. Raises RequestTimeout when none arrives in time (or the request was
        dropped to keep the store bounded), BrokerError when the listener has failed or
        this client does not listen."""
        if self._listener is None:
            raise BrokerError("this client does not listen for replies (listen=False)")
        deadline = time.monotonic() + timeout
        with self._arrived:
            self._store.expect(request_id, timeout)
            try:
                while (reply := self._store.take(request_id)) is None:
                    if self._listener_error is not None:
                        raise BrokerError(f"the reply listener failed: {self._listener_error}")
                    if not self._store.waiting(request_id):
                        raise RequestTimeout(
                            f"request {request_id} dropped: more than "
                            f"{self._store.capacity} requests pending"
                        )
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise RequestTimeout(
                            f"no answer to request {request_id} within {timeout:g} s"
                        )
                    self._arrived.wait(left)
            finally:
                self._store.drop(request_id)
            return reply

    def subscribe(self, from_beginning: bool = False) -> Iterator[Recommendation]:
        """Every recommendation published from now (or from the start), as it arrives, from
        every partition (a monitor's view, not an asker's)."""
        consumer = self._reply_consumer(from_beginning, None)
        try:
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        yield codec.decode_recommendation(record.value)
        finally:
            consumer.close()

    def _reply_consumer(self, from_beginning: bool, configured: int | None) -> KafkaConsumer:
        """A consumer of `recommendations` positioned at the end (or the start): of every
        partition when ``configured`` is None, else of this client's reply partition
        (``configured`` ≥ 0 names it, -1 hashes the instance id)."""
        topic = self.settings.topic("recommendations")
        consumer = KafkaConsumer(**consumer_config(self.settings), enable_auto_commit=False)
        every = sorted(consumer.partitions_for_topic(topic) or ())
        if configured is not None:
            try:
                self.reply_partition = choose_partition(self.instance_id, len(every), configured)
            except Exception:
                consumer.close()
                raise
            every = [self.reply_partition]
        partitions = [TopicPartition(topic, p) for p in every]
        consumer.assign(partitions)
        if from_beginning:
            consumer.seek_to_beginning(*partitions)
        else:
            consumer.seek_to_end(*partitions)
        for tp in partitions:
            consumer.position(tp)  # resolve now, so nothing sent after this is missed
        return consumer

    def _start_listener(self, configured: int) -> None:
        consumer = self._reply_consumer(False, configured)
        stats = self._store.stats

        def listen() -> None:
            try:
                while not self._stop.is_set():
                    try:
                        polled = consumer.poll(timeout_ms=100)
                    except KafkaError as exc:  # the broker away for a moment: try again
                        log.warning("reply listener: %s; polling again", exc)
                        self._stop.wait(0.5)
                        continue
                    if not polled:
                        continue
                    replies = [
                        decode_reply(r.value, stats, (r.topic, r.partition, r.offset))
                        for records in polled.values()
                        for r in records
                    ]
                    with self._arrived:
                        for reply in replies:
                            if reply is not None:
                                self._store.offer(reply)
                        self._arrived.notify_all()
            except BaseException as exc:  # never silently: waiters are told
                log.exception("reply listener stopped")
                with self._arrived:
                    self._listener_error = exc
                    self._arrived.notify_all()
            finally:
                consumer.close()

        self._listener = threading.Thread(target=listen, name="srec-replies", daemon=True)
        self._listener.start()

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the listener, flush what was sent (10 s at most) and close."""
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


def query_fields(
    user_id: str,
    text: str = "",
    k: int | None = None,
    categories: Iterable[str] = (),
    exclude_ids: Iterable[str] = (),
    request_id: str | None = None,
    deadline_ms: int | None = None,
    reply_partition: int | None = None,
    filters: Mapping[str, Any] | None = None,
    understand: bool | None = None,
) -> dict[str, Any]:
    """The fields of a query message (topics/schemas/query.v1.json), ``sent_at`` now and
    ``reply_to`` naming ``reply_partition`` when given; ``filters`` adds the query's other
    filters (attributes, exclude_categories, published_after/before), ``understand``
    False turns the parsing of the text off. Not yet checked by the codec."""
    fields: dict[str, Any] = {
        "request_id": request_id or uuid.uuid4().hex,
        "user_id": user_id,
        "text": text,
    }
    if k is not None:
        fields["k"] = k
    listed = {"categories": list(categories), "exclude_ids": list(exclude_ids)}
    if listed["categories"] or listed["exclude_ids"] or filters:
        fields["filters"] = {**listed, **(filters or {})}
    if understand is not None:
        fields["understand"] = understand
    if deadline_ms is not None:
        fields["deadline_ms"] = deadline_ms
    if reply_partition is not None:
        fields["reply_to"] = {"partition": reply_partition}
    fields["sent_at"] = time.time()
    return fields


def checked_user_id(user_id: str) -> str:
    """``user_id`` if it is a valid id (1..256 characters, no control characters);
    DecodeError naming ``feedback.user_id`` otherwise."""
    try:
        return _USER_ID.validate_python(user_id)
    except ValidationError:
        raise DecodeError(
            "feedback.user_id", "must have 1..256 characters, no control characters", user_id
        ) from None


_USER_ID: TypeAdapter[str] = TypeAdapter(Id)


def _checked(decode: Callable[[bytes], M], fields: Mapping[str, Any]) -> M:
    """The message ``fields`` make, as a worker will decode it: built and checked by the
    codec (DecodeError naming the field a worker would refuse)."""
    return decode(orjson.dumps(dict(fields)))


def _decode_item(raw: bytes) -> Item:
    return codec.decode_item(None, raw)  # no key to compare: the key is made from item_id
