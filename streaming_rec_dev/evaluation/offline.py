"""An in-process replica of one worker's model, for tuning on the validation split.

It builds the worker's Recommender with the composition root (streaming_rec.bootstrap),
feeds it the same item texts and the same feedback events the worker would get, and asks
the same "for you" requests — without Kafka, so a setting can be tried in seconds. The
live replay (replay.py) reports the figures; this replica only chooses settings, and
the report compares the two on the test split as a consistency check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from streaming_rec.bootstrap import (
    build_embedder,
    build_recommender,
    ranking_weights,
    update_rule,
)
from streaming_rec.config import Settings
from streaming_rec.core.catalog import ItemMeta, item_text
from streaming_rec.core.embedder import Embedder, encode_items
from streaming_rec.core.factors import Interactions, learn
from streaming_rec.core.popularity import Popularity
from streaming_rec.core.requests import Request
from streaming_rec.core.sequence import Histories, fit
from streaming_rec.core.sequence_blend import HOLDOUT_SHARE
from streaming_rec.core.user_state import UserState
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.evaluation.split import Interaction


class CatalogVectors:
    """The catalog's content vectors, embedded once with the worker's encoder and text."""

    def __init__(self, settings: Settings, movies: Sequence[Movie]) -> None:
        self.embedder: Embedder = build_embedder(settings)
        self.metas = [
            ItemMeta(m.item_id, m.title, tuple(m.genres), {"year": m.year} if m.year else {})
            for m in movies
        ]
        texts = [item_text(m.title, "", m.genres) for m in movies]
        self.vectors = np.asarray(encode_items(self.embedder, texts), dtype=np.float32)


# settings the replica fixes when it is prepared; every other setting acts at query time
PREPARED = (
    "factor_dim",
    "trainer_ridge",
    "recent_items",
    "hnsw_m",
    "hnsw_ef_construction",
    "sequence_model",
    "sequence_lags",
    "sequence_ridge",
)


class OfflineReplica:
    """The worker's model after the replay of ``train``, prepared once.

    Items, user histories and (with ``factor_dim``) the trainer's factors are built at
    construction (``holdout``: the share of the stream the sequence fit holds out to learn
    its mix, as in the trainer; 0: the next-item target alone, the model before the mix);
    ranking weights, half-lives, event weights and the popularity half-life act only when
    a request is answered (the taste is computed at query time), so :meth:`recommend`
    swaps them in per call and a tuning trial costs only the queries.
    """

    def __init__(
        self,
        settings: Settings,
        catalog: CatalogVectors,
        train: Sequence[Interaction],
        holdout: float = HOLDOUT_SHARE,
    ) -> None:
        self.settings = settings
        self.train = train
        self.service = build_recommender(settings, embedder=catalog.embedder)
        service = self.service
        pairs = list(zip(catalog.metas, catalog.vectors, strict=True))
        service.apply_items([(m, v, None) for m, v in pairs])
        self.states: dict[str, UserState] = {}
        for row in train:
            state = self.states.get(row.user_id) or UserState(row.user_id)
            self.states[row.user_id] = service.apply_feedback(state, row.item_id, row.event, row.ts)
        if settings.factor_dim:  # what the trainer publishes after its refresh over `train`
            log = Interactions()
            for row in train:
                log.add(row.user_id, row.item_id)
            content = {m.item_id: v for m, v in pairs}
            model = learn(log, content, settings.factor_dim, settings.trainer_ridge)
            service.apply_items([(m, v, model.factors_for(m.item_id, v)) for m, v in pairs])
            if settings.sequence_model:  # and the sequence model fitted with those factors
                histories = Histories(settings.recent_items)
                for row in train:
                    histories.add(row.user_id, row.item_id, row.event)
                lags, ridge = settings.sequence_lags, settings.sequence_ridge
                fitted = fit(
                    histories, model.learned, lags, ridge=ridge, version="offline", holdout=holdout
                )
                service.use_sequence_model(fitted)
        self._popularity_key: tuple[object, ...] | None = None

    def _configure(self, settings: Settings) -> None:
        differ = [n for n in PREPARED if getattr(settings, n) != getattr(self.settings, n)]
        if differ:
            raise ValueError(f"settings {differ} differ from the prepared replica's")
        service = self.service
        service.weights = ranking_weights(settings)
        service.update_rule = update_rule(settings)
        key = (tuple(sorted(settings.event_weights.items())), settings.popularity_half_life_seconds)
        if key != self._popularity_key:
            service.popularity = Popularity(settings.popularity_half_life_seconds)
            service.observe_popularity((r.item_id, r.event, r.ts) for r in self.train)
            self._popularity_key = key

    def recommend(
        self,
        settings: Settings,
        users: Sequence[str],
        k: int = 10,
        user_prefix: str = "",
        exclude: Mapping[str, frozenset[str]] | None = None,
    ) -> dict[str, list[str]]:
        """One empty ("for you") query per user under ``settings``: {user: item ids}.

        With ``user_prefix`` the request carries no user state (the "no user vector" pass)
        and ``exclude`` gives each user's items to leave out, as the live pass sends them.
        """
        self._configure(settings)
        requests = [
            Request(
                request_id=user,
                user_id=user_prefix + user,
                k=k,
                user=None if user_prefix else self.states.get(user),
                exclude=(exclude or {}).get(user, frozenset()),
            )
            for user in users
        ]
        out: dict[str, list[str]] = {}
        for start in range(0, len(requests), 64):
            for answer in self.service.recommend(requests[start : start + 64]):
                out[answer.request_id] = [s.item_id for s in answer.items]
        return out


def recommend_offline(
    settings: Settings,
    catalog: CatalogVectors,
    train: Sequence[Interaction],
    users: Sequence[str],
    k: int = 10,
    user_prefix: str = "",
    exclude: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, list[str]]:
    """Replay ``train`` into a fresh replica, then ask one empty query per user."""
    return OfflineReplica(settings, catalog, train).recommend(
        settings, users, k, user_prefix, exclude
    )
