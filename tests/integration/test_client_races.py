"""What real clients send, on the real broker and a real worker: records without a
timestamp, clocks set days ahead, clicks racing their item, clicks on items that do not
exist, text with nothing visible in it."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from kafka import KafkaProducer

from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec.edge.kafka_config import client_config
from streaming_rec.schemas import Recommendation
from streaming_rec_dev.devstack import WorkerProcess

pytestmark = pytest.mark.integration
NOIR = "Film-Noir"


def ask_until(client: RecClient, user: str, done, timeout: float = 20.0, **kw) -> Recommendation:
    deadline = time.monotonic() + timeout
    reply = client.ask(user, **kw)
    while not done(reply) and time.monotonic() < deadline:
        time.sleep(0.2)
        reply = client.ask(user, **kw)
    return reply


def noir_item(tag: str) -> dict[str, object]:
    return {"item_id": tag, "title": f"The {tag} affair", "categories": [NOIR]}


def test_a_click_sent_with_its_new_item_in_one_flush_is_applied(
    worker: WorkerProcess, client: RecClient
) -> None:
    user, item = f"race-{uuid.uuid4().hex[:8]}", f"new-{uuid.uuid4().hex[:8]}"
    client.upsert_item(noir_item(item))
    client.feedback(user, item, "click")  # reaches the worker before the item's vector
    client.flush()
    reply = ask_until(client, user, lambda r: r.user_events >= 1)
    assert reply.user_events == 1, "the click on the brand-new item was lost"


def test_a_click_without_any_timestamp_is_applied_and_feedback_goes_on(
    worker: WorkerProcess, client: RecClient, settings: Settings
) -> None:
    user = f"nots-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(**client_config(settings))
    try:
        value = orjson.dumps({"user_id": user, "item_id": "Toy Story (1995)", "event": "click"})
        # no ts field and a record timestamp of -1 (a producer that sets none)
        producer.send(settings.topic("feedback"), key=user.encode(), value=value, timestamp_ms=-1)
        producer.flush(10)
    finally:
        producer.close(10)
    client.feedback(user, "Heat (1995)", "click")
    client.flush()
    reply = ask_until(client, user, lambda r: r.user_events >= 2)
    assert reply.user_events == 2  # both applied: the first did not stall the agent
    assert reply.user_feedback_ts is not None and reply.user_feedback_ts > time.time() - 600
    assert worker.health()["ready"]


def scores(reply: Recommendation) -> dict[str, float]:
    """Item → its popular-now prior in a "for you" reply to a new user (0 when absent)."""
    return {i.item_id: i.score for i in reply.items}


def searchable(client: RecClient, item_id: str) -> None:
    reply = ask_until(client, "probe", lambda r: item_id in scores(r), text=f"The {item_id} affair")
    assert item_id in scores(reply), f"{item_id} never became searchable"


def test_a_clock_days_ahead_does_not_outweigh_current_clicks_in_popular_now(
    worker: WorkerProcess, client: RecClient
) -> None:
    tag = uuid.uuid4().hex[:8]
    ahead, current = f"ahead-{tag}", f"current-{tag}"
    for item in (ahead, current):
        client.upsert_item(noir_item(item))
    client.flush()
    for item in (ahead, current):
        searchable(client, item)
    client.feedback(f"{tag}-a", ahead, "click", ts=time.time() + 6 * 86400)
    client.feedback(f"{tag}-b", current, "click")
    client.feedback(f"{tag}-c", current, "click")
    client.flush()

    def settled(r: Recommendation) -> bool:  # both counted, and the two clicks ahead
        got = scores(r)
        return got.get(ahead, 0) > 0 and got.get(current, 0) > got.get(ahead, 0)

    # without the clock bound the click dated 6 days ahead weighs 2^(6/3) = 4 clicks now
    reply = ask_until(client, f"{tag}-new", settled, categories=[NOIR], k=100)
    got = scores(reply)
    assert got.get(ahead, 0) > 0 and got.get(current, 0) > got[ahead], got


def test_clicks_refused_as_unknown_items_never_count_in_popular_now(
    worker: WorkerProcess, client: RecClient, settings: Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    ghost, real = f"ghost-{tag}", f"real-{tag}"
    for n in range(4):
        client.feedback(f"{tag}-{n}", ghost, "click")
    client.upsert_item(noir_item(real))
    client.flush()
    searchable(client, real)
    client.feedback(f"{tag}-x", real, "click")
    client.flush()
    time.sleep(settings.unknown_item_hold_s + 2)  # the ghost clicks are dead-lettered by now
    client.upsert_item(noir_item(ghost))  # the item appears after all
    client.flush()
    searchable(client, ghost)
    reply = ask_until(
        client, f"{tag}-new", lambda r: scores(r).get(real, 0) > 0, categories=[NOIR], k=100
    )
    got = scores(reply)
    assert got.get(real, 0) > 0 and got.get(ghost, 0) == 0, got


def test_text_with_nothing_visible_is_an_empty_query(
    worker: WorkerProcess, client: RecClient
) -> None:
    reply = client.ask("invisible", "\u200b\u200d\ufeff\u0301 ")
    assert reply.status == "ok" and reply.strategy == "popular"
