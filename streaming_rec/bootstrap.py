"""The composition root: the one place that builds components from the settings."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from streaming_rec.config import EncoderSettings, RankingSettings, Settings, UserStateSettings
from streaming_rec.core.embedder import (
    Embedder,
    backend_name,
    default_encoder_cache,
    open_embedder,
)
from streaming_rec.core.hnsw import HnswIndex
from streaming_rec.core.onnx_embedder import default_onnx_threads
from streaming_rec.core.popularity import Popularity
from streaming_rec.core.ranker import RankingWeights
from streaming_rec.core.service import Recommender
from streaming_rec.core.user_state import UpdateRule
from streaming_rec.topics import TopicCatalog

if TYPE_CHECKING:
    import faust

    from streaming_rec.edge.trainer import Trainer

log = logging.getLogger(__name__)


def build_embedder(settings: EncoderSettings) -> Embedder:
    """The encoder of SREC_MODEL on the backend SREC_ENCODER picks (see ``open_embedder``):
    ONNX Runtime on a CPU, torch on a GPU, torch again if the ONNX export fails."""
    return open_embedder(
        settings.model,
        settings.encoder,
        device=settings.device,
        batch_size=settings.max_batch,
        torch_threads=settings.torch_threads,
        onnx_threads=settings.onnx_threads or settings.torch_threads or default_onnx_threads(),
        cache_dir=settings.encoder_cache_dir or default_encoder_cache(),
    )


def ranking_weights(settings: RankingSettings) -> RankingWeights:
    return RankingWeights(
        alpha=settings.alpha,
        gamma=settings.gamma,
        beta=settings.beta,
        prior_weight=settings.prior_weight,
        mmr_lambda=settings.mmr_lambda,
        candidates=settings.candidates,
        sequence_share=settings.sequence_share,
    )


def update_rule(settings: UserStateSettings) -> UpdateRule:
    return UpdateRule(
        weights=settings.event_weights,
        half_life_events=settings.half_life_events,
        half_life_seconds=settings.half_life_seconds,
        max_recent=settings.recent_items,
    )


def limit_blas_threads(settings: EncoderSettings) -> None:
    """Hold numpy's BLAS to SREC_BLAS_THREADS threads for the rest of the process (0:
    leave the library's choice). OpenBLAS's idle threads spin-wait after each call and
    take the core the event loop, the Kafka client and a local broker need; a worker's
    products (a batch of queries against a few hundred candidates) gain nothing from
    them. Done with threadpoolctl, which finds the BLAS numpy loaded (whatever its
    vendor) and changes it at run time, so the environment need not be set before
    numpy is imported."""
    if settings.blas_threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=settings.blas_threads, user_api="blas")


def tune_worker_process(settings: Settings) -> None:
    """The process-wide knobs of a worker: numpy's BLAS threads (``limit_blas_threads``)
    and the GIL's switch interval (SREC_GIL_SWITCH_INTERVAL_MS; 0 leaves Python's 5 ms):
    the compute thread re-enters Python after each native call (ONNX Runtime, hnswlib)
    and waits up to that long for the event loop to let go of the GIL."""
    limit_blas_threads(settings)
    if settings.gil_switch_interval_ms > 0:
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000.0)


def build_recommender(settings: Settings, embedder: Embedder | None = None) -> Recommender:
    """The recommender a worker runs: encoder, index, blend, update rule and popularity
    from ``settings`` (``embedder`` reused when given)."""
    embedder = embedder or build_embedder(settings)
    index = HnswIndex(
        embedder.dim + settings.factor_dim,
        max_elements=settings.hnsw_capacity,
        m=settings.hnsw_m,
        ef_construction=settings.hnsw_ef_construction,
        ef_search=settings.hnsw_ef_search,
        threads=settings.hnsw_threads or os.cpu_count() or 1,
    )
    weights = ranking_weights(settings)
    rule = update_rule(settings)
    popularity = Popularity(settings.popularity_half_life_seconds)
    return Recommender(
        embedder,
        index,
        weights,
        rule,
        popularity,
        settings.factor_dim,
        learn_rate=settings.learn_rate,
        explore_share=settings.explore_share,
        impressions_kept=settings.impressions_kept,
        understand=settings.understand,
        exact_scan_max=settings.exact_scan_max,
        recency_weight=settings.recency_weight,
    )


def build_worker_app(settings: Settings) -> faust.App:
    """Topics checked (and created if allowed), the model loaded, the Faust app wired."""
    from streaming_rec.edge.admin import ensure_topics
    from streaming_rec.edge.app import build_app
    from streaming_rec.edge.gcwatch import GcWatch, freeze_startup_objects
    from streaming_rec.edge.metrics import show_build

    catalog = TopicCatalog.load()
    if settings.create_topics:
        ensure_topics(settings, catalog)
    tune_worker_process(settings)
    GcWatch().install()
    if settings.role == "embed":
        from streaming_rec.edge.embed_app import build_embed_app

        embedder = build_embedder(settings)
        show_build(settings.role, embedder.name, backend_name(embedder))
        if settings.gc_freeze:  # an embed worker has no catalog to wait for
            freeze_startup_objects()
        return build_embed_app(settings, embedder, catalog)
    service = build_recommender(settings)
    show_build(settings.role, service.model_version, backend_name(service.embedder))
    return build_app(settings, service, catalog)


def build_trainer(settings: Settings) -> Trainer:
    """The trainer (topics checked and created if allowed)."""
    from streaming_rec.edge.admin import ensure_topics
    from streaming_rec.edge.trainer import Trainer

    if settings.create_topics:
        ensure_topics(settings, TopicCatalog.load())
    return Trainer(settings)
