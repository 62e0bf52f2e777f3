"""What goes into the recommend service and what comes out: a Request (query text, filters,
the user's state), Scored items and an Answer with per-stage timings (ms)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streaming_rec.core.filters import ItemFilter
from streaming_rec.core.ranker import Strategy
from streaming_rec.core.understand.parse import Understood
from streaming_rec.core.user_state import UserState


@dataclass(frozen=True)
class Request:
    request_id: str
    user_id: str
    text: str = ""
    k: int = 10
    categories: frozenset[str] = frozenset()  # lower-cased; an item needs one of them
    exclude: frozenset[str] = frozenset()
    user: UserState | None = None
    queued_ms: float = 0.0
    # the text already encoded elsewhere (an embed-only worker), and the time that took
    vector: np.ndarray | None = None
    embed_ms: float = 0.0
    # the client's other hard filters (attributes, time window, excluded categories): they
    # win over what the parser reads; understand=False turns the parser off
    filter: ItemFilter = field(default_factory=ItemFilter)
    understand: bool = True


@dataclass(frozen=True)
class Scored:
    item_id: str
    score: float
    title: str
    explored: bool = False
    propensity: float = 1.0


@dataclass(frozen=True)
class Answer:
    request_id: str
    user_id: str
    strategy: Strategy
    items: list[Scored]
    index_version: int
    index_size: int
    user_events: int
    user_feedback_ts: float | None
    timings: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)  # the blend this answer used
    learned_pairs: int = 0  # impression pairs the blend has learned from so far
    understood: Understood | None = None  # the parse and the filter applied (None: neither)
    matching: int | None = None  # catalog items passing the filter (None: no filter)
    user_model: str | None = None  # the sequence model's version that made u_f (None: none)
