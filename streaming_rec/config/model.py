"""Settings sections of the model: the index, ranking, user state, the trainer."""

from __future__ import annotations

from pydantic import (
    Field,
)
from pydantic_settings import BaseSettings

from streaming_rec.config.base import CONFIG, EVENTS


class IndexSettings(BaseSettings):
    """The HNSW index."""

    model_config = CONFIG

    # --- Index ---------------------------------------------------------------------------
    hnsw_m: int = Field(16, ge=4, le=128, description="HNSW graph degree M.")
    hnsw_ef_construction: int = Field(200, ge=8, le=2000, description="HNSW build beam.")
    hnsw_ef_search: int = Field(64, ge=8, le=4000, description="HNSW search beam.")
    hnsw_capacity: int = Field(10_000, ge=16, description="Initial index capacity (grows).")
    hnsw_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Threads that add a batch of vectors to the index (0: one per core).",
    )


class RankingSettings(BaseSettings):
    """Ranking: the blend of the signals (core/signals.py), candidates, deadlines, learning."""

    model_config = CONFIG

    # --- Ranking (the model s = α⟨x,v⟩ + γ⟨u,v⟩ + prior) -----------------------------------
    alpha: float = Field(1.0, ge=0, description="Weight of the query text.")
    gamma: float = Field(0.3, ge=0, description="Weight of the user's content taste u_c.")
    beta: float = Field(1.0, ge=0, description="Weight of the user's collaborative taste u_f.")
    factor_dim: int = Field(
        64, ge=0, le=1024, description="Collaborative factors per item (0: content only)."
    )
    prior_weight: float = Field(0.05, ge=0, description="Weight of the popularity prior.")
    mmr_lambda: float = Field(
        1.0, ge=0, le=1, description="MMR relevance share; 1 turns diversification off."
    )
    query_deadline_ms: int = Field(
        0,
        ge=0,
        le=600_000,
        description="Queries older than this get an 'expired' reply (0: never; "
        "a query's own deadline_ms wins).",
    )
    candidates: int = Field(200, ge=1, le=5000, description="Candidates retrieved (M ≫ k).")
    sequence_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description="With a sequence model (SREC_SEQUENCE_MODEL): its share of u_f; the "
        "rest is the decayed average of the user's item factors, the long-term profile "
        "(1: the sequence model alone).",
    )
    understand: bool = Field(
        True,
        description="Read queries for hard filters (categories, prices and other attribute "
        "ranges, booleans, decades, negations, recency) from the catalog's own vocabulary "
        "(docs/understand.md); a query's understand=false turns it off for that query.",
    )
    exact_scan_max: int = Field(
        2000,
        ge=0,
        le=1_000_000,
        description="A filter matching at most this many items is answered by an exact scan "
        "of them instead of the filtered HNSW search (docs/understand.md).",
    )
    recency_weight: float = Field(
        0.3,
        ge=0,
        le=10,
        description="Score added to the newest candidates when a query asks for recent "
        "items ('latest', '最新'); halves every median candidate age.",
    )
    learn_rate: float = Field(
        0.05,
        ge=0,
        le=10,
        description="Step size of the online blend learner (α, γ, β, prior) from clicks "
        "on shown items (0: fixed weights).",
    )
    explore_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Chance that a slot (from the 4th on) shows an uncertain candidate "
        "instead; its propensity is in the reply.",
    )
    impressions_kept: int = Field(
        100_000, ge=0, description="Recent answers kept per worker to learn from clicks."
    )


class UserStateSettings(BaseSettings):
    """User state: the taste decay, event weights, popular-now."""

    model_config = CONFIG

    # --- User state ----------------------------------------------------------------------
    half_life_events: float = Field(
        5.0, gt=0, description="A user's taste forgets half of an event after this many events."
    )
    half_life_seconds: float = Field(
        7 * 86400.0, gt=0, description="... and half of it after this many seconds."
    )
    weight_click: float = Field(1.0, description="Event weight of a click.")
    weight_add_to_cart: float = Field(2.0, description="Event weight of an add-to-cart.")
    weight_purchase: float = Field(3.0, description="Event weight of a purchase.")
    weight_skip: float = Field(-0.3, description="Event weight of a skip (negative pushes away).")
    weight_dislike: float = Field(-1.0, description="Event weight of a dislike.")
    recent_items: int = Field(
        200,
        ge=1,
        le=10_000,
        description="Events kept per user (their items are not recommended back).",
    )
    popularity_half_life_seconds: float = Field(
        3 * 86400.0, gt=0, description="Half-life of the popular-now counts."
    )

    @property
    def event_weights(self) -> dict[str, float]:
        return {event: float(getattr(self, f"weight_{event}")) for event in EVENTS}


class TrainerSettings(BaseSettings):
    """The trainer of the collaborative factors and of the sequence model."""

    model_config = CONFIG

    # --- Trainer (collaborative factors) ------------------------------------------------
    trainer_interval_s: float = Field(
        60.0, gt=0, description="Least time between two refreshes of the item factors (s)."
    )
    trainer_check_s: float = Field(
        1.0, gt=0, description="How often the trainer looks for new feedback (s)."
    )
    trainer_ridge: float = Field(1.0, ge=0, description="Ridge of the content → factors map.")
    sequence_model: bool = Field(
        True,
        description="The sequence-aware user model (core/sequence.py): the trainer fits it "
        "with each refresh of the factors and publishes it on sequence-models; workers make "
        "u_f with it from the order of the user's history (false: the decayed average).",
    )
    sequence_lags: int = Field(
        8, ge=0, le=64, description="Most recent items the sequence model reads one by one."
    )
    sequence_ridge: float = Field(
        10.0, ge=0, description="Ridge of the sequence model's least-squares fit."
    )
    trainer_web_port: int = Field(6099, ge=0, le=65535, description="Trainer health port.")
