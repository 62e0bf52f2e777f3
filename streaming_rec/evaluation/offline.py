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

from streaming_rec.bootstrap import build_embedder, build_recommender
from streaming_rec.config import Settings
from streaming_rec.core.catalog import ItemMeta, item_text
from streaming_rec.core.embedder import Embedder
from streaming_rec.core.factors import Interactions, learn
from streaming_rec.core.service import Request
from streaming_rec.core.user_state import UserState
from streaming_rec.datasets.movielens import Movie
from streaming_rec.evaluation.split import Interaction


class CatalogVectors:
    """The catalog's content vectors, embedded once with the worker's encoder and text."""

    def __init__(self, settings: Settings, movies: Sequence[Movie]) -> None:
        self.embedder: Embedder = build_embedder(settings)
        self.metas = [
            ItemMeta(m.item_id, m.title, tuple(m.genres), {"year": m.year} if m.year else {})
            for m in movies
        ]
        texts = [item_text(m.title, "", m.genres) for m in movies]
        self.vectors = np.asarray(self.embedder.encode(texts), dtype=np.float32)


def recommend_offline(
    settings: Settings,
    catalog: CatalogVectors,
    train: Sequence[Interaction],
    users: Sequence[str],
    k: int = 10,
    user_prefix: str = "",
    exclude: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, list[str]]:
    """Replay ``train`` into a fresh Recommender, then ask one empty query per user.

    With ``user_prefix`` the request carries no user state (the "no user vector" pass) and
    ``exclude`` gives each user's items to leave out, as the live pass sends them.
    """
    service = build_recommender(settings, embedder=catalog.embedder)
    service.apply_items([(m, v, None) for m, v in zip(catalog.metas, catalog.vectors, strict=True)])
    states: dict[str, UserState] = {}
    for row in train:
        state = states.get(row.user_id) or UserState(row.user_id)
        states[row.user_id] = service.apply_feedback(state, row.item_id, row.event, row.ts)
    service.observe_popularity((row.item_id, row.event, row.ts) for row in train)
    if settings.factor_dim:  # what the trainer publishes after its refresh over `train`
        log = Interactions()
        for row in train:
            log.add(row.user_id, row.item_id)
        content = dict(zip((m.item_id for m in catalog.metas), catalog.vectors, strict=True))
        model = learn(log, content, settings.factor_dim, settings.trainer_ridge)
        service.apply_items(
            [
                (m, v, model.factors_for(m.item_id, v))
                for m, v in zip(catalog.metas, catalog.vectors, strict=True)
            ]
        )
    requests = [
        Request(
            request_id=user,
            user_id=user_prefix + user,
            k=k,
            user=None if user_prefix else states.get(user),
            exclude=(exclude or {}).get(user, frozenset()),
        )
        for user in users
    ]
    out: dict[str, list[str]] = {}
    for start in range(0, len(requests), 64):
        for answer in service.recommend(requests[start : start + 64]):
            out[answer.request_id] = [s.item_id for s in answer.items]
    return out
