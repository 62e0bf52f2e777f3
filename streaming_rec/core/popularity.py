"""Popular-now: exponentially decayed engagement counts per item.

A count added at time t is stored scaled by 2^((t - t0)/half_life), so no count is ever
touched again to decay it; comparing scaled counts compares decayed ones. The reference
t0 moves forward (rescaling everything once) before the scale overflows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from itertools import repeat

import numpy as np

_REBASE_AT = 512.0  # half-lives between t0 and now before rescaling (2^512 fits a float)
_SPREAD = 100.0  # an item with 1% of the top count gets a prior of about 0.15


class Popularity:
    """Decayed counts; ``prior`` in [0, 1] for ranking, ``top`` for cold-start answers.

    ``top`` re-sorts at most every ``rerank_every_s`` seconds, so a flood of feedback
    does not make cold-start answers sort the whole catalog each time.
    """

    def __init__(self, half_life_seconds: float, rerank_every_s: float = 1.0) -> None:
        self._half_life = half_life_seconds
        self._rerank_every = rerank_every_s
        self._t0: float | None = None
        self._scaled: dict[str, float] = {}
        self._max = 0.0
        self._ranked: list[str] | None = None
        self._ranked_at = 0.0

    def observe(self, item_id: str, weight: float, ts: float) -> None:
        """Add ``weight`` (positive events only; others are ignored) at event time ``ts``."""
        if weight <= 0:
            return
        if self._t0 is None:
            self._t0 = ts
        exponent = (ts - self._t0) / self._half_life
        if exponent > _REBASE_AT:
            self._rebase(ts)
            exponent = 0.0
        value = self._scaled.get(item_id, 0.0) + weight * 2.0 ** max(exponent, -_REBASE_AT)
        self._scaled[item_id] = value
        self._max = max(self._max, value)

    def _rebase(self, ts: float) -> None:
        assert self._t0 is not None
        factor = 2.0 ** (-(ts - self._t0) / self._half_life)
        self._scaled = {k: v * factor for k, v in self._scaled.items() if v * factor > 1e-12}
        self._max = max(self._scaled.values(), default=0.0)
        self._t0 = ts

    def prior(self, item_id: str) -> float:
        """Log-compressed share of the most popular item's count, in [0, 1]."""
        if self._max <= 0:
            return 0.0
        share = self._scaled.get(item_id, 0.0) / self._max
        return math.log1p(_SPREAD * share) / math.log1p(_SPREAD)

    def priors(self, item_ids: Sequence[str]) -> np.ndarray:
        """:meth:`prior` of each of ``item_ids``: (n,) float64, in one pass (the ranker asks
        for hundreds of candidates per query)."""
        if self._max <= 0:
            return np.zeros(len(item_ids))
        shares = np.fromiter(
            map(self._scaled.get, item_ids, repeat(0.0)), dtype=np.float64, count=len(item_ids)
        )
        return np.log1p(_SPREAD / self._max * shares) / math.log1p(_SPREAD)

    def top(self, n: int, allow: Callable[[str], bool]) -> list[tuple[str, float]]:
        """The ``n`` most popular items that ``allow`` accepts, with their priors."""
        now = time.monotonic()
        if self._ranked is None or now - self._ranked_at >= self._rerank_every:
            self._ranked = sorted(self._scaled, key=self._scaled.__getitem__, reverse=True)
            self._ranked_at = now
        out: list[tuple[str, float]] = []
        for item_id in self._ranked:
            if allow(item_id):
                out.append((item_id, self.prior(item_id)))
                if len(out) == n:
                    break
        return out

    def __len__(self) -> int:
        return len(self._scaled)
