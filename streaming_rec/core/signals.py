"""The ranking signals: one named table that the ranker, the blend learner, the settings
and the reply's explanation read by name (nothing is coupled by position).

    s(x, u, v) = α⟨x, v_c⟩ + γ⟨u_c, v_c⟩ + β⟨u_f, v_f⟩ + w_p·prior(v)

Each signal's ``name`` is its weight in ``RankingWeights`` and the setting SREC_<NAME>; the
blend learner (core/learner.py) learns one weight per signal from impressions, whose score
parts are the columns of ``SIGNALS``, in this order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    """One term of the score: its weight's name and what it measures."""

    name: str
    term: str
    meaning: str


SIGNALS: tuple[Signal, ...] = (
    Signal("alpha", "⟨x, v_c⟩", "the query text against the item's content"),
    Signal("gamma", "⟨u_c, v_c⟩", "the user's content taste against the item's content"),
    Signal("beta", "⟨u_f, v_f⟩", "the user's collaborative taste against the item's factors"),
    Signal("prior_weight", "prior(v)", "the item's popular-now prior"),
)
NAMES: tuple[str, ...] = tuple(s.name for s in SIGNALS)
COLUMN: dict[str, int] = {name: i for i, name in enumerate(NAMES)}
