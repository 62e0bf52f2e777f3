"""What the gateway refuses before any work: writes without the key, bodies over 1 MiB,
requests past SREC_GATEWAY_MAX_IN_FLIGHT (ASGI middlewares), and who counts as loopback."""

from __future__ import annotations

import ipaddress
import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streaming_rec.gateway import metrics

UNLIMITED = ("/health", "/metrics", "/static/", "/docs", "/openapi.json")  # and "/" itself


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
