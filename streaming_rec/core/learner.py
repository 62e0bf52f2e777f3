"""Blend weights learned online from impressions and clicks (the article's "dynamic f").

Every answer is an impression: the items shown, each with the parts of its score

    f = (⟨x, v_c⟩, ⟨u_c, v_c⟩, ⟨u_f, v_f⟩, prior)      so that  s = w · f,  w = (α, γ, β, w_p).

Feedback that names the request_id is the label. A positive event on a shown item i is
read as "i was preferred to every shown item the user did not engage with", and each such
pair (i, j) takes one step of pairwise logistic regression (BPR):

    w ← w + η · (σ(−w·(f_i − f_j)) · (f_i − f_j) − λ · (w − w₀))

The pull λ towards the configured weights w₀ keeps w from drifting where clicks say
little, and each weight stays within [w₀/4, 4·w₀] (one configured at 0 may grow to 0.5):
no stream of clicks can switch a part off — text queries keep their text — or let one
part take over. A pairwise loss ignores what all shown items share
(the query, the user), so it learns only how the parts should trade off against each other.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from streaming_rec.core.ranker import RankingWeights
from streaming_rec.core.signals import NAMES as PARTS

SPAN = 4.0  # a learned weight stays within [w0 / SPAN, w0 * SPAN]
FROM_ZERO = 0.5  # the most a weight configured at 0 may grow to


@dataclass(frozen=True)
class Impression:
    """What one answer showed: item ids (rank order) and their score parts (rows of PARTS)."""

    item_ids: tuple[str, ...]
    parts: np.ndarray  # (len(item_ids), len(PARTS))
    user_id: str = ""  # whom it was shown to (forgetting a user drops their impressions)


class Impressions:
    """The newest answers by request_id, bounded (the oldest are forgotten first)."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._by_request: OrderedDict[str, Impression] = OrderedDict()

    def put(self, request_id: str, impression: Impression) -> None:
        self._by_request[request_id] = impression
        self._by_request.move_to_end(request_id)
        while len(self._by_request) > self._size:
            self._by_request.popitem(last=False)

    def get(self, request_id: str) -> Impression | None:
        return self._by_request.get(request_id)

    def drop_user(self, user_id: str) -> int:
        """Forget every impression shown to ``user_id``; returns how many (a scan: O(n))."""
        mine = [r for r, impression in self._by_request.items() if impression.user_id == user_id]
        for request_id in mine:
            del self._by_request[request_id]
        return len(mine)

    def __len__(self) -> int:
        return len(self._by_request)


class BlendLearner:
    """Pairwise online updates of (α, γ, β, w_p); ``rate`` 0 keeps the configured weights."""

    def __init__(self, start: RankingWeights, rate: float, pull: float = 0.01) -> None:
        self.start = start
        self.rate = rate
        self.pull = pull
        self._w0 = np.array([getattr(start, p) for p in PARTS], dtype=np.float64)
        self._w = self._w0.copy()
        self._lo = self._w0 / SPAN
        self._hi = np.maximum(self._w0 * SPAN, FROM_ZERO)
        self.updates = 0  # pairs learned from
        self.labels = 0  # positive events that named a shown item

    @property
    def weights(self) -> RankingWeights:
        """The configured weights with the learned (α, γ, β, w_p)."""
        learned: dict[str, Any] = {name: float(v) for name, v in zip(PARTS, self._w, strict=True)}
        return replace(self.start, **learned)

    def as_dict(self) -> dict[str, float]:
        return {p: round(float(v), 4) for p, v in zip(PARTS, self._w, strict=True)}

    def restore(self, saved: dict[str, float]) -> None:
        """Continue from weights saved by :meth:`as_dict` (plus ``learned_pairs``)."""
        self._w = np.clip(np.array([float(saved[p]) for p in PARTS]), self._lo, self._hi)
        self.updates = int(saved.get("learned_pairs", 0))

    def learn(self, impression: Impression, engaged: Sequence[str]) -> int:
        """One step per (engaged, not engaged) pair of ``impression``; the pairs used."""
        if self.rate <= 0:
            return 0
        shown = {item_id: i for i, item_id in enumerate(impression.item_ids)}
        good = [shown[i] for i in dict.fromkeys(engaged) if i in shown]
        if not good:
            return 0
        self.labels += len(good)
        rest = [j for j in range(len(impression.item_ids)) if j not in set(good)]
        pairs = 0
        for i in good:
            for j in rest:
                diff = impression.parts[i] - impression.parts[j]
                margin = float(self._w @ diff)
                gradient = _sigmoid(-margin) * diff - self.pull * (self._w - self._w0)
                self._w = np.clip(self._w + self.rate * gradient, self._lo, self._hi)
                pairs += 1
        self.updates += pairs
        return pairs


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
