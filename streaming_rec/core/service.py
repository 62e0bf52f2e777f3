"""The recommend service: the one object the edge talks to.

It owns the encoder, the index, the catalog and the popularity counts, and turns a batch
of requests (query + the user's state) into answers with per-stage timings. Index vectors
are [v_c ; v_f]: the content embedding and ``factor_dim`` collaborative factors (zeros
until the trainer has learned them). It is not thread-safe: the worker calls it from a
single compute thread, so index updates and searches never race (the Faust agents only
decode, look up state and send).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from random import Random

import numpy as np

from streaming_rec.core import retrieve
from streaming_rec.core.catalog import Catalog, ItemMeta
from streaming_rec.core.embedder import Embedder, backend_name, encode_items
from streaming_rec.core.index import Hit, VectorIndex
from streaming_rec.core.learner import BlendLearner, Impression, Impressions
from streaming_rec.core.popularity import Popularity
from streaming_rec.core.ranker import (
    Pool,
    RankingWeights,
    Strategy,
    explore,
    fuse,
    mix_profiles,
    rerank,
)
from streaming_rec.core.requests import Answer, Request, Scored
from streaming_rec.core.sequence import SequenceModel, history_inputs
from streaming_rec.core.signals import COLUMN
from streaming_rec.core.signals import NAMES as PARTS
from streaming_rec.core.understand.parse import Understander, Understood
from streaming_rec.core.user_state import UpdateRule, UserState, unit


@dataclass(frozen=True)
class _Plan:
    """One request of a batch, ready to search: its query vector x ((d_c,) float32 or
    None), the user's unit tastes u_c and u_f, the fused search vector and the items the
    answer must not show (:func:`excluded`)."""

    request: Request
    query: np.ndarray | None
    embed_ms: float
    understood: Understood
    skip: frozenset[str]
    taste_c: np.ndarray | None
    taste_f: np.ndarray | None
    sequence_f: np.ndarray | None
    vector: np.ndarray | None
    strategy: Strategy


def excluded(request: Request, understood: Understood) -> frozenset[str]:
    """The items an answer to ``request`` must not show: the request's exclusions, the
    user's seen items and the parsed filter's excluded ids."""
    seen = request.user.seen() if request.user is not None else frozenset()
    return request.exclude | seen | understood.filter.exclude_ids


class Recommender:
    """Embedding, retrieval and ranking for batches of requests; item and feedback updates."""

    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        weights: RankingWeights,
        update_rule: UpdateRule,
        popularity: Popularity,
        factor_dim: int = 0,
        learn_rate: float = 0.0,
        explore_share: float = 0.0,
        impressions_kept: int = 100_000,
        understand: bool = True,
        exact_scan_max: int = retrieve.EXACT_SCAN_MAX,
        recency_weight: float = 0.3,
    ) -> None:
        if index.dim != embedder.dim + factor_dim:
            raise ValueError(
                f"index dim {index.dim} != encoder dim {embedder.dim} + factor dim {factor_dim}"
            )
        self.embedder = embedder
        self.content_dim = embedder.dim
        self.factor_dim = factor_dim
        self.index = index
        self.weights = weights
        self.update_rule = update_rule
        self.popularity = popularity
        self.catalog = Catalog()
        self.learner = BlendLearner(weights, learn_rate)
        self.explore_share = explore_share
        self.impressions = Impressions(impressions_kept)
        self.understander = Understander() if understand else None
        self.exact_scan_max = exact_scan_max
        self.recency_weight = recency_weight
        self.sequence: SequenceModel | None = None  # u_f from the history's order (None: off)

    # --- what the edge may ask ---------------------------------------------------------------
    @property
    def model_version(self) -> str:
        """The encoder's id, recorded with every vector it makes (item vectors, snapshots,
        embedded queries): vectors of different ids are never compared."""
        return self.embedder.name

    @property
    def backend(self) -> str:
        """The encoder's implementation (onnx-fp32, torch-cuda-fp16, ...), named in replies
        beside ``model_version``: backends that share a model id make the same vectors."""
        return backend_name(self.embedder)

    @property
    def index_size(self) -> int:
        """Live items in the index."""
        return len(self.index)

    @property
    def index_version(self) -> int:
        """Vector updates applied to the index so far."""
        return self.index.version

    def has_item(self, item_id: str) -> bool:
        """Whether ``item_id`` is indexed (searchable) now."""
        return item_id in self.index

    def blend(self) -> dict[str, float]:
        """The blend in use, by part name (alpha, gamma, beta, prior_weight), plus
        ``learned_pairs``: what :meth:`restore_blend` takes back."""
        return {**self.learner.as_dict(), "learned_pairs": float(self.learner.updates)}

    def restore_blend(self, saved: dict[str, float]) -> None:
        """Go on from a blend saved by :meth:`blend`. Raises KeyError, TypeError or
        ValueError when ``saved`` lacks a part or holds a non-number."""
        self.learner.restore(saved)
        self.weights = self.learner.weights

    # --- items ------------------------------------------------------------------------------
    def embed_items(self, texts: Sequence[str]) -> np.ndarray:
        """Item texts → (n, dim) float32 unit vectors (an asymmetric encoder such as E5
        embeds them as passages, queries as queries)."""
        return encode_items(self.embedder, texts)

    def apply_items(
        self,
        upserts: Sequence[tuple[ItemMeta, np.ndarray, np.ndarray | None]],
        deletes: Iterable[str] = (),
    ) -> None:
        """Make items searchable (add or replace) from (meta, v_c, v_f or None); forget
        deleted items. A missing v_f counts as zeros (content-only until learned)."""
        deletes = list(deletes)
        if deletes:
            self.index.delete(deletes)
            self.catalog.remove(deletes)
        if upserts:
            for meta, _, _ in upserts:
                self.catalog.put(meta)
            self.index.upsert(
                [meta.item_id for meta, _, _ in upserts],
                np.stack([self._item_vector(content, f) for _, content, f in upserts]),
            )

    def restore_items(self, index: VectorIndex, catalog: Catalog) -> None:
        """Take the items of a snapshot (or empty ones, to rebuild)."""
        if index.dim != self.index.dim:
            raise ValueError(f"index dim {index.dim} != {self.index.dim}")
        self.index = index
        self.catalog = catalog

    def _item_vector(self, content: np.ndarray, factors: np.ndarray | None) -> np.ndarray:
        if not self.factor_dim:
            return content
        if factors is None or factors.shape[0] != self.factor_dim:
            factors = np.zeros(self.factor_dim, dtype=np.float32)
        return np.concatenate([content, factors])

    def item_parts(self, item_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The ids of ``item_ids`` that are indexed (deduplicated) and their [v_c ; v_f]."""
        present = [i for i in dict.fromkeys(item_ids) if i in self.index]
        if not present:
            return [], np.zeros((0, self.index.dim), dtype=np.float32)
        return present, self.index.vectors(present)

    # --- feedback ---------------------------------------------------------------------------
    def apply_feedback(self, state: UserState, item_id: str, event: str, ts: float) -> UserState:
        """The user's next state after ``event`` on ``item_id`` (pure: safe on any thread)."""
        return self.update_rule.apply(state, item_id, event, ts)

    def forget_user(self, user_id: str) -> int:
        """Drop what this worker keeps of ``user_id`` beside their state: the impressions
        (answers shown to them, kept to learn the blend from clicks). Returns how many.
        Popular-now keeps their events as anonymous per-item counts that decay."""
        return self.impressions.drop_user(user_id)

    def observe_popularity(self, events: Iterable[tuple[str, str, float]]) -> None:
        """Count (item_id, event, ts) towards popular-now (positive events only)."""
        weights = self.update_rule.weights
        for item_id, event, ts in events:
            self.popularity.observe(item_id, weights[event], ts)

    def use_sequence_model(self, model: SequenceModel | None) -> None:
        """Make u_f with ``model`` (core/sequence.py) from the next answer on; None: the
        decayed average again. Raises ValueError when its dimension is not factor_dim."""
        if model is not None and model.dim != self.factor_dim:
            raise ValueError(f"sequence model dim {model.dim} != factor dim {self.factor_dim}")
        self.sequence = model

    def _sequence_tastes(self, users: Sequence[UserState | None]) -> list[np.ndarray | None]:
        """u_f of each user from the sequence model, one batched product for the batch
        ((d,) float32 unit vectors; None for a user with no indexed history, or for
        everyone when no sequence model is in use)."""
        model = self.sequence
        if model is None:
            return [None] * len(users)
        inputs = [
            history_inputs(u.history, self.item_parts, self.content_dim) if u else None
            for u in users
        ]
        present = [x for x in inputs if x is not None]
        encoded = iter(model.encode(present))
        return [unit(next(encoded)) if x is not None else None for x in inputs]

    def learn(self, labels: Iterable[tuple[str, str]]) -> int:
        """Learn the blend from positive feedback that names its request: (request_id,
        item_id) pairs. Returns the impression pairs used; the next answers use the
        new weights."""
        engaged: dict[str, list[str]] = {}
        for request_id, item_id in labels:
            engaged.setdefault(request_id, []).append(item_id)
        pairs = 0
        for request_id, items in engaged.items():
            impression = self.impressions.get(request_id)
            if impression is not None:
                pairs += self.learner.learn(impression, items)
        if pairs:
            self.weights = self.learner.weights
        return pairs

    # --- queries ----------------------------------------------------------------------------
    def recommend(self, requests: Sequence[Request]) -> list[Answer]:
        """Answers in request order. Texts are encoded in one batch, except those that
        come with their ``vector`` (encoded by an embed-only worker)."""
        started = time.perf_counter()
        parsed = [self.understand(r) for r in requests]
        texts = [u.text for r, u in zip(requests, parsed, strict=True) if r.vector is None]
        texts = [t for t in texts if t.strip()]
        encoded = iter(self.embedder.encode(texts)) if texts else iter(())
        embed_ms = (time.perf_counter() - started) * 1000.0
        weights = self.weights  # one blend for the whole batch
        users = [r.user for r in requests]
        user_f = self._sequence_tastes(users)
        tastes = self.update_rule.tastes(users, self.item_parts)
        plans = []
        for request, understood, sequence_f, taste in zip(
            requests, parsed, user_f, tastes, strict=True
        ):
            query: np.ndarray | None
            if request.vector is not None:
                query, ms = request.vector, request.embed_ms
            else:
                query = next(encoded) if understood.text.strip() else None
                ms = embed_ms
            plans.append(self._plan(request, query, ms, weights, understood, sequence_f, taste))
        searched = self._search_unfiltered(plans, weights)
        return [self._answer(plan, weights, searched.get(i)) for i, plan in enumerate(plans)]

    def understand(self, request: Request) -> Understood:
        """The request's parse (core/understand) merged with its explicit filters, which
        win; the text as sent and the client's filters alone when parsing is off."""
        client = request.filter
        if request.categories:
            client = replace(client, categories=(request.categories, *client.categories))
        if self.understander is None or not request.understand or not request.text.strip():
            return Understood(request.text, client)
        vocab = self.catalog.facets.vocabulary()
        parsed = self.understander.understand(request.text, vocab, time.time())
        return replace(parsed, filter=parsed.filter.overridden_by(client))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """The query vectors of ``texts`` (for an embed-only worker)."""
        return self.embedder.encode(texts)

    def _plan(
        self,
        request: Request,
        query: np.ndarray | None,
        embed_ms: float,
        weights: RankingWeights,
        understood: Understood,
        sequence_f: np.ndarray | None,
        taste: np.ndarray | None,
    ) -> _Plan:
        """What one answer searches with: ``sequence_f`` is the user's u_f from the sequence
        model (else the decayed average's factor part), ``taste`` the user's decayed sum
        [u_c ; u_f] (UpdateRule.tastes, made for the whole batch)."""
        taste_c = unit(taste[: self.content_dim]) if taste is not None else None
        taste_f = unit(taste[self.content_dim :]) if taste is not None and self.factor_dim else None
        if sequence_f is not None:
            taste_f = mix_profiles(sequence_f, taste_f, weights.sequence_share)
        vector, strategy = fuse(query, taste_c, taste_f, weights, self.content_dim, self.factor_dim)
        skip = excluded(request, understood)
        return _Plan(
            request,
            query,
            embed_ms,
            understood,
            skip,
            taste_c,
            taste_f,
            sequence_f,
            vector,
            strategy,
        )

    def _search_unfiltered(
        self, plans: Sequence[_Plan], weights: RankingWeights
    ) -> dict[int, list[Hit]]:
        """The unfiltered searches that :func:`retrieve.post_filtered` would make one by one
        for the batch's answers without a hard filter, made with one index call per size:
        the compute thread then gives the GIL up (and waits to take it back while the event
        loop runs, up to Python's switch interval) once per size instead of once per query.
        Each row is searched exactly as alone. Returns plan index → hits; a size that only
        one answer asks for is left to that answer's own search."""
        sizes: dict[int, list[int]] = {}
        for i, plan in enumerate(plans):
            if plan.vector is None or plan.understood.filter:
                continue
            margin = len(plan.skip)
            n = max(weights.candidates, plan.request.k)
            want = retrieve.unfiltered_size(n, margin, len(self.index))
            if want:
                sizes.setdefault(want, []).append(i)
        out: dict[int, list[Hit]] = {}
        for want, rows in sizes.items():
            if len(rows) < 2:
                continue
            queries = np.stack([plans[i].vector for i in rows])  # type: ignore[misc]
            out.update(zip(rows, self.index.search_many(queries, want), strict=True))
        return out

    def _answer(
        self, plan: _Plan, weights: RankingWeights, searched: list[Hit] | None = None
    ) -> Answer:
        """One answer for ``plan``; ``searched``: its unfiltered search, made for the batch."""
        request, query, understood = plan.request, plan.query, plan.understood
        taste_c, taste_f, sequence_f = plan.taste_c, plan.taste_f, plan.sequence_f
        vector, strategy, embed_ms = plan.vector, plan.strategy, plan.embed_ms
        user = request.user
        t0 = time.perf_counter()
        ranked, pool, t1, matching = self._rank(
            request, vector, weights, understood, plan.skip, searched
        )
        # seeded by the request: a replayed request shows the same slots
        slots = explore(ranked, pool, self.explore_share, Random(request.request_id))
        if self.learner.rate > 0:
            self.impressions.put(
                request.request_id,
                Impression(
                    tuple(s.item_id for s in slots),
                    self._score_parts([s.item_id for s in slots], query, taste_c, taste_f),
                    request.user_id,
                ),
            )
        t2 = time.perf_counter()
        items = []
        for slot in slots:
            meta = self.catalog.get(slot.item_id)
            title = meta.title if meta else ""
            items.append(Scored(slot.item_id, slot.score, title, slot.explored, slot.propensity))
        return Answer(
            request_id=request.request_id,
            user_id=request.user_id,
            strategy=strategy,
            items=items,
            index_version=self.index.version,
            index_size=len(self.index),
            user_events=user.events if user else 0,
            user_feedback_ts=user.feedback_ts if user else None,
            timings={
                "queue_ms": request.queued_ms,
                "embed_ms": embed_ms if query is not None else 0.0,
                "search_ms": (t1 - t0) * 1000.0,
                "rank_ms": (t2 - t1) * 1000.0,
            },
            weights={p: round(getattr(weights, p), 4) for p in PARTS},
            learned_pairs=self.learner.updates,
            understood=understood if understood.facets or understood.filter else None,
            matching=matching,
            user_model=self.sequence.version if sequence_f is not None and self.sequence else None,
        )

    def _rank(
        self,
        request: Request,
        vector: np.ndarray | None,
        weights: RankingWeights,
        understood: Understood,
        skip: frozenset[str],
        searched: list[Hit] | None = None,
    ) -> tuple[list[tuple[str, float]], Pool, float, int | None]:
        """The top (item_id, score) pairs for ``request``, the exploration pool, the
        perf_counter time at which retrieval ended (ranking follows it) and how many items
        pass the filter (None: no filter): popular-now (or the newest, for a recency intent)
        when there is nothing to search with, else the filtered candidates
        (core/retrieve.py) reranked, with the recency prior when the query asks for it.
        ``skip``: the items not to show (:func:`excluded`)."""
        facets = self.catalog.facets
        mask, matching = retrieve.filtered_mask(facets, understood.filter)
        allow = retrieve.allow_function(facets, mask, skip, self.catalog.has)
        if vector is None and understood.recency:
            ranked = retrieve.newest(facets, mask, allow, request.k)
            return ranked, (), time.perf_counter(), matching
        if vector is None:
            ranked = self.popularity.top(request.k, allow)
            if len(ranked) < request.k:
                ranked += self._fill(request.k - len(ranked), allow, {i for i, _ in ranked})
            return ranked, (), time.perf_counter(), matching
        n = max(weights.candidates, request.k)
        hits = retrieve.search(
            self.index,
            facets,
            vector,
            n,
            mask,
            matching,
            allow,
            self.exact_scan_max,
            skip,
            searched,
        )
        if understood.recency:
            hits = retrieve.recency_boost(hits, facets, self.recency_weight)
        retrieved_at = time.perf_counter()
        ids = [h.item_id for h in hits]
        vectors = self.index.vectors(ids) if weights.mmr_lambda < 1.0 and ids else None
        ranked = rerank(hits, vectors, self.popularity.priors, weights, request.k)
        shown = {i for i, _ in ranked}
        return ranked, partial(self._uncertain, hits, shown), retrieved_at, matching

    def _uncertain(self, hits: Sequence[Hit], shown: set[str]) -> list[tuple[str, float]]:
        """Exploration candidates: the retrieved items not shown, the less engaged half
        (by popular-now), i.e. the fresh and the rarely seen."""
        rest = [(h.item_id, h.score) for h in hits if h.item_id not in shown]
        if len(rest) <= 1:
            return rest
        priors = self.popularity.priors([i for i, _ in rest])
        cut = float(np.median(priors))
        return [r for r, p in zip(rest, priors, strict=True) if p <= cut]

    def _score_parts(
        self,
        item_ids: Sequence[str],
        query: np.ndarray | None,
        taste_c: np.ndarray | None,
        taste_f: np.ndarray | None,
    ) -> np.ndarray:
        """Per shown item, one column per ranking signal (core/signals.py): the parts of
        its score that the blend learner trades off (core/learner.py)."""
        parts = np.zeros((len(item_ids), len(PARTS)), dtype=np.float64)
        parts[:, COLUMN["prior_weight"]] = self.popularity.priors(item_ids)
        present, vectors = self.item_parts(item_ids)
        if not present:
            return parts
        rows = [item_ids.index(i) for i in present]
        content, factors = vectors[:, : self.content_dim], vectors[:, self.content_dim :]
        if query is not None:
            parts[rows, COLUMN["alpha"]] = content @ query
        if taste_c is not None:
            parts[rows, COLUMN["gamma"]] = content @ taste_c
        if taste_f is not None and self.factor_dim:
            parts[rows, COLUMN["beta"]] = factors @ taste_f
        return parts

    def _fill(
        self, n: int, allow: Callable[[str], bool], taken: set[str]
    ) -> list[tuple[str, float]]:
        """Cold start with no popularity yet: any allowed items, in catalog order."""
        out: list[tuple[str, float]] = []
        for item_id in self.catalog.ids():
            if item_id not in taken and allow(item_id):
                out.append((item_id, 0.0))
                if len(out) == n:
                    break
        return out
