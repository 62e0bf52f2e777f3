"""Top-k metrics for a ranked list against held-out items, and run-level summaries.

With one held-out item per user (leave-last-out), Recall@k equals HitRate@k: both are 1
when the item is in the top k and 0 otherwise. Both are reported, as the protocol asks.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np


def dcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    return sum(1.0 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)


def ndcg_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """DCG@k over the ideal DCG@k (binary relevance); 0 when nothing is relevant."""
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg_at_k(ranked, relevant, k) / ideal if ideal else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def hit_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    return 1.0 if set(ranked[:k]) & set(relevant) else 0.0


def reciprocal_rank_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1/rank of the first relevant item in the top k, else 0 (MRR@k when averaged)."""
    for i, item in enumerate(ranked[:k]):
        if item in relevant:
            return 1.0 / (i + 1)
    return 0.0


def coverage(recommendations: Mapping[str, Sequence[str]], catalog_size: int, k: int) -> float:
    """Distinct items recommended (in anyone's top k) over the catalog size."""
    distinct = {item for ranked in recommendations.values() for item in ranked[:k]}
    return len(distinct) / catalog_size if catalog_size else 0.0


def popularity_percentiles(counts: Mapping[str, int], catalog: Sequence[str]) -> dict[str, float]:
    """Each catalog item's percentile (0-100) by training interaction count.

    Mid-rank percentile: 100 · (items with a lower count + ½ · items with the same count) / N,
    so the most popular item of a catalog of N distinct counts gets 100·(N-½)/N.
    """
    values = np.array([counts.get(item, 0) for item in catalog], dtype=np.float64)
    ordered = np.sort(values)
    below = np.searchsorted(ordered, values, side="left")
    same = np.searchsorted(ordered, values, side="right") - below
    pct = 100.0 * (below + 0.5 * same) / len(values)
    return {item: float(p) for item, p in zip(catalog, pct, strict=True)}


def summarize(
    recommendations: Mapping[str, Sequence[str]],
    held_out: Mapping[str, str],
    percentiles: Mapping[str, float],
    catalog_size: int,
    k: int = 10,
) -> dict[str, float]:
    """Mean NDCG/Recall/HitRate/MRR@k over the users of ``held_out`` (a user with no answer
    scores 0), coverage and mean popularity percentile over those users' top-k lists."""
    users = list(held_out)
    ranked = {u: list(recommendations.get(u, ()))[:k] for u in users}
    rows = [
        (
            ndcg_at_k(ranked[u], {held_out[u]}, k),
            recall_at_k(ranked[u], {held_out[u]}, k),
            hit_at_k(ranked[u], {held_out[u]}, k),
            reciprocal_rank_at_k(ranked[u], {held_out[u]}, k),
        )
        for u in users
    ]
    means = np.mean(np.array(rows), axis=0) if rows else np.zeros(4)
    shown = [percentiles[i] for items in ranked.values() for i in items if i in percentiles]
    return {
        "users": float(len(users)),
        f"ndcg@{k}": float(means[0]),
        f"recall@{k}": float(means[1]),
        f"hit_rate@{k}": float(means[2]),
        f"mrr@{k}": float(means[3]),
        "coverage": coverage(ranked, catalog_size, k),
        "popularity_percentile": float(np.mean(shown)) if shown else 0.0,
    }


def summarize_sets(
    recommendations: Mapping[str, Sequence[str]],
    relevant: Mapping[str, Collection[str]],
    percentiles: Mapping[str, float],
    catalog_size: int,
    k: int = 10,
) -> dict[str, float]:
    """Like :func:`summarize` with a set of relevant items per user (the global time split:
    everything the user rated after the date). NDCG@k uses the ideal DCG of min(|set|, k)
    items; Recall@k = hits / |set|; precision@k = hits / k."""
    users = [u for u in relevant if relevant[u]]
    ranked = {u: list(recommendations.get(u, ()))[:k] for u in users}
    rows = [
        (
            ndcg_at_k(ranked[u], relevant[u], k),
            recall_at_k(ranked[u], relevant[u], k),
            hit_at_k(ranked[u], relevant[u], k),
            reciprocal_rank_at_k(ranked[u], relevant[u], k),
            len(set(ranked[u]) & set(relevant[u])) / k,
        )
        for u in users
    ]
    means = np.mean(np.array(rows), axis=0) if rows else np.zeros(5)
    shown = [percentiles[i] for items in ranked.values() for i in items if i in percentiles]
    return {
        "users": float(len(users)),
        f"ndcg@{k}": float(means[0]),
        f"recall@{k}": float(means[1]),
        f"hit_rate@{k}": float(means[2]),
        f"mrr@{k}": float(means[3]),
        f"precision@{k}": float(means[4]),
        "coverage": coverage(ranked, catalog_size, k),
        "popularity_percentile": float(np.mean(shown)) if shown else 0.0,
    }
