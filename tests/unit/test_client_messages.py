"""The client builds its messages with the codec: what it publishes decodes as the workers
decode it, and a field they would refuse fails in the client, named (no broker needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.async_client import AsyncRecClient
from streaming_rec.edge.client import RecClient
from streaming_rec.errors import DecodeError
from streaming_rec.schemas import Item

pytestmark = pytest.mark.unit


class Sent(RecClient):
    """A RecClient without Kafka: what it would publish, by topic."""

    def __init__(self) -> None:  # no producer, no listener
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.reply_partition = None  # not listening: queries are answered keyed by user

    def send_raw(self, logical_topic: str, key: bytes | None, value: bytes | None) -> None:
        self.sent.append((logical_topic, key, value))


def test_a_query_is_encoded_by_the_codec() -> None:
    client = Sent()
    rid = client.send_query("u1", "a funny film", k=5, categories=["Comedy"], request_id="r1")
    ((topic, key, value),) = client.sent
    assert (topic, key, rid) == ("queries", b"u1", "r1")
    query = codec.decode_query(value)
    assert (query.user_id, query.text, query.k) == ("u1", "a funny film", 5)
    assert query.filters is not None and tuple(query.filters.categories) == ("Comedy",)
    assert query.sent_at is not None
    assert value == codec.encode_query(query)


def test_a_query_without_k_or_filters_takes_the_schema_defaults() -> None:
    client = Sent()
    client.send_query("u1", categories=iter(()))
    query = codec.decode_query(client.sent[0][2])
    assert query.k == 10 and query.filters is None and query.text == ""


def test_feedback_and_items_are_encoded_by_the_codec() -> None:
    client = Sent()
    client.feedback("u1", "Toy Story (1995)", "click", ts=1_700_000_000.0, request_id="r1")
    client.upsert_item({"item_id": "m1", "title": "Heat (1995)", "categories": ["Crime"]})
    client.upsert_item(Item(item_id="m2", title="Up (2009)"))
    client.delete_item("m1")
    (fb, up1, up2, gone) = client.sent
    decoded = codec.decode_feedback(fb[2])
    assert (fb[0], decoded.event, decoded.ts, decoded.request_id) == (
        "feedback",
        "click",
        1_700_000_000.0,
        "r1",
    )
    assert [codec.decode_item(key, value).title for _, key, value in (up1, up2)] == [
        "Heat (1995)",
        "Up (2009)",
    ]
    assert gone[:2] == ("items", b"m1") and codec.decode_item(gone[1], gone[2]).deleted


@pytest.mark.parametrize(
    ("send", "field"),
    [
        (lambda c: c.send_query("u1", "x", k=0), "query.k"),
        (lambda c: c.feedback("u1", "m1", "like"), "feedback.event"),
        (lambda c: c.feedback("u1", "m1", "click", ts=1_700_000_000_000.0), "feedback.ts"),
        (lambda c: c.upsert_item({"item_id": "m1"}), "item.title"),
        (
            lambda c: c.upsert_item({"item_id": "m1", "title": "t", "categories": "Drama"}),
            "item.categories",
        ),
    ],
)
def test_a_field_the_workers_would_refuse_fails_in_the_client(send: Any, field: str) -> None:
    client = Sent()
    with pytest.raises(DecodeError) as caught:
        send(client)
    assert caught.value.field == field
    assert client.sent == []


class AsyncSent(AsyncRecClient):
    """An AsyncRecClient without Kafka: what it would publish."""

    def __init__(self) -> None:
        super().__init__(Settings())
        self.reply_partition = 3
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    async def send_raw(
        self, logical_topic: str, key: bytes | None, value: bytes | None, acked: bool = False
    ) -> None:
        self.sent.append((logical_topic, key, value))


def test_both_clients_send_attribute_filters_and_understand() -> None:
    """The sync and the async client (the gateway's) take the same query fields: a client
    filter on attributes and ``understand`` reach the topic from either."""
    attributes = {"attributes": {"price": {"lte": 1000}}, "exclude_categories": ["Used"]}
    sync, async_ = Sent(), AsyncSent()
    sync.send_query("u1", "laptops", categories=["Laptops"], filters=attributes, understand=False)
    asyncio.run(
        async_.send_query(
            "u1", "laptops", categories=["Laptops"], filters=attributes, understand=False
        )
    )
    for client in (sync, async_):
        query = codec.decode_query(client.sent[0][2])
        assert query.understand is False
        assert query.filters is not None and tuple(query.filters.categories) == ("Laptops",)
        assert tuple(query.filters.exclude_categories) == ("Used",)
        assert query.filters.attributes is not None
        assert query.filters.attributes["price"].lte == 1000
    assert codec.decode_query(async_.sent[0][2]).reply_to.partition == 3
