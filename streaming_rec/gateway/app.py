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

import asyncio
import hmac
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.async_client import AsyncRecClient
from streaming_rec.edge.client import checked_user_id
from streaming_rec.errors import BadMessage, BrokerError, RequestTimeout
from streaming_rec.gateway import bodies, metrics
from streaming_rec.schemas import MAX_K, Recommendation

log = logging.getLogger(__name__)
STATIC = Path(str(resources.files("streaming_rec.gateway") / "static"))
UNLIMITED = ("/health", "/metrics", "/static/", "/docs", "/openapi.json")  # and "/" itself
_REPLY_SCHEMA = bodies.openapi_schema("recommendation")
REPLY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": _REPLY_SCHEMA}}}
}


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Refusal(Exception):
    """A request refused before any work: HTTP ``status`` with ``detail``."""

    def __init__(self, status: int, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason = status, detail, reason


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes (by Content-Length, or counted
    as it streams in), before the app reads it all."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise Refusal(413, f"body over {self.limit} bytes", "too_large")
            return message

        try:
            await self.app(scope, counted, send)
        except Refusal:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        metrics.REFUSED.labels("too_large").inc()
        response = JSONResponse({"detail": f"body over {self.limit} bytes"}, status_code=413)
        await response({"type": "http"}, _nothing, send)


class Flight:
    """How many limited requests are in flight now (shared by Bounded and /health)."""

    now: int = 0


class Bounded:
    """ASGI middleware: at most ``limit`` requests in flight (503 beyond; the page, static
    files, docs, /health and /metrics are not counted), each timed into the metrics."""

    def __init__(self, app: ASGIApp, limit: int, flight: Flight) -> None:
        self.app, self.limit, self.flight = app, limit, flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        limited = not (path == "/" or path.startswith(UNLIMITED))
        if limited and self.flight.now >= self.limit:
            metrics.REFUSED.labels("busy").inc()
            refusal = JSONResponse(
                {"detail": f"{self.flight.now} requests in flight (SREC_GATEWAY_MAX_IN_FLIGHT)"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
            return await refusal(scope, receive, send)
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.flight.now += limited
        metrics.IN_FLIGHT.set(self.flight.now)
        try:
            await self.app(scope, receive, sending)
        finally:
            self.flight.now -= limited
            metrics.IN_FLIGHT.set(self.flight.now)
            name = getattr(scope.get("route"), "path", "other")
            metrics.REQUESTS.labels(name, str(status)).observe(time.perf_counter() - started)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


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

    def check_write(request: Request) -> None:
        if key is not None:
            sent = request.headers.get("x-api-key", "")
            if not hmac.compare_digest(sent.encode(), key.encode()):
                raise Refusal(401, "writes need the X-API-Key header", "unauthorized")
        elif not open_writes:
            raise Refusal(
                403,
                "writes are off: the gateway listens beyond loopback and "
                "SREC_GATEWAY_API_KEY is not set",
                "forbidden",
            )

    async def ask(body: bytes, user_id: str | None) -> Response:
        assert rec.reply_partition is not None
        query = bodies.query_from(body, user_id, rec.reply_partition)
        timeout = query.deadline_ms / 1000 if query.deadline_ms else settings.gateway_timeout_s
        request_id = await rec.send_query(
            query.user_id,
            query.text,
            k=query.k,
            categories=query.filters.categories if query.filters else (),
            exclude_ids=query.filters.exclude_ids if query.filters else (),
            request_id=query.request_id,
            deadline_ms=query.deadline_ms,
        )
        return _reply(await rec.wait(request_id, timeout))

    async def acked(send: Awaitable[None], what: str, **shown: Any) -> Response:
        try:
            await asyncio.wait_for(send, settings.gateway_timeout_s)
        except TimeoutError:
            detail = f"Kafka did not acknowledge the {what} in {settings.gateway_timeout_s:g} s"
            if "event_id" in shown:
                detail += "; retrying with the same event_id is applied once"
            return JSONResponse({"detail": detail, **shown}, status_code=504)
        return JSONResponse({"accepted": what, **shown}, status_code=202)

    example_query = {"user_id": "alice", "text": "a funny animated film for children", "k": 5}

    @app.post(
        "/recommendations",
        responses=REPLY,
        openapi_extra=bodies.json_body("query", ("reply_to",), example_query),
        summary="Ask for recommendations and wait for the answer",
    )
    async def recommendations(request: Request) -> Response:
        """The body is a query (topics/schemas/query.v1.json; request_id optional). Waits
        for the answer up to the query's deadline_ms, else SREC_GATEWAY_TIMEOUT_S."""
        return await ask(await request.body(), None)

    @app.get("/users/{user_id}/feed", responses=REPLY, summary="A 'for you' feed")
    async def feed(user_id: str, k: int = 10) -> Response:
        """An ask with empty text for ``user_id``: their taste, or popular items."""
        if not 1 <= k <= MAX_K:
            raise BadMessage("query.k", f"must be within 1..{MAX_K}", k)
        return await ask(b'{"k": %d}' % k, checked_user_id(user_id))

    @app.delete("/users/{user_id}", status_code=202, summary="Forget a user")
    async def forget(user_id: str, request: Request) -> Response:
        """A tombstone on `feedback`: the workers delete the user's state and impressions
        after every earlier event of theirs; their next ask is a cold start."""
        check_write(request)
        return await acked(rec.forget_user(checked_user_id(user_id)), "forget", user_id=user_id)

    @app.post(
        "/feedback",
        status_code=202,
        openapi_extra=bodies.json_body(
            "feedback", (), {"user_id": "alice", "item_id": "Toy Story (1995)", "event": "click"}
        ),
        summary="Send one feedback event",
    )
    async def feedback(request: Request) -> Response:
        """The body is a feedback event (topics/schemas/feedback.v1.json). An event_id is set
        when absent and returned: a retry that repeats it is applied once."""
        check_write(request)
        fb = bodies.feedback_from(await request.body())
        send = rec.send_raw("feedback", fb.user_id.encode(), codec.encode_feedback(fb), True)
        return await acked(send, "feedback", event_id=fb.event_id)

    @app.put(
        "/items/{item_id}",
        status_code=202,
        openapi_extra=bodies.json_body(
            "item", ("item_id",), {"title": "Zorblax", "categories": []}
        ),
        summary="Publish an item",
    )
    async def put_item(item_id: str, request: Request) -> Response:
        """The body is an item (topics/schemas/item.v1.json) without or with the same id."""
        check_write(request)
        item = bodies.item_from(await request.body(), item_id)
        return await acked(rec.upsert_item(item), "item", item_id=item_id)

    @app.delete("/items/{item_id}", status_code=202, summary="Delete an item")
    async def delete_item(item_id: str, request: Request) -> Response:
        check_write(request)
        return await acked(rec.delete_item(item_id), "item deletion", item_id=item_id)

    @app.get("/health", summary="The gateway's health")
    async def health() -> dict[str, Any]:
        return {
            "ready": rec.reply_partition is not None,
            "reply_partition": rec.reply_partition,
            "in_flight": flight.now,
            "pending": rec.pending,
            "replies": rec.stats.as_dict(),
            "writes": "key" if key is not None else ("open (loopback)" if open_writes else "off"),
        }

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        for outcome, value in rec.stats.as_dict().items():
            metrics.REPLY_RECORDS.labels(outcome).set(value)
        metrics.PENDING.set(rec.pending)
        return Response(generate_latest(metrics.REGISTRY), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _reply(reply: Recommendation) -> Response:
    return Response(codec.encode_recommendation(reply), media_type="application/json")
