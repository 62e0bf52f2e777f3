"""The gateway's FastAPI app: the topics over HTTP, and the demo page at ``/``.

    POST   /recommendations      ask (query.v1 fields) and wait → the reply (recommendation.v1)
    GET    /users/{id}/feed      a "for you" ask for the user → the reply
    DELETE /users/{id}           forget the user (write)                       → 202
    POST   /feedback             one feedback event (write) → 202 {"event_id"}
    PUT    /items/{id}           publish an item (write)                       → 202
    DELETE /items/{id}           delete an item (write)                        → 202
    GET    /health, /metrics     the gateway's own health and Prometheus metrics
    GET    /docs                 OpenAPI (request and reply schemas from topics/schemas)

Errors: 422 names the bad field (the codec's DecodeError), 401/403 for writes without the
key, 413 for a body over 1 MiB, 503 when SREC_GATEWAY_MAX_IN_FLIGHT requests are in flight
or Kafka is away, 504 when no answer came in time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from streaming_rec.config import Settings
from streaming_rec.edge.async_client import AsyncRecClient
from streaming_rec.errors import BadMessage, BrokerError, RequestTimeout
from streaming_rec.gateway import bodies, metrics
from streaming_rec.gateway.limits import BodyLimit, Bounded, Flight, Refusal, is_loopback
from streaming_rec.gateway.routes import Gateway, router
from streaming_rec.gateway.static import STATIC

__all__ = ["create_app", "is_loopback"]
log = logging.getLogger(__name__)


def create_app(settings: Settings, client: AsyncRecClient | None = None) -> FastAPI:
    """The gateway app over one AsyncRecClient (started with the app unless given).

    Writes need ``X-API-Key`` = SREC_GATEWAY_API_KEY when it is set; without a key they are
    allowed only while the gateway binds a loopback address (SREC_GATEWAY_HOST)."""
    own_client = client is None
    rec = client if client is not None else AsyncRecClient(settings)
    key = settings.gateway_api_key.get_secret_value() if settings.gateway_api_key else None
    open_writes = key is None and is_loopback(settings.gateway_host)
    flight = Flight()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if own_client:
            await rec.start()
        log.info(
            "gateway ready on http://%s:%d/ (OpenAPI at /docs), replies on partition %s",
            settings.gateway_host,
            settings.gateway_port,
            rec.reply_partition,
        )
        try:
            yield
        finally:
            if own_client:
                await rec.close()

    app = FastAPI(
        title="streaming_rec gateway",
        summary="Ask for recommendations, send feedback and change the catalog over HTTP; "
        "every request goes through the Kafka topics of topics/.",
        version="1",
        lifespan=lifespan,
    )
    app.state.client = rec
    app.state.gateway = Gateway(rec, settings, key, open_writes, flight)

    _limit(app, settings, flight)
    _errors(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _limit(app: FastAPI, settings: Settings, flight: Flight) -> None:
    """Requests in flight, body size, CORS (SREC_GATEWAY_CORS_ORIGINS)."""
    app.add_middleware(Bounded, limit=settings.gateway_max_in_flight, flight=flight)
    app.add_middleware(BodyLimit, limit=bodies.MAX_BODY_BYTES)
    origins = [o.strip() for o in settings.gateway_cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Content-Type", "X-API-Key"],
        )


def _errors(app: FastAPI) -> None:
    """The product's errors as HTTP: 422 naming the field, 504, 503, and the refusals."""

    @app.exception_handler(BadMessage)
    async def bad_message(request: Request, exc: BadMessage) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "field": exc.field, "reason": exc.reason}, status_code=422
        )

    @app.exception_handler(RequestTimeout)
    async def timed_out(request: Request, exc: RequestTimeout) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=504)

    @app.exception_handler(BrokerError)
    async def broker_away(request: Request, exc: BrokerError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> JSONResponse:
        metrics.REFUSED.labels(exc.reason).inc()
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)
