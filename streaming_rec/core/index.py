"""Vector index port and the exact (numpy) index; the approximate one is core/hnsw.py.

Vectors are float32, L2-normalised by the caller; the score is the inner product.
Neither index is thread-safe: callers serialise access (the service runs all index
work on one executor thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from streaming_rec.errors import IndexError_

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
Allow = Callable[[str], bool]


class Hit(NamedTuple):
    """One search result; ``score`` is the inner product with the query. A named tuple (not a
    frozen dataclass): a search makes hundreds per query on the compute thread, a tuple is
    built 1.5x faster, and a list of hits is already the (item_id, score) pairs the ranker
    takes."""

    item_id: str
    score: float


_new_tuple = tuple.__new__


def make_hits(item_ids: Iterable[str], scores: Iterable[float]) -> list[Hit]:
    """Hits from parallel item ids and scores (Python floats), built in C: ``Hit(i, s)``
    runs the named tuple's Python ``__new__`` once per hit, which under load was the
    compute thread's single largest cost (py-spy, bench/workers.py at 200 q/s)."""
    return list(map(_new_tuple, repeat(Hit), zip(item_ids, scores, strict=True)))


@runtime_checkable
class VectorIndex(Protocol):
    """Port: a mutable set of (item_id, vector) searched by inner product. Not thread-safe."""

    dim: int

    @property
    def version(self) -> int:
        """Grows by one per upserted or deleted item."""

    def upsert(self, item_ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Add or replace ``(n, dim)`` vectors; within one call the last duplicate wins."""

    def delete(self, item_ids: Iterable[str]) -> int:
        """Remove items; return how many were live (unknown ids are ignored)."""

    def search(self, query: npt.ArrayLike, k: int, allow: Allow | None = None) -> list[Hit]:
        """Up to ``k`` live items passing ``allow``, best first."""

    def search_many(self, queries: npt.ArrayLike, k: int) -> list[list[Hit]]:
        """``search(row, k)`` for each row of the ``(m, dim)`` queries, unfiltered, in one
        call (the compute thread gives the GIL up once for the batch)."""

    def vectors(self, item_ids: Sequence[str]) -> FloatArray:
        """``(n, dim)`` vectors of live items; an unknown id raises IndexError_."""

    def live_vectors(self, item_ids: Sequence[str]) -> tuple[list[str], FloatArray]:
        """The live ids among ``item_ids`` (their order kept, unknown ones dropped) and
        their ``(len(kept), dim)`` vectors, in one pass: the exact scan's lookup."""

    def __contains__(self, item_id: object) -> bool: ...

    def __len__(self) -> int: ...


def check_dim(dim: int) -> int:
    if not isinstance(dim, int) or dim < 1:
        raise IndexError_(f"dim must be a positive int, got {dim!r}")
    return dim


def as_matrix(vectors: npt.ArrayLike, n: int, dim: int) -> FloatArray:
    if n == 0 and np.size(vectors) == 0:
        return np.empty((0, dim), dtype=np.float32)
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise IndexError_(f"vectors are not numeric: {exc}") from exc
    if arr.ndim == 1 and n == 1:
        arr = arr.reshape(1, -1)
    if arr.shape != (n, dim):
        raise IndexError_(f"expected vectors of shape ({n}, {dim}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise IndexError_("vectors contain NaN or infinity")
    return np.ascontiguousarray(arr)


def as_queries(queries: npt.ArrayLike, dim: int, k: int) -> FloatArray:
    """``(m, dim)`` float32 rows; IndexError_ for a bad shape, a non-finite value or k < 0."""
    if k < 0:
        raise IndexError_(f"k must be >= 0, got {k}")
    shape = np.shape(queries)
    if len(shape) != 2:
        raise IndexError_(f"expected queries of shape (m, {dim}), got {shape}")
    return as_matrix(queries, shape[0], dim)


def as_query(query: npt.ArrayLike, dim: int, k: int) -> FloatArray:
    if k < 0:
        raise IndexError_(f"k must be >= 0, got {k}")
    return as_matrix(query, 1, dim).reshape(dim)


def id_list(item_ids: Iterable[str]) -> list[str]:
    if isinstance(item_ids, str):
        raise IndexError_(f"expected a sequence of item ids, got the str {item_ids!r}")
    return list(item_ids)


def live_rows(row_of: Mapping[str, int], item_ids: Sequence[str]) -> tuple[list[str], list[int]]:
    """(the ids of ``item_ids`` in ``row_of``, their rows), in order, one lookup each.
    Raises IndexError_ for a str (a sequence of one-letter ids by accident)."""
    ids = id_list(item_ids)
    rows = list(map(row_of.get, ids))
    if None not in rows:  # the usual case: every id is live
        return ids, rows  # type: ignore[return-value]
    kept = [(i, r) for i, r in zip(ids, rows, strict=True) if r is not None]
    return [i for i, _ in kept], [r for _, r in kept]


def prepare_batch(
    item_ids: Sequence[str], vectors: npt.ArrayLike, dim: int
) -> tuple[list[str], FloatArray]:
    """Validate an upsert; keep the last occurrence of each id."""
    ids = id_list(item_ids)
    arr = as_matrix(vectors, len(ids), dim)
    if len(set(ids)) == len(ids):
        return ids, arr
    keep = sorted({item_id: i for i, item_id in enumerate(ids)}.values())
    return [ids[i] for i in keep], arr[keep]


class ExactIndex:
    """Brute-force numpy index: the exact twin of HnswIndex, for tests and tiny catalogs."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = check_dim(dim)
        self._mat: FloatArray = np.empty((max(1, capacity), dim), dtype=np.float32)
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._version = 0

    @property
    def version(self) -> int:
        """Grows by one per upserted or deleted item."""
        return self._version

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def upsert(self, item_ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Add or replace vectors."""
        ids, arr = prepare_batch(item_ids, vectors, self.dim)
        needed = len(self._ids) + sum(1 for i in ids if i not in self._row)
        if needed > self._mat.shape[0]:
            grown = np.empty((max(needed, 2 * self._mat.shape[0]), self.dim), dtype=np.float32)
            grown[: len(self._ids)] = self._mat[: len(self._ids)]
            self._mat = grown
        for item_id, vec in zip(ids, arr, strict=True):
            row = self._row.get(item_id)
            if row is None:
                row = self._row[item_id] = len(self._ids)
                self._ids.append(item_id)
            self._mat[row] = vec
        self._version += len(ids)

    def delete(self, item_ids: Iterable[str]) -> int:
        """Swap-remove each live item; return how many were live."""
        removed = 0
        for item_id in id_list(item_ids):
            row = self._row.pop(item_id, None)
            if row is None:
                continue
            last = len(self._ids) - 1
            if row != last:
                moved = self._ids[last]
                self._ids[row], self._row[moved] = moved, row
                self._mat[row] = self._mat[last]
            self._ids.pop()
            removed += 1
        self._version += removed
        return removed

    def search(self, query: npt.ArrayLike, k: int, allow: Allow | None = None) -> list[Hit]:
        """Exact top-k by inner product."""
        q = as_query(query, self.dim, k)
        n = len(self._ids)
        if n == 0 or k == 0:
            return []
        scores = self._mat[:n] @ q
        if allow is None:
            kk = min(k, n)
            top = np.argpartition(-scores, kk - 1)[:kk] if kk < n else np.arange(n)
            order: Iterable[int] = top[np.argsort(-scores[top], kind="stable")].tolist()
        else:
            order = np.argsort(-scores, kind="stable").tolist()
        hits: list[Hit] = []
        for row in order:
            item_id = self._ids[row]
            if allow is None or allow(item_id):
                hits.append(Hit(item_id, float(scores[row])))
                if len(hits) == k:
                    break
        return hits

    def search_many(self, queries: npt.ArrayLike, k: int) -> list[list[Hit]]:
        """``search(row, k)`` for each row of ``(m, dim)`` queries."""
        return [self.search(q, k) for q in as_queries(queries, self.dim, k)]

    def vectors(self, item_ids: Sequence[str]) -> FloatArray:
        """Copies of the vectors of live items."""
        kept, rows = live_rows(self._row, item_ids)
        if len(kept) != len(item_ids):
            missing = [i for i in item_ids if i not in self._row]
            raise IndexError_(f"not in the index: {missing[:5]!r}")
        return self._mat[rows].reshape(len(kept), self.dim)

    def live_vectors(self, item_ids: Sequence[str]) -> tuple[list[str], FloatArray]:
        """The live ids among ``item_ids`` (order kept) and copies of their vectors."""
        kept, rows = live_rows(self._row, item_ids)
        return kept, self._mat[rows].reshape(len(kept), self.dim)
