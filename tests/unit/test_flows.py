"""Every flow without a broker or the real model: a list for a sink, a dict for the state
store, direct calls for the compute thread, a tiny word encoder. Dead-lettering, redelivery,
expiry, dedup, clock bounds and contained crashes."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import orjson
import pytest

from streaming_rec import codec
from streaming_rec.core.service import Recommender
from streaming_rec.errors import UnknownItem
from streaming_rec.flows.answer import AnswerQueries
from streaming_rec.flows.embed import EmbedQueries
from streaming_rec.flows.feedback import ApplyFeedback
from streaming_rec.flows.held import HeldFeedback
from streaming_rec.flows.items import EmbedItems, IndexItems
from streaming_rec.flows.policy import DeadLetterPolicy, event_time, visible_text
from streaming_rec.flows.popularity import CountPopularity
from streaming_rec.flows.ports import NO_TIMESTAMP, Record, direct
from streaming_rec.schemas import DeadLetter, ItemVector, Recommendation
from tests.unit.test_service import WordEmbedder, service

pytestmark = pytest.mark.unit
NOW = 1_800_000_000.0


def synchronous(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test on a fresh event loop."""

    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


class ListSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.sent.append((topic, key, value))

    def on(self, topic: str) -> list[bytes | None]:
        return [value for t, _, value in self.sent if t == topic]

    def replies(self) -> list[Recommendation]:
        return [codec.decode_recommendation(v) for v in self.on("recommendations")]

    def letters(self) -> list[DeadLetter]:
        return [codec.decode_dead_letter(v) for v in self.on("dead-letters")]


class DictStore:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.writes: list[tuple[bytes, int]] = []  # (key, partition of the record)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes, record: Record) -> None:
        self.data[key] = value
        self.writes.append((key, record.partition))


class CountingMeter:
    def __init__(self) -> None:
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def messages(self, topic: str, outcome: str, n: int = 1) -> None:
        self.outcomes[(topic, outcome)] += n

    def stage_ms(self, stage: str, ms: float) -> None:
        pass

    def batch(self, size: int) -> None:
        pass


def record(
    topic: str, value: Any, offset: int = 0, partition: int = 0, ts_ms: int = NO_TIMESTAMP
) -> Record:
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    key = value.get("user_id", "").encode() if isinstance(value, dict) else None
    return Record(topic, partition, offset, key, raw, ts_ms)


def query(request_id: str, text: str = "space", **extra: Any) -> dict[str, Any]:
    return {"request_id": request_id, "user_id": "u1", "text": text, "k": 3, **extra}


def click(item_id: str = "rocket", **extra: Any) -> dict[str, Any]:
    return {"user_id": "u1", "item_id": item_id, "event": "click", **extra}


class Parts:
    def __init__(self, rec: Recommender | None = None) -> None:
        self.service = rec or service()
        self.sink, self.store, self.meter = ListSink(), DictStore(), CountingMeter()
        self.policy = DeadLetterPolicy(self.sink, self.meter, "w1")

    def answer(self, **kw: Any) -> AnswerQueries:
        kw.setdefault("clock", lambda: NOW)
        return AnswerQueries(
            self.service, self.store, self.sink, self.policy, self.meter, direct,
            worker="w1", **kw,
        )  # fmt: skip

    def feedback(self, **kw: Any) -> ApplyFeedback:
        kw.setdefault("clock", lambda: NOW)
        weights = {"click": 1.0, "dislike": -1.0}
        return ApplyFeedback(
            self.service, self.store, self.policy, self.meter, direct, event_weights=weights, **kw
        )


@synchronous
async def test_answer_queries_replies_once_per_query_and_dead_letters_the_bad_one() -> None:
    parts = Parts()
    flow = parts.answer()
    await flow.handle(
        [record("q", query("r1"), 0), record("q", b"not json", 1), record("q", query("r2"), 2)]
    )
    replies = parts.sink.replies()
    assert [r.request_id for r in replies] == ["r1", "r2"]
    assert replies[0].items[0].item_id in {"rocket", "stars"}
    [letter] = parts.sink.letters()
    assert (letter.topic, letter.offset, letter.error) == ("q", 1, "DecodeError")
    assert parts.meter.outcomes[("q", "ok")] == 2
    assert parts.meter.outcomes[("q", "dead_letter")] == 1


