"""The clients' reply routing without a broker: the reply partition, the bounded reply
store, and decoding that survives a bad reply."""

from __future__ import annotations

import pytest

from streaming_rec import codec
from streaming_rec.edge.replies import ReplyStats, ReplyStore, choose_partition, decode_reply
from streaming_rec.errors import ConfigError
from streaming_rec.schemas import Recommendation, Timings

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reply(request_id: str) -> Recommendation:
    return Recommendation(
        request_id=request_id,
        user_id="u",
        status="ok",
        strategy="popular",
        model_version="m",
        index_version=1,
        index_size=1,
        user_events=0,
        timings=Timings(),
        produced_at=1.0,
        worker="w",
    )


def test_the_reply_partition_is_stable_spread_and_configurable() -> None:
    assert choose_partition("abc", 8) == choose_partition("abc", 8)
    used = {choose_partition(f"client-{i}", 8) for i in range(200)}
    assert used == set(range(8))
    assert choose_partition("abc", 8, configured=3) == 3
    with pytest.raises(ConfigError, match="only 8 partitions"):
        choose_partition("abc", 8, configured=8)
    with pytest.raises(ConfigError, match="no partitions"):
        choose_partition("abc", 0)


def test_only_replies_to_pending_requests_are_kept() -> None:
    store = ReplyStore(capacity=10, ttl_s=60, clock=Clock())
    store.expect("mine")
    assert store.offer(reply("theirs")) is None
    assert store.offer(reply("mine")) is not None
    assert store.offer(reply("mine")) is None  # a second copy is not kept
    taken = store.take("mine")
    assert taken is not None and taken.request_id == "mine"
    assert len(store) == 0 and store.take("mine") is None
    assert (store.stats.kept, store.stats.not_ours) == (1, 2)


def test_after_many_asks_that_time_out_the_store_holds_at_most_its_bound() -> None:
    clock = Clock()
    store = ReplyStore(capacity=100, ttl_s=5, clock=clock)
    for i in range(10_000):  # nobody collects: every ask times out
        store.expect(f"r{i}")
        clock.now += 0.001
        assert len(store) <= 100
    assert store.stats.evicted == 10_000 - 100
    clock.now += 10  # past the time to live: the next call purges the rest
    assert store.offer(reply("late")) is None
    assert len(store) == 0 and store.stats.expired == 100


def test_a_reply_arriving_after_its_wait_gave_up_is_dropped() -> None:
    clock = Clock()
    store = ReplyStore(capacity=10, ttl_s=60, clock=clock)
    store.expect("r", timeout_s=1)
    store.drop("r")  # the waiter timed out
    assert store.offer(reply("r")) is None and len(store) == 0


def test_a_wait_extends_the_time_to_live_of_its_request() -> None:
    clock = Clock()
    store = ReplyStore(capacity=10, ttl_s=1, clock=clock)
    store.expect("r")
    store.expect("r", timeout_s=100)
    clock.now += 50
    assert store.offer(reply("r")) is not None


def test_a_bad_reply_is_counted_and_skipped() -> None:
    stats = ReplyStats()
    where = ("srec.recommendations", 3, 17)
    assert decode_reply(b"not json", stats, where) is None
    assert decode_reply(None, stats, where) is None
    good = decode_reply(codec.encode_recommendation(reply("ok")), stats, where)
    assert good is not None and good.request_id == "ok"
    assert (stats.fetched, stats.bad) == (3, 2)
