"""Run the gateway: uvicorn serving :func:`streaming_rec.gateway.app.create_app`."""

from __future__ import annotations

import logging

from streaming_rec.config import Settings
from streaming_rec.gateway.app import create_app, is_loopback

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Serve the gateway on SREC_GATEWAY_HOST:SREC_GATEWAY_PORT until SIGINT/SIGTERM.
    Raises BrokerError (at start) when Kafka cannot be reached."""
    import uvicorn

    if not is_loopback(settings.gateway_host) and settings.gateway_api_key is None:
        log.warning(
            "the gateway listens on %s without SREC_GATEWAY_API_KEY: writes (feedback, items, "
            "forgetting users) are refused with 403; asks are open",
            settings.gateway_host,
        )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
