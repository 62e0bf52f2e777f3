"""Reply routing shared by RecClient, AsyncRecClient and the gateway.

A client reads **one** partition of `recommendations`, named in each query it sends as
``reply_to.partition``: by default a hash of a random instance id, so N clients spread over
the P partitions and each fetches about 1/P of all replies (clients that share a partition
filter by request_id). It keeps only replies to requests it is waiting for, in a
``ReplyStore`` bounded in entries (``SREC_CLIENT_MAX_PENDING``) and in time
(``SREC_CLIENT_REPLY_TTL_S``), so it never grows with the traffic of other clients. A reply
that does not decode is logged, counted and skipped: the listener goes on.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streaming_rec import codec
from streaming_rec.errors import ConfigError, DecodeError
from streaming_rec.schemas import Recommendation

log = logging.getLogger(__name__)


def choose_partition(instance_id: str, partitions: int, configured: int = -1) -> int:
    """The reply partition of a client: ``configured`` when ≥ 0, else the CRC-32 of
    ``instance_id`` modulo ``partitions`` (the partition count of `recommendations`).
    Raises ConfigError when the topic is missing (0 partitions) or ``configured`` is not
    one of its partitions."""
    if partitions < 1:
        raise ConfigError("the recommendations topic has no partitions (run streaming-rec topics)")
    if configured >= 0:
        if configured >= partitions:
            raise ConfigError(
                f"SREC_CLIENT_REPLY_PARTITION={configured}: recommendations has only "
                f"{partitions} partitions"
            )
        return configured
    return zlib.crc32(instance_id.encode("utf-8")) % partitions


@dataclass
class ReplyStats:
    """What a client's listener saw, in records: ``fetched`` from its partition, ``kept``
    (a reply it waited for), ``not_ours`` (another client's, or one nobody waits for any
    more), ``bad`` (did not decode), ``evicted`` (pending requests dropped to stay within
    the bound), ``expired`` (pending requests dropped after their time to live)."""

    fetched: int = 0
    kept: int = 0
    not_ours: int = 0
    bad: int = 0
    evicted: int = 0
    expired: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Pending:
    """One request a client waits on: until ``deadline`` (monotonic s); ``reply`` once it
    arrived; ``waiter`` is the client's own (an asyncio future, or None)."""

    request_id: str
    deadline: float
    reply: Recommendation | None = None
    waiter: Any = field(default=None, repr=False)


class ReplyStore:
    """The requests a client waits on and their replies, by request_id; at most
    ``capacity`` entries, each kept ``ttl_s`` seconds unless a wait extends it.

    Not thread-safe: the sync client holds its lock around every call."""

    def __init__(
        self, capacity: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1 or ttl_s <= 0:
            raise ValueError("capacity must be ≥ 1 and ttl_s > 0")
        self.capacity = capacity
        self.ttl_s = ttl_s
        self.clock = clock
        self.stats = ReplyStats()
        self._pending: OrderedDict[str, Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def expect(self, request_id: str, timeout_s: float | None = None) -> list[Pending]:
        """Wait for ``request_id`` for ``timeout_s`` (default ``ttl_s``) from now; a known
        request keeps the later deadline. Returns the entries evicted to stay within
        ``capacity`` (the oldest), whose waiters should be told."""
        now = self.clock()
        self._purge(now)
        deadline = now + (self.ttl_s if timeout_s is None else timeout_s)
        entry = self._pending.get(request_id)
        if entry is not None:
            entry.deadline = max(entry.deadline, deadline)
            self._pending.move_to_end(request_id)
            return []
        self._pending[request_id] = Pending(request_id, deadline)
        evicted = []
        while len(self._pending) > self.capacity:
            evicted.append(self._pending.popitem(last=False)[1])
        self.stats.evicted += len(evicted)
        return evicted

    def waiting(self, request_id: str) -> bool:
        """True while ``request_id`` is pending (not taken, dropped, evicted or expired)."""
        return request_id in self._pending

    def attach(self, request_id: str, waiter: Any) -> None:
        """Give the pending ``request_id`` a waiter (KeyError when it is not pending)."""
        self._pending[request_id].waiter = waiter

    def offer(self, reply: Recommendation) -> Pending | None:
        """Keep ``reply`` if its request is pending; return that entry (else None: not ours)."""
        self._purge(self.clock())
        entry = self._pending.get(reply.request_id)
        if entry is None or entry.reply is not None:
            self.stats.not_ours += 1
            return None
        entry.reply = reply
        self.stats.kept += 1
        return entry

    def take(self, request_id: str) -> Recommendation | None:
        """The reply to ``request_id`` if it has arrived (the entry is then gone), else None."""
        entry = self._pending.get(request_id)
        if entry is None or entry.reply is None:
            return None
        del self._pending[request_id]
        return entry.reply

    def entries(self) -> list[Pending]:
        """Every pending entry, oldest first (a copy)."""
        return list(self._pending.values())

    def drop(self, request_id: str) -> None:
        """Stop waiting for ``request_id`` (a reply arriving later is not kept)."""
        self._pending.pop(request_id, None)

    def _purge(self, now: float) -> None:
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.deadline > now:
                return
            del self._pending[oldest.request_id]
            self.stats.expired += 1


def decode_reply(
    value: bytes | None, stats: ReplyStats, where: tuple[str, int, int]
) -> Recommendation | None:
    """The reply in a record's ``value``, or None when it does not decode (logged with
    ``where`` = (topic, partition, offset) and counted in ``stats.bad``; never raises)."""
    stats.fetched += 1
    try:
        return codec.decode_recommendation(value)
    except DecodeError as exc:
        stats.bad += 1
        if stats.bad <= 10 or stats.bad % 1000 == 0:  # a flood of them is not a flood of logs
            log.warning("bad reply %s[%d]@%d skipped (%d so far): %s", *where, stats.bad, exc)
        return None
