"""A user's live taste: a decayed sum of the vectors of what they engaged with.

    S ← d·S + w(event)·v        d = 0.5^(1/h_events) · 0.5^(Δt/h_seconds)
    u = S / ‖S‖

The sum S is stored (not u) so that an event k events ago weighs d^k relative to the
newest one: a true decayed average, with the half-lives from settings. Negative events
(skip, dislike) subtract. A bounded list of recent items is kept beside S; those items
are never recommended back to the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class UserState:
    """What a worker knows about one user. ``taste`` is the decayed sum S (not normalised)."""

    user_id: str
    taste: np.ndarray | None = None
    recent: tuple[str, ...] = ()
    events: int = 0
    feedback_ts: float | None = None

    def direction(self) -> np.ndarray | None:
        """The unit taste vector u, or None while the user has no usable history."""
        if self.taste is None:
            return None
        norm = float(np.linalg.norm(self.taste))
        if norm < 1e-6:
            return None
        return (self.taste / norm).astype(np.float32)


@dataclass(frozen=True)
class UpdateRule:
    """How one feedback event moves a user's state."""

    weights: Mapping[str, float]
    half_life_events: float = 5.0
    half_life_seconds: float = 7 * 86400.0
    max_recent: int = 200

    def decay(self, previous_ts: float | None, ts: float) -> float:
        per_event = 0.5 ** (1.0 / self.half_life_events)
        if previous_ts is None:
            return float(per_event)
        elapsed = max(0.0, ts - previous_ts)
        return float(per_event * 0.5 ** (elapsed / self.half_life_seconds))

    def apply(
        self,
        state: UserState,
        item_id: str,
        event: str,
        ts: float,
        item_vector: np.ndarray | None,
    ) -> UserState:
        """The state after ``event`` on ``item_id``; ``item_vector`` None = item not indexed."""
        weight = self.weights[event]
        taste = state.taste
        if item_vector is not None and weight != 0.0:
            step = weight * item_vector.astype(np.float32)
            taste = step if taste is None else self.decay(state.feedback_ts, ts) * taste + step
        recent = (*tuple(i for i in state.recent if i != item_id), item_id)
        if self.max_recent == 0:
            recent = ()
        elif len(recent) > self.max_recent:
            recent = recent[-self.max_recent :]
        newest = ts if state.feedback_ts is None else max(state.feedback_ts, ts)
        return replace(
            state, taste=taste, recent=recent, events=state.events + 1, feedback_ts=newest
        )