@synchronous
async def test_a_redelivered_query_is_skipped_and_a_repeated_request_id_refused() -> None:
    parts = Parts()
    flow = parts.answer()
    await flow.handle([record("q", query("r1"), 5)])
    await flow.handle([record("q", query("r1"), 5)])  # the same record again
    await flow.handle([record("q", query("r1"), 9)])  # another record, same request id
    assert len(parts.sink.replies()) == 1
    assert parts.meter.outcomes[("q", "redelivered")] == 1
    [letter] = parts.sink.letters()
    assert (letter.offset, letter.error) == (9, "DuplicateRequest")


@synchronous
async def test_a_query_past_its_deadline_gets_an_expired_reply() -> None:
    parts = Parts()
    flow = parts.answer()
    await flow.handle([record("q", query("old", sent_at=NOW - 5, deadline_ms=1000))])
    [reply] = parts.sink.replies()
    assert reply.status == "expired" and len(reply.items) == 0


@synchronous
async def test_a_sent_at_from_the_future_is_bounded_by_the_reader_clock() -> None:
    # a client clock a day ahead must not make a query look fresh (or negative-aged)
    parts = Parts()
    flow = parts.answer(deadline_ms=1000)
    await flow.handle([record("q", query("f", sent_at=NOW + 86_400))])
    [reply] = parts.sink.replies()
    assert reply.status == "ok" and reply.timings.queue_ms == 0.0


@synchronous
async def test_invisible_text_is_answered_as_an_empty_query() -> None:
    parts = Parts()
    await parts.answer().handle([record("q", query("z", text="\u200b\u0000\u0301 "))])
    [reply] = parts.sink.replies()
    assert reply.strategy == "popular"


@synchronous
async def test_a_bug_on_one_query_is_contained_and_the_others_answered() -> None:
    parts = Parts()
    real = parts.service.recommend

    def recommend(requests: list[Any]) -> list[Any]:
        if any(r.request_id == "boom" for r in requests):
            raise RuntimeError("ranking broke")
        return real(requests)

    parts.service.recommend = recommend  # type: ignore[method-assign]
    await parts.answer().handle([record("q", query("ok1"), 0), record("q", query("boom"), 1)])
    assert [r.request_id for r in parts.sink.replies()] == ["ok1"]
    [letter] = parts.sink.letters()
    assert letter.offset == 1 and letter.error == "RuntimeError"


@synchronous
async def test_feedback_is_applied_exactly_once_per_record() -> None:
    parts = Parts()
    flow = parts.feedback()
    await flow.handle([record("f", click(ts=NOW - 1), 3, partition=2)])
    await flow.handle([record("f", click(ts=NOW - 1), 3, partition=2)])  # redelivered
    state = codec.decode_user_state(parts.store.data[b"u1"])
    assert state.events == 1 and state.history_items == ("rocket",)
    assert (state.applied_partition, state.applied_offset) == (2, 3)
    assert parts.meter.outcomes[("f", "redelivered")] == 1


@synchronous
async def test_feedback_without_any_time_takes_the_reader_clock_not_1970() -> None:
    # no ts field and a record timestamp of -1: the click still lands, at the reader's time
    parts = Parts()
    await parts.feedback().handle([record("f", click(), 0, ts_ms=NO_TIMESTAMP)])
    state = codec.decode_user_state(parts.store.data[b"u1"])
    assert state.history_ts == (NOW,) and state.feedback_ts == NOW
    assert parts.sink.letters() == []


@synchronous
async def test_feedback_dated_in_the_future_is_clamped_to_the_reader_clock() -> None:
    parts = Parts()
    await parts.feedback().handle([record("f", click(ts=NOW + 6 * 86_400), 0)])
    state = codec.decode_user_state(parts.store.data[b"u1"])
    assert state.history_ts == (NOW,)


@synchronous
async def test_unknown_items_are_held_when_a_hold_is_given_else_dead_lettered() -> None:
    parts = Parts()
    await parts.feedback().handle([record("f", click("nope"), 0)])
    assert [letter.error for letter in parts.sink.letters()] == ["UnknownItem"]
    held: list[Record] = []

    async def hold(rec: Record, exc: Exception) -> None:
        held.append(rec)

    await parts.feedback(hold=hold).handle([record("f", click("nope"), 1)])
    assert [r.offset for r in held] == [1] and len(parts.sink.letters()) == 1
    assert b"u1" not in parts.store.data


