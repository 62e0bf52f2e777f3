"""Apply feedback: `feedback` → each user's state (the user-state table) and the blend learner.

Exactly once per user state: each state records the (partition, offset) of the last event
it holds, so an event read again after a crash is skipped; and the newest event_ids it
applied, so a client's retry of an event (the same event_id in a new record, e.g. after an
HTTP 504) is skipped too. A tombstone (null value, key = user_id) forgets the user: their
state is deleted (a tombstone on the changelog) with the impressions the worker kept of
them, and their next event starts a new state. Events on an item the worker
does not know yet are handed to ``hold`` (see ``streaming_rec.flows.held``), which brings
them back as new records once the item is indexed, or dead-letters them after a bounded
wait.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping

from streaming_rec.core.service import Recommender
from streaming_rec.core.user_state import UserState
from streaming_rec.errors import UnknownItem
from streaming_rec.flows.convert import StateCache
from streaming_rec.flows.policy import (
    DEFAULT_MAX_SKEW_S,
    DeadLetterPolicy,
    forgotten_user,
    is_forget,
    read_feedback,
)
from streaming_rec.flows.ports import Compute, Meter, Record, StateStore

Hold = Callable[[Record, UnknownItem], Awaitable[None]]
"""Keeps a record whose item is not indexed yet, to try it again later."""


@dataclasses.dataclass
class _Batch:
    """What one batch of feedback does: per user, the record of their last event and their
    state (None: forgotten); the users forgotten; the (request_id, item_id) pairs of
    positive events for the blend learner; how many events were applied."""

    updated: dict[bytes, tuple[Record, UserState | None]] = dataclasses.field(default_factory=dict)
    forgets: dict[bytes, Record] = dataclasses.field(default_factory=dict)
    labels: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    applied: int = 0


class ApplyFeedback:
    """The feedback flow. ``handle(records)`` applies one batch: each user's state is
    written once per batch (one changelog record, in the partition of its last event)."""

    def __init__(
        self,
        service: Recommender,
        users: StateStore,
        policy: DeadLetterPolicy,
        meter: Meter,
        compute: Compute,
        *,
        event_weights: Mapping[str, float],
        hold: Hold | None = None,
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
        on_learned: Callable[[], None] = lambda: None,
        states: StateCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.users = users
        self.policy = policy
        self.meter = meter
        self.compute = compute
        self.event_weights = event_weights
        self.hold = hold
        self.max_skew_s = max_skew_s
        self.on_learned = on_learned
        self.states = states if states is not None else StateCache()
        self.clock = clock

    async def handle(self, records: list[Record]) -> None:
        """Apply the events in ``records``; refused ones are held or dead-lettered."""
        if not records:
            return
        now = self.clock()
        batch = _Batch()
        for record in records:
            try:
                self._take(record, now, batch)
            except UnknownItem as exc:
                if self.hold is not None:
                    await self.hold(record, exc)
                    self.meter.messages(record.topic, "held")
                else:
                    await self.policy.reject(record, exc)
            except Exception as exc:  # a bad message, or a bug on this one record
                await self.policy.reject(record, exc)
        await self._write(batch)
        self.meter.messages(records[0].topic, "ok", batch.applied)
        if batch.labels:
            learned: int = await self.compute(self.service.learn, batch.labels)
            if learned:
                self.on_learned()

    def _take(self, record: Record, now: float, batch: _Batch) -> None:
        """Fold one record into ``batch``. Raises UnknownItem, DecodeError, or whatever
        handling this one record raised."""
        if is_forget(record):
            key = forgotten_user(record).encode()
            batch.updated[key] = (record, None)
            batch.forgets[key] = record
            return
        accepted = read_feedback(record, self.service.has_item, now, self.max_skew_s)
        fb = accepted.feedback
        key = fb.user_id.encode()
        if key in batch.updated:
            last = batch.updated[key][1]
            state = last if last is not None else UserState(fb.user_id)
        else:
            state = self.states.load(self.users.get(key), fb.user_id)
        if state.already_applied(*record.where):
            # delivered again after a crash: the state already counts it
            self.meter.messages(record.topic, "redelivered")
            return
        if state.has_event(fb.event_id):
            # a client's retry (a new record, the same event_id): applied already
            self.meter.messages(record.topic, "duplicate")
            return
        state = self.service.apply_feedback(state, fb.item_id, fb.event, accepted.ts)
        state = state.with_event_id(fb.event_id)
        batch.updated[key] = (record, dataclasses.replace(state, applied=record.where))
        batch.applied += 1
        if fb.request_id is not None and self.event_weights[fb.event] > 0:
            batch.labels.append((fb.request_id, fb.item_id))

    async def _write(self, batch: _Batch) -> None:
        """Forget first (a later event in the batch starts a new state), then write each
        user's state once, in the partition of its last event."""
        for key, record in batch.forgets.items():
            try:
                await self._forget(key, record)
            except Exception as exc:
                await self.policy.reject(record, exc)
        for key, (record, kept) in batch.updated.items():
            if kept is None:
                continue  # forgotten, no event after
            try:
                self.users.put(key, self.states.store(kept), record)
            except Exception as exc:  # never crash-loop on one user's state
                batch.applied -= 1
                await self.policy.reject(record, exc)

    async def _forget(self, key: bytes, record: Record) -> None:
        """Delete the user's state (changelog tombstone) and what the worker keeps of them."""
        user_id = key.decode("utf-8")
        self.users.delete(key, record)
        self.states.drop(user_id)
        await self.compute(self.service.forget_user, user_id)
        self.meter.messages(record.topic, "forgotten")
