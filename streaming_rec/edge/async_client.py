"""The asyncio client (aiokafka), for asyncio applications and the HTTP gateway.

    async with AsyncRecClient(load_settings()) as client:
        answer = await client.ask("u1", "a funny animated film for children", k=5)
        await client.feedback("u1", answer.items[0].item_id, "click", event_id="e-1")

The same messages as :class:`~streaming_rec.edge.client.RecClient` (built and checked by
the codec) and the same routing (``streaming_rec.edge.replies``): it reads one partition
of `recommendations`, named in each query's ``reply_to``, keeps only replies to requests it
waits for (bounded), and skips a reply that does not decode (logged, counted). Everything
runs on the caller's event loop; one client serves any number of concurrent asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.client import _checked, _decode_item, checked_user_id, query_fields
from streaming_rec.edge.kafka_config import consumer_config, producer_config
from streaming_rec.edge.replies import (
    Pending,
    ReplyStats,
    ReplyStore,
    choose_partition,
    decode_reply,
)
from streaming_rec.errors import BrokerError, RequestTimeout
from streaming_rec.schemas import Item, Query, Recommendation

log = logging.getLogger(__name__)


class AsyncRecClient:
    """Producer for queries/feedback/items and a listener task for this client's replies.

    Use ``async with`` (or :meth:`start` / :meth:`close`). ``reply_partition`` as in
    RecClient (default SREC_CLIENT_REPLY_PARTITION; -1: a hash of a random instance id)."""

    def __init__(self, settings: Settings, reply_partition: int | None = None) -> None:
        self.settings = settings
        self.instance_id = uuid.uuid4().hex
        self.reply_partition: int | None = None  # known once started
        self._configured = (
            settings.client_reply_partition if reply_partition is None else reply_partition
        )
        self._store = ReplyStore(settings.client_max_pending, settings.client_reply_ttl_s)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listener_error: BaseException | None = None

    @property
    def stats(self) -> ReplyStats:
        """As RecClient.stats: records fetched, kept, not ours, bad; requests evicted/expired."""
        return self._store.stats

    @property
    def pending(self) -> int:
        """Requests this client waits on now (≤ client_max_pending)."""
        return len(self._store)

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> AsyncRecClient:
        """Connect the producer and the reply consumer, positioned at the end of the reply
        partition. Raises BrokerError when Kafka cannot be reached, ConfigError for a reply
        partition the topic does not have."""
        settings = self.settings
        topic = settings.topic("recommendations")
        try:
            self._producer = AIOKafkaProducer(
                **producer_config(settings), acks="all", enable_idempotence=True, linger_ms=0
            )
            await self._producer.start()
            self._consumer = AIOKafkaConsumer(
                **consumer_config(settings), group_id=None, enable_auto_commit=False
            )
            await self._consumer.start()
            partitions = len(await self._producer.partitions_for(topic))  # waits for metadata
            self.reply_partition = choose_partition(self.instance_id, partitions, self._configured)
            tp = TopicPartition(topic, self.reply_partition)
            self._consumer.assign([tp])
            await self._consumer.seek_to_end(tp)
            await self._consumer.position(tp)  # resolved now: nothing sent after is missed
        except KafkaError as exc:
            await self.close()
            raise BrokerError(
                f"cannot connect to Kafka at {settings.bootstrap_servers} "
                f"({settings.security_protocol}): {exc}"
            ) from None
        except BaseException:
            await self.close()
            raise
        self._listener = asyncio.create_task(self._listen(), name="srec-async-replies")
        return self

    async def close(self) -> None:
        """Stop the listener, flush what was sent and close both connections."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()  # flushes first
            self._producer = None

    async def __aenter__(self) -> AsyncRecClient:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- sending ---------------------------------------------------------------------------
    async def send_raw(
        self, logical_topic: str, key: bytes | None, value: bytes | None, acked: bool = False
    ) -> None:
        """Publish bytes as they are; with ``acked``, return once Kafka acknowledged them.
        Raises BrokerError when the client is not started or Kafka refuses."""
        if self._producer is None:
            raise BrokerError("the client is not started (use `async with` or start())")
        try:
            sent = await self._producer.send(self.settings.topic(logical_topic), value, key=key)
            if acked:
                await sent
        except KafkaError as exc:
            raise BrokerError(f"Kafka refused a record for {logical_topic}: {exc}") from None

    async def send_query(
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
        """Publish a query answered to this client's reply partition; return its request_id
        (collect the answer with :meth:`wait`). ``filters`` and ``understand`` as in
        :meth:`RecClient.send_query`. Raises DecodeError naming a bad field."""
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
        return await self.send(_checked(codec.decode_query, fields))

    async def send(self, query: Query) -> str:
        """Publish a query as it is (every field kept: filters, understand, reply_to — which
        should name this client's reply partition); return its request_id. Raises
        BrokerError, DecodeError when more requests are pending than allowed."""
        self._fail(self._store.expect(query.request_id), "more requests pending than allowed")
        await self.send_raw("queries", query.user_id.encode(), codec.encode_query(query))
        return query.request_id

    async def ask(
        self, user_id: str, text: str = "", timeout: float = 10.0, **kwargs: Any
    ) -> Recommendation:
        """Send a query and wait for its answer (at most ``timeout`` s). Raises
        RequestTimeout, DecodeError for a bad field, BrokerError."""
        request_id = await self.send_query(user_id, text, **kwargs)
        return await self.wait(request_id, timeout)

    async def wait(self, request_id: str, timeout: float = 10.0) -> Recommendation:
        """The answer to ``request_id`` (sent by this client), waiting at most ``timeout`` s.
        Raises RequestTimeout when none arrives in time (or the request was dropped to keep
        the store bounded), BrokerError when the listener failed."""
        if self._listener_error is not None:
            raise BrokerError(f"the reply listener failed: {self._listener_error}")
        self._fail(self._store.expect(request_id, timeout), "more requests pending than allowed")
        reply = self._store.take(request_id)
        if reply is not None:
            return reply
        waiter: asyncio.Future[Recommendation] = asyncio.get_running_loop().create_future()
        self._store.attach(request_id, waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise RequestTimeout(
                f"no answer to request {request_id} within {timeout:g} s"
            ) from None
        finally:
            self._store.drop(request_id)

    async def feedback(
        self,
        user_id: str,
        item_id: str,
        event: str,
        ts: float | None = None,
        request_id: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """Publish one feedback event and wait for Kafka's acknowledgement; as
        RecClient.feedback (a repeated ``event_id`` is applied once)."""
        fields: dict[str, Any] = {"user_id": user_id, "item_id": item_id, "event": event}
        fields["ts"] = ts if ts is not None else time.time()
        if request_id:
            fields["request_id"] = request_id
        if event_id:
            fields["event_id"] = event_id
        message = _checked(codec.decode_feedback, fields)
        await self.send_raw("feedback", user_id.encode(), codec.encode_feedback(message), True)

    async def upsert_item(self, item: Item | Mapping[str, Any]) -> None:
        """Publish an item (acknowledged); DecodeError naming a field the workers refuse."""
        if not isinstance(item, Item):
            item = _checked(_decode_item, item)
        await self.send_raw("items", item.item_id.encode(), codec.encode_item(item), True)

    async def delete_item(self, item_id: str) -> None:
        """Publish the deletion of ``item_id`` (acknowledged)."""
        item = _checked(_decode_item, {"item_id": item_id, "deleted": True})
        await self.send_raw("items", item_id.encode(), codec.encode_item(item), True)

    async def forget_user(self, user_id: str) -> None:
        """Publish the tombstone that makes the workers forget ``user_id`` (acknowledged)."""
        await self.send_raw("feedback", checked_user_id(user_id).encode(), None, True)

    # --- listening -------------------------------------------------------------------------
    async def _listen(self) -> None:
        assert self._consumer is not None
        stats = self._store.stats
        try:
            while True:
                try:
                    batches = await self._consumer.getmany(timeout_ms=500)
                except KafkaError as exc:  # the broker away for a moment: try again
                    log.warning("reply listener: %s; polling again", exc)
                    await asyncio.sleep(0.5)
                    continue
                for records in batches.values():
                    for r in records:
                        reply = decode_reply(r.value, stats, (r.topic, r.partition, r.offset))
                        if reply is not None:
                            self._deliver(self._store.offer(reply))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # never silently: every waiter is told
            log.exception("reply listener stopped")
            self._listener_error = exc
            self._fail(self._store.entries(), f"the reply listener failed: {exc}", BrokerError)

    def _deliver(self, entry: Pending | None) -> None:
        if entry is None or entry.waiter is None or entry.waiter.done():
            return
        reply = self._store.take(entry.request_id)
        if reply is not None:
            entry.waiter.set_result(reply)

    @staticmethod
    def _fail(entries: list[Pending], why: str, error: type[Exception] = RequestTimeout) -> None:
        for entry in entries:
            if entry.waiter is not None and not entry.waiter.done():
                entry.waiter.set_exception(error(f"request {entry.request_id} dropped: {why}"))
