"""What the workers do for the clients, without a broker: replies routed to the partition a
query names (reply_to), a retried feedback event (same event_id) applied once, and a user
forgotten by a tombstone on `feedback` (state deleted, impressions dropped, cold again)."""

from __future__ import annotations

import pytest

from streaming_rec import codec
from streaming_rec.flows.popularity import CountPopularity
from streaming_rec.flows.ports import Record, direct
from tests.unit.test_flows import (
    NOW,
    CountingMeter,
    DictStore,
    ListSink,
    Parts,
    click,
    query,
    record,
    synchronous,
)

pytestmark = pytest.mark.unit


class PartitionSink(ListSink):
    """A sink that also records the partition each record was sent to (None: by key)."""

    def __init__(self) -> None:
        super().__init__()
        self.partitions: list[int | None] = []

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        await super().send(topic, key, value)
        self.partitions.append(partition)


class DeletingStore(DictStore):
    def __init__(self) -> None:
        super().__init__()
        self.deleted: list[tuple[bytes, int]] = []

    def delete(self, key: bytes, record: Record) -> None:
        self.data.pop(key, None)
        self.deleted.append((key, record.partition))


def parts() -> Parts:
    p = Parts()
    p.sink = PartitionSink()
    p.store = DeletingStore()
    p.policy.sink = p.sink
    return p


def forget(user_id: str, offset: int, partition: int = 0) -> Record:
    return Record("f", partition, offset, user_id.encode(), None)


@synchronous
async def test_a_reply_goes_to_the_partition_its_query_names_else_by_key() -> None:
    p = parts()
    flow = p.answer(reply_partitions=8)
    await flow.handle(
        [
            record("q", query("routed", reply_to={"partition": 5}), 0),
            record("q", query("keyed"), 1),
            record(
                "q", query("late", reply_to={"partition": 2}, sent_at=NOW - 9, deadline_ms=10), 2
            ),
        ]
    )
    sent = dict(zip([r.request_id for r in p.sink.replies()], p.sink.partitions, strict=True))
    assert sent == {"late": 2, "routed": 5, "keyed": None}  # the expired answer is routed too
    assert p.sink.replies()[0].status == "expired"


@synchronous
async def test_a_reply_partition_the_topic_lacks_is_dead_lettered_naming_the_field() -> None:
    p = parts()
    await p.answer(reply_partitions=8).handle(
        [record("q", query("far", reply_to={"partition": 8}), 0)]
    )
    assert p.sink.replies() == []
    [letter] = p.sink.letters()
    assert letter.field == "query.reply_to.partition" and "< 8" in letter.reason


@synchronous
async def test_a_retried_event_id_is_applied_once_and_others_still_apply() -> None:
    p = parts()
    flow = p.feedback()
    await flow.handle([record("f", click("rocket", event_id="e1"), 0)])
    await flow.handle([record("f", click("rocket", event_id="e1"), 1)])  # the client's retry
    await flow.handle(
        [record("f", click("kiss", event_id="e2"), 2), record("f", click("kiss", event_id="e2"), 3)]
    )
    await flow.handle([record("f", click("ranch"), 4), record("f", click("ranch"), 5)])  # no id
    state = codec.decode_user_state(p.store.data[b"u1"])
    assert state.history_items == ("rocket", "kiss", "ranch", "ranch")
    assert state.event_ids == ("e1", "e2")
    assert p.meter.outcomes[("f", "duplicate")] == 2


@synchronous
async def test_event_ids_are_bounded_per_user() -> None:
    p = parts()
    flow = p.feedback()
    await flow.handle([record("f", click("rocket", event_id=f"e{i}"), i) for i in range(130)])
    state = codec.decode_user_state(p.store.data[b"u1"])
    assert len(state.event_ids) == 100 and state.event_ids[-1] == "e129"


@synchronous
async def test_forgetting_a_user_deletes_the_state_and_impressions_and_they_start_cold() -> None:
    p = parts()
    p.service.learner.rate = 0.1  # impressions are kept only while the blend learns
    answer, feedback = p.answer(), p.feedback()
    await feedback.handle([record("f", click("rocket"), 0, partition=3)])
    await answer.handle([record("q", query("before", text=""), 0)])
    assert p.sink.replies()[-1].strategy == "personal"
    assert p.service.impressions.get("before") is not None
    await feedback.handle([forget("u1", 1, partition=3)])
    assert b"u1" not in p.store.data and p.store.deleted == [(b"u1", 3)]
    assert p.service.impressions.get("before") is None
    assert p.meter.outcomes[("f", "forgotten")] == 1
    await answer.handle([record("q", query("after", text=""), 1)])
    reply = p.sink.replies()[-1]
    assert (reply.strategy, reply.user_events) == ("popular", 0)


@synchronous
async def test_in_one_batch_events_after_a_forget_start_a_new_state() -> None:
    p = parts()
    await p.feedback().handle(
        [record("f", click("rocket"), 0), forget("u1", 1), record("f", click("kiss"), 2)]
    )
    state = codec.decode_user_state(p.store.data[b"u1"])
    assert state.history_items == ("kiss",) and state.events == 1
    assert p.store.deleted == [(b"u1", 0)]
    assert p.sink.letters() == []


@synchronous
async def test_popular_now_skips_a_forget_without_counting_a_refusal() -> None:
    p = parts()
    meter = CountingMeter()
    flow = CountPopularity(p.service, meter, direct, clock=lambda: NOW)
    await flow.handle([forget("u1", 0), record("f", click("ranch", ts=NOW), 1)])
    assert meter.outcomes[("f", "refused_by_replica")] == 0
    assert p.service.popularity.top(1, lambda _: True)[0][0] == "ranch"
