"""From a query and a user to one search vector, and from candidates to the final top-k.

The model (described in the README's opening section; the blend is learned in
core/learner.py): every item vector is [v_c ; v_f] (content ; collaborative factors) and
s(x, u, v) = α⟨x, v_c⟩ + γ⟨u_c, v_c⟩ + β⟨u_f, v_f⟩ + w·prior(v). The first three terms
are one inner product with q = [α·x + γ·u_c ; β·u_f], so the index is searched once per
request with weights chosen per request; the prior (popularity) and diversification (MMR)
are applied to the top-M candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Literal

import numpy as np

Strategy = Literal["query", "personal", "query+personal", "popular"]


@dataclass(frozen=True)
class RankingWeights:
    alpha: float = 1.0
    gamma: float = 0.3
    beta: float = 1.0
    prior_weight: float = 0.05
    mmr_lambda: float = 1.0
    candidates: int = 200
    sequence_share: float = 1.0  # of u_f from the sequence model; the rest: decayed average


def mix_profiles(sequence_f: np.ndarray, decayed_f: np.ndarray | None, share: float) -> np.ndarray:
    """u_f from the sequence model's ``sequence_f`` and the decayed average ``decayed_f``
    (both (d,) float32 unit vectors): ``share``·sequence + (1 − share)·decayed, made unit
    again; ``sequence_f`` itself when ``share`` ≥ 1 or the user has no decayed average, and
    ``decayed_f`` when ``share`` ≤ 0."""
    if share >= 1.0 or decayed_f is None:
        return sequence_f
    if share <= 0.0:
        return decayed_f
    mixed = (share * sequence_f + (1.0 - share) * decayed_f).astype(np.float32)
    norm = float(np.linalg.norm(mixed))
    return mixed / norm if norm > 0.0 else sequence_f


def fuse(
    query: np.ndarray | None,
    taste_content: np.ndarray | None,
    taste_factors: np.ndarray | None,
    weights: RankingWeights,
    content_dim: int,
    factor_dim: int = 0,
) -> tuple[np.ndarray | None, Strategy]:
    """The search vector [α·x + γ·u_c ; β·u_f] and the strategy; (None, "popular") when the
    request has neither text nor a usable taste. Parts that are None count as zero."""
    personal = taste_content is not None or taste_factors is not None
    if query is None and not personal:
        return None, "popular"
    content = np.zeros(content_dim, dtype=np.float32)
    if query is not None:
        content += weights.alpha * query
    if taste_content is not None:
        content += weights.gamma * taste_content
    factors = np.zeros(factor_dim, dtype=np.float32)
    if taste_factors is not None and factor_dim:
        factors += weights.beta * taste_factors
    vector = np.concatenate([content, factors]) if factor_dim else content
    if query is None:
        return vector, "personal"
    return vector, "query+personal" if personal else "query"


def rerank(
    candidates: Sequence[tuple[str, float]],
    vectors: np.ndarray | None,
    priors: Callable[[Sequence[str]], np.ndarray],
    weights: RankingWeights,
    k: int,
) -> list[tuple[str, float]]:
    """Add the prior to each candidate's similarity, then pick k (greedy MMR when λ < 1).

    ``vectors`` holds the candidates' item vectors in the same order (needed only for MMR);
    ``priors`` maps the candidates' ids to their priors, (n,) float64
    (core/popularity.py ``Popularity.priors``).
    """
    if not candidates:
        return []
    ids, similarity = zip(*candidates, strict=True)
    scores = np.array(similarity, dtype=np.float64)
    if weights.prior_weight:
        scores = scores + weights.prior_weight * priors(ids)
    if weights.mmr_lambda >= 1.0 or vectors is None or len(ids) <= 1:
        order = np.argsort(-scores, kind="stable")[:k].tolist()
        return [(ids[i], s) for i, s in zip(order, scores[order].tolist(), strict=True)]
    return _mmr(ids, scores, vectors, weights.mmr_lambda, k)


def _mmr(
    ids: Sequence[str], scores: np.ndarray, vectors: np.ndarray, lam: float, k: int
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


@dataclass(frozen=True)
class Slot:
    item_id: str
    score: float
    explored: bool = False
    propensity: float = 1.0  # P(the policy shows this item in this slot | the ranking)


EXPLORE_FROM = 3  # the first slots always show the best items


Pool = Sequence[tuple[str, float]] | Callable[[], Sequence[tuple[str, float]]]


def explore(
    ranked: Sequence[tuple[str, float]], pool: Pool, share: float, rng: Random
) -> list[Slot]:
    """Give each slot from EXPLORE_FROM on, with probability ``share``, to an item drawn
    uniformly from ``pool`` (the uncertain candidates that did not make the list; a
    callable is asked only once a slot explores), and log the propensity of what is
    shown so that policies can be evaluated offline."""
    slots = [Slot(i, s) for i, s in ranked]
    if share <= 0:
        return slots
    left: list[tuple[str, float]] | None = None
    for position in range(EXPLORE_FROM, len(slots)):
        if rng.random() < share:
            if left is None:
                left = list(pool() if callable(pool) else pool)
                if not left:  # nothing to explore with: the list is the ranking
                    return [Slot(i, s) for i, s in ranked]
            if left:
                item_id, score = left.pop(rng.randrange(len(left)))
                slots[position] = Slot(item_id, score, True, share / (len(left) + 1))
                continue
        kept = slots[position]
        slots[position] = Slot(kept.item_id, kept.score, False, 1.0 - share)
    return slots
