"""Recent request ids: a user's repeated request_id is refused, memory stays bounded."""

from __future__ import annotations

import pytest

from streaming_rec.errors import DuplicateRequest
from streaming_rec.flows.dedup import RecentRequests

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_request_id_of_the_same_user_is_a_duplicate() -> None:
    recent = RecentRequests(capacity=10, ttl_s=60, clock=Clock())
    recent.admit("alice", "r1")
    with pytest.raises(DuplicateRequest) as caught:
        recent.admit("alice", "r1")
    assert caught.value.field == "query.request_id"
    assert str(caught.value).startswith("query.request_id: duplicate")
    recent.admit("bob", "r1")  # another user's client may pick the same id
    recent.admit("alice", "r2")
    with pytest.raises(DuplicateRequest):  # still remembered after a refusal
        recent.admit("alice", "r1")


def test_ids_are_forgotten_after_the_ttl() -> None:
    clock = Clock()
    recent = RecentRequests(capacity=10, ttl_s=60, clock=clock)
    recent.admit("alice", "r1")
    clock.now += 30
    recent.admit("alice", "r2")
    clock.now += 30  # r1 is 60 s old: forgotten; r2 is 30 s old: kept
    recent.admit("alice", "r1")
    with pytest.raises(DuplicateRequest):
        recent.admit("alice", "r2")
    assert len(recent) == 2


def test_memory_is_bounded_by_the_capacity_oldest_first() -> None:
    recent = RecentRequests(capacity=3, ttl_s=3600, clock=Clock())
    for n in range(100):
        recent.admit("u", f"r{n}")
    assert len(recent) == 3
    recent.admit("u", "r0")  # long forgotten
    with pytest.raises(DuplicateRequest):
        recent.admit("u", "r99")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RecentRequests(capacity=0)
    with pytest.raises(ValueError):
        RecentRequests(ttl_s=0)


def test_the_same_message_read_again_is_a_redelivery_not_a_duplicate() -> None:
    recent = RecentRequests()
    assert recent.admit("alice", "r1", (3, 100)) is True
    assert recent.admit("alice", "r1", (3, 100)) is False  # re-read after a rebalance
    with pytest.raises(DuplicateRequest, match=r"query\.request_id"):
        recent.admit("alice", "r1", (3, 101))  # the client sent it again