@synchronous
async def test_a_batch_writes_each_user_once_in_the_partition_of_its_last_event() -> None:
    parts = Parts()
    records = [
        record("f", click("rocket", ts=NOW - 3), 0, partition=1),
        record("f", click("kiss", ts=NOW - 2), 1, partition=1),
        record("f", b"{}", 2, partition=1),
    ]
    await parts.feedback().handle(records)
    assert parts.store.writes == [(b"u1", 1)]
    assert codec.decode_user_state(parts.store.data[b"u1"]).events == 2
    assert parts.meter.outcomes[("f", "ok")] == 2


@synchronous
async def test_popular_now_judges_events_as_the_feedback_flow_does() -> None:
    rec = service()
    meter = CountingMeter()
    flow = CountPopularity(rec, meter, direct, clock=lambda: NOW)
    events = [
        record("f", click("nope", ts=NOW), 0),  # refused: unknown item
        record("f", click("nope", ts=NOW), 1),
        record("f", click("kiss", ts=NOW + 6 * 86_400), 2),  # a clock six days ahead
        record("f", click("ranch", ts=NOW), 3),
        record("f", click("ranch", ts=NOW), 4),
    ]
    await flow.handle(events)
    top = [item_id for item_id, _ in rec.popularity.top(3, lambda _: True)]
    assert top[0] == "ranch" and "nope" not in top
    assert meter.outcomes[("f", "refused_by_replica")] == 2


@synchronous
async def test_items_are_embedded_published_and_indexed() -> None:
    producer, consumer = service(), service()
    sink, meter = ListSink(), CountingMeter()
    flow = EmbedItems(producer, sink, DeadLetterPolicy(sink, meter, "w"), meter, direct)
    items = [
        Record("i", 0, 0, b"comet", orjson.dumps({"item_id": "comet", "title": "space ghost"})),
        Record("i", 0, 1, b"bad", b"[]"),
        Record("i", 0, 2, b"kiss", orjson.dumps({"item_id": "kiss", "deleted": True})),
    ]
    await flow.handle(items)
    assert [letter.offset for letter in sink.letters()] == [1]
    published = [(t, k, v) for t, k, v in sink.sent if t == "item-vectors"]
    assert [(k, v is None) for _, k, v in published] == [(b"comet", False), (b"kiss", True)]
    await IndexItems(consumer, direct).handle(
        [Record("iv", 0, n, k, v) for n, (_, k, v) in enumerate(published)]
    )
    assert consumer.has_item("comet") and not consumer.has_item("kiss")


@synchronous
async def test_embed_queries_publishes_one_vector_per_text_query() -> None:
    embedder = WordEmbedder()
    sink, meter = ListSink(), CountingMeter()
    flow = EmbedQueries(
        embedder.encode, "words", sink, DeadLetterPolicy(sink, meter, "e"), meter, direct,
        worker="e", clock=lambda: NOW,
    )  # fmt: skip
    await flow.handle(
        [
            record("q", query("a", text="love"), 4, ts_ms=int(NOW * 1000)),
            record("q", query("b", text=""), 5),
            record("q", b"oops", 6),
        ]
    )
    messages = [codec.decode_embedded_query(v) for v in sink.on("embedded-queries")]
    assert [(m.source_offset, m.vector is None) for m in messages] == [(4, False), (5, True)]
    assert np.allclose(messages[0].vector, embedder.encode(["love"])[0])
    assert messages[1].source_ts == NOW  # no record timestamp: the reader's clock
    assert [letter.offset for letter in sink.letters()] == [6]


def test_event_time_prefers_the_claim_then_the_record_then_the_clock() -> None:
    with_ts = Record("f", 0, 0, None, None, int((NOW - 10) * 1000))
    without = Record("f", 0, 0, None, None, NO_TIMESTAMP)
    assert event_time(NOW - 60, with_ts, NOW, 300) == NOW - 60
    assert event_time(None, with_ts, NOW, 300) == pytest.approx(NOW - 10)
    assert event_time(None, without, NOW, 300) == NOW
    assert event_time(NOW + 200, without, NOW, 300) == NOW + 200  # within the skew
    assert event_time(NOW + 301, without, NOW, 300) == NOW


