"""What both worker roles' Faust apps share: the app itself, raw-bytes topics and the
`/health`, `/ready`, `/live` and `/metrics` pages."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import faust

from streaming_rec.config import Settings
from streaming_rec.edge import faust_fixes, metrics
from streaming_rec.edge.monitor import StreamMonitor, monitor_of
from streaming_rec.topics import TopicCatalog

log = logging.getLogger(__name__)
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
    from streaming_rec.edge.adapters import check_take_ready
    from streaming_rec.edge.kafka_config import faust_broker_kwargs

    faust_fixes.apply()
    faust_fixes.configure_fetch(
        faust_fixes.FetchTiming(settings.fetch_max_wait_ms, settings.fetch_backoff_ms)
    )
    check_take_ready()
    app = faust.App(
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
    app.sensors.add(
        StreamMonitor(app, settings.live_stall_s, recovery_stall_s=settings.recovery_stall_s)
    )
    return app


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


class AgentWatch:
    """Counts agent crashes and tells whether each agent of the app has a live actor: a
    worker whose agent is down is not ready. Each agent body runs inside ``running(name)``
    (Faust's own ``on_error`` hook is taken by the app)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.crashes = 0
        self.last: str | None = None

    @contextlib.asynccontextmanager
    async def running(self, name: str) -> AsyncIterator[None]:
        """Log and count an exception that ends the agent ``name``, then let it propagate
        (Faust's supervisor starts the agent again)."""
        try:
            yield
        except Exception as exc:
            self.crashes += 1
            self.last = f"{name}: {type(exc).__name__}: {exc}"[:500]
            metrics.AGENT_CRASHES.labels(name).inc()
            log.error("agent %s crashed; Faust starts it again", name, exc_info=exc)
            raise

    def down(self) -> list[str]:
        """Names of the agents that have started and have no live actor now."""
        out = []
        for agent in self.app.agents.values():
            actors = list(getattr(agent, "_actors", ()))
            if actors and all(getattr(a, "crashed", False) for a in actors):
                out.append(agent.name)
        return out


def add_pages(app: faust.App, health: Callable[[], dict[str, Any]]) -> None:
    """`/health` (the JSON of ``health()``, always 200), `/ready` (200 once ``health()``
    says ready, else 503), `/live` (503 only when the worker is wedged: see
    ``edge/monitor.py``) and `/metrics` (Prometheus text format)."""
    monitor = monitor_of(app)

    def ready() -> bool:
        return bool(health().get("ready"))

    if monitor is not None:
        monitor.ready = ready
    metrics.READY.set_function(lambda: 1.0 if ready() else 0.0)

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        return web.json(health())

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        body = health()
        return web.json(body, status=200 if body.get("ready") else 503)

    @app.page("/live")
    async def live_page(web: Any, request: Any) -> Any:
        problem = "the Faust app crashed" if app.crashed else None
        if problem is None and monitor is not None:
            problem = monitor.wedged()
        if problem is not None:
            return web.json({"live": False, "problem": problem}, status=503)
        return web.json({"live": True})

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        from prometheus_client import generate_latest

        # aiohttp refuses a charset inside content_type; the text format is UTF-8 anyway
        body = generate_latest(metrics.REGISTRY)
        return web.bytes(body, content_type="text/plain; version=0.0.4")
