"""Retrieval under hard filters: the filtered HNSW search or an exact scan of the matches.

A filter is evaluated over the whole catalog first (core/facets.Facets.mask, numpy), which
also counts the matching items. Then:

- no match: nothing is searched (the reply says why: its ``understood.matching`` is 0);
- at most ``exact_max`` matches (default 2000, SREC_EXACT_SCAN_MAX): an exact scan — the
  vectors of the matching items times the query, top n. It returns every match that fits,
  so a selective filter still fills k, and is exact;
- more: the HNSW search with the filter inside it (hnswlib's filter callback: a node that
  fails it is still walked through but never returned), asking for n candidates.

Why there: a filtered HNSW search has to walk past the nodes that fail the filter, about
n / selectivity of them, so its cost grows as the filter gets more selective (1.3 s for
50 matches of 100k, where it walks the whole graph), while the exact scan costs what the
matches cost (0.4 ms for 50, 2.8 ms for 1k, 14 ms for 2k on a busy core). On 100k random
vectors they cross near 10k matches (bench/understand.py; docs/understand.md has the
table); 2000 keeps the scan cheap and exact and leaves the index the filters it handles
well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from streaming_rec.core.facets import Facets, Mask
from streaming_rec.core.filters import ItemFilter
from streaming_rec.core.index import Hit, VectorIndex, make_hits

EXACT_SCAN_MAX = 2000


def allow_function(
    facets: Facets, mask: Mask | None, excluded: frozenset[str], known: Callable[[str], bool]
) -> Callable[[str], bool]:
    """item_id → allowed: not excluded and, with a mask, set in it (else ``known``)."""
    if mask is None:
        if not excluded:
            return known
        return lambda item_id: item_id not in excluded and known(item_id)
    in_mask = facets.allows(mask)
    return lambda item_id: item_id not in excluded and in_mask(item_id)


def filtered_mask(facets: Facets, flt: ItemFilter) -> tuple[Mask | None, int | None]:
    """(rows passing ``flt``, how many) — (None, None) for a filter that restricts nothing."""
    if not flt:
        return None, None
    mask = facets.mask(flt)
    return mask, int(np.count_nonzero(mask))


def search(
    index: VectorIndex,
    facets: Facets,
    vector: np.ndarray,
    n: int,
    mask: Mask | None,
    matching: int | None,
    allow: Callable[[str], bool],
    exact_max: int = EXACT_SCAN_MAX,
    excluded: frozenset[str] = frozenset(),
    searched: list[Hit] | None = None,
) -> list[Hit]:
    """Up to ``n`` best allowed items for ``vector``: without a hard filter (``mask``
    None), an unfiltered search post-filtered (:func:`post_filtered`, with a margin of
    ``len(excluded)``); with one, exact over the matches when they are few (``matching`` ≤
    ``exact_max``), else the index's filtered search. ``allow`` must refuse exactly the
    ids in ``excluded``, the unknown ones and, with a mask, those outside it
    (:func:`allow_function`): the exact scan checks ``excluded`` and the index instead of
    calling it for every match. ``searched``: the unfiltered search of
    :func:`unfiltered_size` items, made beforehand for the whole batch (``search_many``)."""
    if matching == 0:
        return []
    if mask is None:
        return post_filtered(index, vector, n, allow, len(excluded), searched)
    if matching is None or matching > exact_max:
        return index.search(vector, n, allow)
    ids = facets.ids(mask)
    if excluded:
        ids = [i for i in ids if i not in excluded]
    ids, vectors = index.live_vectors(ids)
    if not ids:
        return []
    scores = vectors @ np.asarray(vector, dtype=np.float32)
    top = np.argsort(-scores, kind="stable")[:n]
    return make_hits(map(ids.__getitem__, top.tolist()), scores[top].tolist())


def unfiltered_size(n: int, margin: int, size: int) -> int | None:
    """How many items :func:`post_filtered` asks an unfiltered search for (n + margin, at
    most the index's ``size``), or None when it searches with the filter instead."""
    return None if margin > n else min(n + max(margin, 0), size)


def post_filtered(
    index: VectorIndex,
    vector: np.ndarray,
    n: int,
    allow: Callable[[str], bool],
    margin: int,
    searched: list[Hit] | None = None,
) -> list[Hit]:
    """The ``n`` best allowed items from an unfiltered search of ``n + margin``, filtered
    after it; the filtered search only when fewer than ``n`` pass and the index holds
    more, or when ``margin`` > ``n`` (a long history: searching n + margin would cost
    more than the filter). Same answer as the filtered search when at most ``margin`` of
    the best fail ``allow``, without its cost: hnswlib calls a Python filter, under the
    GIL, for every node it visits (about ef of them), which the compute thread then
    fights the event loop for. ``searched``: that unfiltered search, already made (it must
    have asked for :func:`unfiltered_size` items)."""
    want = unfiltered_size(n, margin, len(index))
    if want is None:
        return index.search(vector, n, allow)
    if searched is None:
        searched = index.search(vector, want)
    hits = [h for h in searched if allow(h.item_id)]
    if len(hits) >= n or want >= len(index):
        return hits[:n]
    return index.search(vector, n, allow)


def newest(
    facets: Facets, mask: Mask | None, allow: Callable[[str], bool], k: int
) -> list[tuple[str, float]]:
    """The ``k`` most recent allowed items with a time, newest first (score = their time)."""
    rows = facets.mask(ItemFilter(published_after=float("-inf")))
    if mask is not None:
        rows &= mask
    ids = facets.ids(rows)
    times = facets.published_at(ids)
    out: list[tuple[str, float]] = []
    for j in np.argsort(-times, kind="stable").tolist():
        if allow(ids[j]):
            out.append((ids[j], float(times[j])))
            if len(out) == k:
                break
    return out


def recency_boost(hits: Sequence[Hit], facets: Facets, weight: float) -> list[Hit]:
    """``hits`` with ``weight · 2^(-age / h)`` added to each score, where age is how much
    older than the newest hit an item is (s) and h the median of those ages (≥ 1 h): the
    newest gains ``weight``, a hit of median age half of it, an item without a time
    nothing. Ages count from the newest hit, not from now, so that a catalog whose newest
    item is a month old still ranks its newest first. Re-sorted by score."""
    if not hits or weight <= 0:
        return list(hits)
    times = facets.published_at([h.item_id for h in hits])
    known = ~np.isnan(times)
    if not known.any():
        return list(hits)
    age = np.where(known, float(np.nanmax(times)) - np.where(known, times, 0.0), 0.0)
    half_life = max(float(np.median(age[known])), 3600.0)
    boost = np.where(known, weight * np.exp2(-age / half_life), 0.0)
    boosted = [Hit(h.item_id, h.score + float(b)) for h, b in zip(hits, boost, strict=True)]
    return sorted(boosted, key=lambda h: -h.score)
