"""Recent request ids, so that a query sent twice is answered once.

A client that retries, or a producer that sends one query twice, would get two answers
and log two impressions (which the blend learner counts as two). Each worker remembers the
(user_id, request_id) pairs of the queries it took in the last ``ttl_s`` seconds, at most
``capacity`` of them (the oldest go first), so memory stays bounded whatever the rate.
Pairs, not bare request ids: a user's queries always reach the worker that owns that
user's partition, so a duplicate is caught whichever worker it lands on, and two users
whose clients happen to pick the same id are not mixed up. Only a 64-bit hash of each pair
is kept (≈ 165 bytes an entry, 16 MB at the default capacity); two different pairs share
one with a chance of about n²/2⁶⁵ (3·10⁻¹⁰ for 100,000), and Python's per-process hash
seed keeps clients from forging such a pair.

The same message read twice (after a rebalance or a crash, at-least-once delivery
re-reads from the last committed offset) is not a client's duplicate: ``admit`` knows it
by its (partition, offset) and returns False, and the worker skips it quietly instead of
dead-lettering it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from streaming_rec.errors import DuplicateRequest

DEFAULT_CAPACITY = 100_000
DEFAULT_TTL_S = 600.0


class RecentRequests:
    """The (user_id, request_id) pairs seen in the last ``ttl_s`` seconds, at most
    ``capacity`` of them."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or ttl_s <= 0:
            raise ValueError("capacity must be ≥ 1 and ttl_s > 0")
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._clock = clock
        # hash of a pair → (first seen, (partition, offset) of the message that carried it)
        self._seen: OrderedDict[int, tuple[float, tuple[int, int] | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, user_id: str, request_id: str, where: tuple[int, int] | None = None) -> bool:
        """Remember the pair and return True; return False when it is the very message seen
        before (same ``where``: redelivered); DuplicateRequest naming ``query.request_id`` when
        another message repeated a recent pair."""
        now = self._clock()
        while self._seen:
            oldest, (first_seen, _) = next(iter(self._seen.items()))
            if now - first_seen < self.ttl_s:
                break
            del self._seen[oldest]
        pair = hash((user_id, request_id))
        if pair in self._seen:
            if where is not None and self._seen[pair][1] == where:
                return False
            raise DuplicateRequest(
                "query.request_id", "duplicate of a recent query of this user", request_id
            )
        self._seen[pair] = (now, where)
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True
