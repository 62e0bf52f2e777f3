"""From a query and a user to one search vector, and from candidates to the final top-k.

The model (DESIGN.md): s(x, u, v) = α⟨x, v⟩ + γ⟨u, v⟩ + w·prior(v). The first two terms
are one inner product with q = α·x + γ·u, so the index is searched once per request; the
prior (popularity) and diversification (MMR) are applied to the top-M candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Strategy = Literal["query", "personal", "query+personal", "popular"]


@dataclass(frozen=True)
class RankingWeights:
    alpha: float = 1.0
    gamma: float = 0.3
    prior_weight: float = 0.05
    mmr_lambda: float = 1.0
    candidates: int = 200


def fuse(
    query: np.ndarray | None, user: np.ndarray | None, weights: RankingWeights
) -> tuple[np.ndarray | None, Strategy]:
    """The search vector and the strategy name; (None, "popular") when there is neither."""
    if query is not None and user is not None and weights.gamma > 0:
        return weights.alpha * query + weights.gamma * user, "query+personal"
    if query is not None:
        return query, "query"
    if user is not None:
        return user, "personal"
    return None, "popular"


def rerank(
    candidates: Sequence[tuple[str, float]],
    vectors: np.ndarray | None,
    prior: Callable[[str], float],
    weights: RankingWeights,
    k: int,
) -> list[tuple[str, float]]:
    """Add the prior to each candidate's similarity, then pick k (greedy MMR when λ < 1).

    ``vectors`` holds the candidates' item vectors in the same order (needed only for MMR).
    """
    if not candidates:
        return []
    ids = [item_id for item_id, _ in candidates]
    scores = np.array([s for _, s in candidates], dtype=np.float64)
    if weights.prior_weight:
        scores = scores + weights.prior_weight * np.array([prior(i) for i in ids])
    if weights.mmr_lambda >= 1.0 or vectors is None or len(ids) <= 1:
        order = np.argsort(-scores, kind="stable")[:k]
        return [(ids[i], float(scores[i])) for i in order]
    return _mmr(ids, scores, vectors, weights.mmr_lambda, k)


def _mmr(
    ids: list[str], scores: np.ndarray, vectors: np.ndarray, lam: float, k: int
) -> list[tuple[str, float]]:
    similarity = vectors @ vectors.T
    chosen: list[int] = []
    max_sim = np.full(len(ids), -np.inf)
    remaining = np.ones(len(ids), dtype=bool)
    while len(chosen) < min(k, len(ids)):
        redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = np.where(remaining, lam * scores - (1 - lam) * redundancy, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        remaining[best] = False
        max_sim = np.maximum(max_sim, similarity[best])
    return [(ids[i], float(scores[i])) for i in chosen]
