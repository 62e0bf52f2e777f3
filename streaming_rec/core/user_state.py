"""A user's live taste: the decayed sum of the vectors of what they engaged with.

    u = Σ_i  w(event_i) · d_e^(n-1-i) · 0.5^((t_newest - t_i)/h_seconds) · v(item_i)

over the user's bounded event history (newest last), with d_e = 0.5^(1/h_events). This is
the same decayed average as the recursive S ← d·S + w·v, but it is computed at query time
from the *current* item vectors: when the trainer refreshes the collaborative item factors,
past clicks count with the new factors at once, and a click on an item whose factors are
not learned yet is not frozen into the user's vector as a zero. Negative events (skip,
dislike) subtract. The items in the history are never recommended back to the user.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streaming_rec.core.offsets import PartitionOffset

EVENT_IDS_KEPT = 100
"""event_ids remembered per user: a retry arrives within seconds, after a few events at most."""


@dataclass(frozen=True)
class Event:
    item_id: str
    event: str
    ts: float


@dataclass(frozen=True)
class UserState:
    """What a worker knows about one user."""

    user_id: str
    history: tuple[Event, ...] = ()
    events: int = 0  # every event ever applied (the history keeps the newest ones)
    feedback_ts: float | None = None
    # the last event applied from the feedback stream: an event delivered again
    # (at-least-once, after a crash) is recognised and not counted twice
    applied: PartitionOffset | None = None
    # the event_ids of the newest events applied (newest last, at most EVENT_IDS_KEPT): a
    # client's retry of an event (same event_id, a new offset) is recognised and skipped
    event_ids: tuple[str, ...] = ()

    def has_event(self, event_id: str | None) -> bool:
        """True when an event with this client-chosen ``event_id`` is already applied."""
        return event_id is not None and event_id in self.event_ids

    def with_event_id(self, event_id: str | None) -> UserState:
        """This state remembering ``event_id`` (None: unchanged); the oldest id goes once
        EVENT_IDS_KEPT are kept."""
        if event_id is None:
            return self
        kept = (*self.event_ids, event_id)[-EVENT_IDS_KEPT:]
        return dataclasses.replace(self, event_ids=kept)

    def already_applied(self, partition: int, offset: int) -> bool:
        """True when the event at (partition, offset) is already counted in this state."""
        return (
            self.applied is not None
            and self.applied.partition == partition
            and offset <= self.applied.offset
        )

    def seen(self) -> frozenset[str]:
        return frozenset(e.item_id for e in self.history)


VectorLookup = Callable[[Sequence[str]], tuple[list[str], np.ndarray]]
"""Given item ids, the ids that have vectors and those vectors (rows in the same order)."""


@dataclass(frozen=True)
class UpdateRule:
    """How feedback events make a user's state and taste."""

    weights: Mapping[str, float]
    half_life_events: float = 5.0
    half_life_seconds: float = 7 * 86400.0
    max_recent: int = 200

    def apply(self, state: UserState, item_id: str, event: str, ts: float) -> UserState:
        """The state after ``event`` on ``item_id`` (appended; the history stays bounded)."""
        if event not in self.weights:
            raise ValueError(f"unknown event {event!r}")
        history = (*state.history, Event(item_id, event, ts))
        if len(history) > self.max_recent:
            history = history[len(history) - self.max_recent :]
        newest = ts if state.feedback_ts is None else max(state.feedback_ts, ts)
        return dataclasses.replace(
            state, history=history, events=state.events + 1, feedback_ts=newest
        )

    def window(self) -> int:
        """Events that still count: older ones weigh < 1e-4 of the newest (14 half-lives)."""
        return max(1, math.ceil(14 * self.half_life_events))

    def coefficients(self, history: Sequence[Event]) -> np.ndarray:
        """The weight of each history entry in the taste sum."""
        n = len(history)
        if n == 0:
            return np.zeros(0)
        newest = max(e.ts for e in history)
        age_events = np.arange(n - 1, -1, -1, dtype=np.float64)
        age_seconds = np.array([max(0.0, newest - e.ts) for e in history])
        decay = 0.5 ** (age_events / self.half_life_events + age_seconds / self.half_life_seconds)
        weights = np.array([self.weights[e.event] for e in history], dtype=np.float64)
        return np.asarray(decay * weights, dtype=np.float64)

    def taste(self, state: UserState, lookup: VectorLookup) -> np.ndarray | None:
        """The decayed sum of the history's item vectors ((d,) float32, not normalised), or
        None (no history, or none of its items has a vector)."""
        return self.tastes([state], lookup)[0]

    def tastes(
        self, states: Sequence[UserState | None], lookup: VectorLookup
    ) -> list[np.ndarray | None]:
        """:meth:`taste` of each state (None for None), with one ``lookup`` and one weighted
        sum for them all: each numpy call big enough lets the GIL go, and the compute thread
        then waits up to Python's switch interval to take it back while the event loop runs,
        so a batch pays for that once instead of once per user (bench part 'rank')."""
        windows = [s.history[-self.window() :] if s is not None else () for s in states]
        ids = [e.item_id for history in windows for e in history]
        out: list[np.ndarray | None] = [None] * len(states)
        if not ids:
            return out
        found, vectors = lookup(ids)
        if not found:
            return out
        row = {item_id: i for i, item_id in enumerate(found)}
        rows = np.array([row.get(i, -1) for i in ids], dtype=np.intp)
        coefficients = np.concatenate([self.coefficients(h) for h in windows])
        owner = np.repeat(np.arange(len(states)), [len(h) for h in windows])
        known = rows >= 0
        if not known.any():
            return out
        rows, coefficients, owner = rows[known], coefficients[known], owner[known]
        # float32 throughout: each conversion of the (events, d) block is one more hand-over
        weighted = vectors[rows] * coefficients.astype(np.float32)[:, None]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        sums = np.add.reduceat(weighted, starts, axis=0)
        for user, total in zip(owner[starts].tolist(), sums, strict=True):
            out[user] = total
        return out


def unit(vector: np.ndarray | None) -> np.ndarray | None:
    """``vector`` scaled to length 1, or None when it is (nearly) zero."""
    if vector is None:
        return None
    norm = float(np.linalg.norm(vector))
    return None if norm < 1e-6 else (vector / norm).astype(np.float32)