def test_visible_text() -> None:
    assert visible_text("  \u200b\u200d\ufeff\u0000 ") == ""
    assert visible_text("\u0301\u0308") == ""  # combining marks alone
    assert visible_text(" 最新科技新闻 ") == "最新科技新闻"
    assert visible_text("a\u200b") == "a\u200b"


class HeldParts:
    def __init__(self, hold_s: float = 10.0) -> None:
        self.known: set[str] = set()
        self.now = NOW
        self.slept: list[float] = []
        self.sink, self.meter = ListSink(), CountingMeter()

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)
            self.now += seconds

        self.flow = HeldFeedback(
            self.known.__contains__, self.sink, DeadLetterPolicy(self.sink, self.meter, "w"),
            self.meter, feedback_topic="srec.feedback", hold_s=hold_s, clock=lambda: self.now,
            sleep=sleep,
        )  # fmt: skip

    def retried(self) -> list[Record]:
        """The records written to feedback-retry so far, as the retry agent reads them."""
        return [
            Record("srec.feedback-retry", 0, n, k, v, int(self.now * 1000))
            for n, (t, k, v) in enumerate(self.sink.sent)
            if t == "feedback-retry"
        ]


@synchronous
async def test_a_click_on_an_item_indexed_a_moment_later_is_applied_not_lost() -> None:
    parts = HeldParts()
    original = record("srec.feedback", click("new-phone", ts=NOW), 41, partition=3)
    await parts.flow.hold(original, UnknownItem("feedback.item_id", "unknown item"))
    [held] = parts.retried()
    parts.known.add("new-phone")  # the item's vector reaches the index
    await parts.flow.handle([held])
    assert parts.slept == [0.5]  # waited its retry interval
    assert parts.sink.on("feedback") == [original.value]  # the unchanged bytes, sent again
    assert parts.sink.letters() == []


@synchronous
async def test_a_click_on_an_item_that_never_comes_is_dead_lettered_after_the_hold() -> None:
    parts = HeldParts(hold_s=2.0)
    original = record("srec.feedback", click("ghost-item"), 7, partition=1)
    await parts.flow.hold(original, UnknownItem("feedback.item_id", "unknown item"))
    for _ in range(10):
        pending = parts.retried()[-1:]
        await parts.flow.handle(pending)
        if parts.sink.letters():
            break
    [letter] = parts.sink.letters()
    assert (letter.topic, letter.partition, letter.offset) == ("srec.feedback", 1, 7)
    assert letter.error == "UnknownItem" and letter.reason.startswith("feedback.item_id: unknown")
    assert parts.sink.on("feedback") == []
    attempts = [codec.decode_held_feedback(r.value).attempts for r in parts.retried()]
    assert attempts == [1, 2, 3, 4]  # tried every 0.5 s for 2 s


@synchronous
async def test_with_no_hold_an_unknown_item_is_dead_lettered_at_once() -> None:
    parts = HeldParts(hold_s=0.0)
    original = record("srec.feedback", click("x"), 2)
    await parts.flow.hold(original, UnknownItem("feedback.item_id", "unknown item"))
    assert parts.retried() == [] and [x.offset for x in parts.sink.letters()] == [2]


@synchronous
async def test_vectors_of_another_encoder_are_not_indexed_and_are_counted() -> None:
    rec = service()
    vector = rec.embed_items(["space ghost"])[0]

    def message(item_id: str, model: str) -> bytes:
        return codec.encode_item_vector(
            ItemVector(
                item_id=item_id, vector=vector, dim=int(vector.shape[0]), title=item_id,
                model=model, updated_at=NOW,
            )
        )  # fmt: skip

    flow = IndexItems(rec, direct)
    await flow.handle(
        [
            Record("iv", 0, 0, b"same", message("same", rec.model_version)),
            Record("iv", 0, 1, b"other", message("other", "some-other-model:int8")),
        ]
    )
    assert rec.has_item("same") and not rec.has_item("other")
    assert flow.mismatched == {"other"}
    await flow.handle([Record("iv", 0, 2, b"other", message("other", rec.model_version))])
    assert rec.has_item("other") and flow.mismatched == set()


@synchronous
async def test_a_reply_names_the_encoder_backend_beside_the_model() -> None:
    parts = Parts()
    await parts.answer().handle([record("q", query("b1"))])
    [reply] = parts.sink.replies()
    assert reply.model_version == "words" and reply.backend == parts.service.backend
