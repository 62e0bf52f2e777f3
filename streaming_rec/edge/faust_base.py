"""What both worker roles' Faust apps share: the app itself, raw-bytes topics and the
`/health` and `/metrics` pages."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

import faust

from streaming_rec.config import Settings
from streaming_rec.edge import faust_fixes, metrics
from streaming_rec.topics import TopicCatalog

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def new_faust_app(settings: Settings, app_id: str, **extra: Any) -> faust.App:
    """A Faust app with what every worker role shares: the broker and its credentials,
    in-memory tables, the web port on SREC_WEB_HOST, acks=all, no topic declaration, the
    group's session timeouts."""
    from streaming_rec.edge.kafka_config import faust_broker_kwargs

    faust_fixes.apply()
    return faust.App(
        app_id,
        **faust_broker_kwargs(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=settings.web_port > 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_host,
        web_in_thread=False,
        topic_allow_declare=False,  # topics come from topics/ (streaming-rec topics)
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.0,
        stream_wait_empty=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        **extra,
    )


def raw_topics(
    app: faust.App, settings: Settings, catalog: TopicCatalog, names: Iterable[str]
) -> dict[str, faust.TopicT]:
    """The Faust topics of ``names`` (logical), keys and values as raw bytes."""
    return {
        name: app.topic(settings.topic(name), partitions=catalog.get(name).partitions, **RAW)
        for name in names
    }


def worker_name(settings: Settings) -> str:
    """The worker's name in replies, dead letters and logs (default host:pid)."""
    return settings.worker_name or f"{socket.gethostname()}:{os.getpid()}"


def add_pages(app: faust.App, health: Callable[[], dict[str, Any]]) -> None:
    """`/health` (the JSON of ``health()``) and `/metrics` (Prometheus text format)."""

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        return web.json(health())

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        from prometheus_client import generate_latest

        # aiohttp refuses a charset inside content_type; the text format is UTF-8 anyway
        body = generate_latest(metrics.REGISTRY)
        return web.bytes(body, content_type="text/plain; version=0.0.4")
