"""Collaborative item factors learned from the feedback stream, and the map that predicts
them for items nobody has touched yet.

* ``Interactions`` keeps who engaged with what, incrementally (one dict update per event).
* ``item_factors`` is a truncated SVD of the user × item matrix (scipy's ``svds``):
  item factors V·√S, scaled to unit length, so ⟨u_f, v_f⟩ is a cosine like ⟨u_c, v_c⟩.
* ``fit_content_map`` is a ridge regression from content vectors to factors, refitted at
  each refresh: a new item's v_f is predicted from its v_c, so it is retrievable in both
  parts before anyone clicks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds


class Interactions:
    """Which user engaged with which item (any event counts once: presence, not sign —
    the factors learn what is consumed together; the taste weights carry the sign)."""

    def __init__(self) -> None:
        self._users: dict[str, int] = {}
        self._items: dict[str, int] = {}
        self._pairs: set[tuple[int, int]] = set()
        self.events = 0

    def add(self, user_id: str, item_id: str) -> None:
        u = self._users.setdefault(user_id, len(self._users))
        i = self._items.setdefault(item_id, len(self._items))
        self._pairs.add((u, i))
        self.events += 1

    def forget(self, user_id: str) -> int:
        """Drop the user's pairs (their row stays, empty); returns how many were dropped.
        O(pairs): forgetting is rare."""
        u = self._users.get(user_id)
        if u is None:
            return 0
        mine = {pair for pair in self._pairs if pair[0] == u}
        self._pairs -= mine
        return len(mine)

    def matrix(self) -> tuple[csr_matrix, list[str]]:
        """The binary user × item matrix and the item ids of its columns."""
        items = list(self._items)
        if not self._pairs:
            return csr_matrix((len(self._users), len(items))), items
        rows, cols = zip(*self._pairs, strict=True)
        data = np.ones(len(rows), dtype=np.float64)
        shape = (len(self._users), len(items))
        return csr_matrix((data, (rows, cols)), shape=shape), items


@dataclass(frozen=True)
class Factors:
    item_ids: list[str]
    vectors: np.ndarray  # (n_items, dim), unit rows (zero rows for items with no signal)


def item_factors(matrix: csr_matrix, item_ids: list[str], dim: int, seed: int = 0) -> Factors:
    """Unit-length item factors of rank ≤ ``dim`` from a truncated SVD of ``matrix``."""
    n_users, n_items = matrix.shape
    rank = min(dim, n_users - 1, n_items - 1)
    vectors = np.zeros((n_items, dim), dtype=np.float32)
    if rank >= 1 and matrix.nnz:
        start = np.random.default_rng(seed).standard_normal(min(matrix.shape))
        _, singular, vt = svds(matrix, k=rank, v0=start)
        order = np.argsort(-singular)
        v = vt[order].T * np.sqrt(np.maximum(singular[order], 0.0))
        vectors[:, :rank] = v
    return Factors(item_ids, _unit_rows(vectors))


def fit_content_map(content: np.ndarray, factors: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """W minimising ‖content·W − factors‖² + ridge·‖W‖² (content: n × d_c, factors: n × d_f)."""
    d = content.shape[1]
    gram = content.T @ content + ridge * np.eye(d)
    return np.asarray(np.linalg.solve(gram, content.T @ factors), dtype=np.float32)


def predict_factors(content_map: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Predicted factors for rows of content vectors. Not rescaled to unit length: the
    ridge shrinks uncertain predictions towards zero, and that humility is kept (lengths
    above 1 are clipped to 1), so a guessed v_f never outweighs a learned one."""
    predicted = np.atleast_2d(content) @ content_map
    norms = np.linalg.norm(predicted, axis=1, keepdims=True)
    return np.asarray(predicted / np.maximum(norms, 1.0), dtype=np.float32)


MIN_ITEMS_FOR_MAP = 10  # fewer learned items than this: no content → factors map yet


@dataclass(frozen=True)
class Model:
    """One refresh: the learned factors (non-zero ones only) and the content → factors map."""

    learned: dict[str, np.ndarray]
    content_map: np.ndarray | None

    def factors_for(self, item_id: str, content: np.ndarray) -> np.ndarray | None:
        """Learned v_f, else predicted from v_c, else None (no map yet)."""
        learned = self.learned.get(item_id)
        if learned is not None:
            return learned
        if self.content_map is not None:
            return np.asarray(predict_factors(self.content_map, content)[0])
        return None


def learn(
    interactions: Interactions, content: Mapping[str, np.ndarray], dim: int, ridge: float = 1.0
) -> Model:
    """A refresh: SVD factors of the interactions, and the map fitted on the items that have
    both a content vector and learned factors. What the trainer and the eval harness run."""
    matrix, item_ids = interactions.matrix()
    factors = item_factors(matrix, item_ids, dim)
    learned = {
        item_id: vector
        for item_id, vector in zip(factors.item_ids, factors.vectors, strict=True)
        if np.any(vector)
    }
    known = [item_id for item_id in learned if item_id in content]
    if len(known) < MIN_ITEMS_FOR_MAP:
        return Model(learned, None)
    content_map = fit_content_map(
        np.stack([content[i] for i in known]), np.stack([learned[i] for i in known]), ridge
    )
    return Model(learned, content_map)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.where(norms > 1e-9, matrix / np.maximum(norms, 1e-9), 0.0).astype(np.float32)
