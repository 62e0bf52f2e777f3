"""Offline baselines on the same split and the same exclusions as the live system.

Every ranking covers the whole catalog; the items a user interacted with in training are
excluded; ties are broken by training popularity, then by catalog order, so results are
deterministic.

- MostPopular: items by their number of training interactions (any rating).
- ItemKNN: cosine similarity of items' training co-occurrence (binary user×item matrix of
  all training interactions); a user's score for item j is the sum of sim(i, j) over the
  items i they rated positively (≥ 4) in training. No neighbourhood truncation, no
  shrinkage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from streaming_rec_dev.evaluation.split import Interaction


@dataclass(frozen=True)
class Interactions:
    """The training interactions as sparse user × item matrices over a fixed catalog."""

    items: list[str]
    users: list[str]
    seen: sp.csr_matrix  # 1 where the user interacted with the item in training
    positive: sp.csr_matrix  # 1 where that interaction was positive
    counts: np.ndarray  # training interactions per item

    @classmethod
    def build(
        cls, train: Sequence[Interaction], items: Sequence[str], users: Sequence[str]
    ) -> Interactions:
        col = {item: j for j, item in enumerate(items)}
        row = {user: i for i, user in enumerate(users)}
        kept = [t for t in train if t.item_id in col and t.user_id in row]
        rows = np.array([row[t.user_id] for t in kept], dtype=np.int64)
        cols = np.array([col[t.item_id] for t in kept], dtype=np.int64)
        pos = np.array([t.positive for t in kept], dtype=bool)
        shape = (len(users), len(items))
        seen = sp.csr_matrix((np.ones(len(kept)), (rows, cols)), shape=shape)
        seen.data[:] = 1.0  # a repeated (user, item) pair counts once
        positive = sp.csr_matrix((np.ones(int(pos.sum())), (rows[pos], cols[pos])), shape=shape)
        positive.data[:] = 1.0
        counts = np.bincount(cols, minlength=len(items)).astype(np.int64)
        return cls(list(items), list(users), seen, positive, counts)

    @property
    def popularity_order(self) -> np.ndarray:
        """Item columns by count, most first; ties by catalog order."""
        return np.lexsort((np.arange(len(self.items)), -self.counts))


def top_k(scores: np.ndarray, seen: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k best unseen items: score, then count, then column, descending."""
    order = np.lexsort((np.arange(len(scores)), -counts, -scores))
    mask = np.ones(len(scores), dtype=bool)
    mask[seen] = False
    return order[mask[order]][:k]


def most_popular(data: Interactions, k: int = 10) -> dict[str, list[str]]:
    order = data.popularity_order
    out: dict[str, list[str]] = {}
    for i, user in enumerate(data.users):
        seen = set(data.seen.indices[data.seen.indptr[i] : data.seen.indptr[i + 1]].tolist())
        out[user] = [data.items[j] for j in _first_unseen(order, seen, k)]
    return out


def _first_unseen(order: np.ndarray, seen: set[int], k: int) -> list[int]:
    picked: list[int] = []
    for j in order.tolist():
        if j not in seen:
            picked.append(j)
            if len(picked) == k:
                break
    return picked


def item_similarity(seen: sp.csr_matrix) -> np.ndarray:
    """Dense item × item cosine of the binary interaction columns, zero diagonal."""
    co: np.ndarray = np.asarray((seen.T @ seen).toarray(), dtype=np.float64)
    norms = np.sqrt(np.diag(co))
    norms[norms == 0] = 1.0
    sim: np.ndarray = co / norms[:, None] / norms[None, :]
    np.fill_diagonal(sim, 0.0)
    return sim


def item_knn(data: Interactions, k: int = 10, chunk: int = 1024) -> dict[str, list[str]]:
    sim = item_similarity(data.seen)
    out: dict[str, list[str]] = {}
    for start in range(0, len(data.users), chunk):
        block = np.asarray(data.positive[start : start + chunk] @ sim)
        for offset, scores in enumerate(block):
            i = start + offset
            seen = data.seen.indices[data.seen.indptr[i] : data.seen.indptr[i + 1]]
            cols = top_k(scores, seen, data.counts, k)
            out[data.users[i]] = [data.items[j] for j in cols]
    return out
