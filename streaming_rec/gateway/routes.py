"""The gateway's routes: the topics over HTTP. Each handler reads the ``Gateway`` context
(the client, the write rule, the timeouts) from the app's state."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from prometheus_client import generate_latest

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.async_client import AsyncRecClient
from streaming_rec.edge.client import checked_user_id
from streaming_rec.errors import BadMessage
from streaming_rec.gateway import bodies, metrics
from streaming_rec.gateway.limits import Flight, Refusal
from streaming_rec.gateway.static import STATIC
from streaming_rec.schemas import MAX_K, Recommendation

REPLY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": bodies.openapi_schema("recommendation")}}}
}
EXAMPLE_QUERY = {"user_id": "alice", "text": "a funny animated film for children", "k": 5}
router = APIRouter()


@dataclass
class Gateway:
    """What the routes share: the client, the settings, the write key (None: no key) and
    whether writes are open without one (loopback only), the in-flight counter."""

    client: AsyncRecClient
    settings: Settings
    key: str | None
    open_writes: bool
    flight: Flight

    def check_write(self, request: Request) -> None:
        """Refusal 401 without the right X-API-Key, 403 when writes are off."""
        if self.key is not None:
            sent = request.headers.get("x-api-key", "")
            if not hmac.compare_digest(sent.encode(), self.key.encode()):
                raise Refusal(401, "writes need the X-API-Key header", "unauthorized")
        elif not self.open_writes:
            raise Refusal(
                403,
                "writes are off: the gateway listens beyond loopback and "
                "SREC_GATEWAY_API_KEY is not set",
                "forbidden",
            )

    async def ask(self, body: bytes, user_id: str | None) -> Response:
        """Publish the query in ``body`` (for ``user_id`` when given) and wait for its answer
        up to its deadline_ms, else SREC_GATEWAY_TIMEOUT_S. Raises RequestTimeout."""
        rec = self.client
        assert rec.reply_partition is not None
        query = bodies.query_from(body, user_id, rec.reply_partition)
        timeout = query.deadline_ms / 1000 if query.deadline_ms else self.settings.gateway_timeout_s
        request_id = await rec.send(query)  # as sent: filters, understand, reply_to
        return _reply(await rec.wait(request_id, timeout))

    async def acked(self, send: Awaitable[None], what: str, **shown: Any) -> Response:
        """202 once Kafka acknowledged ``send``; 504 (with ``shown``) when it did not in time."""
        limit = self.settings.gateway_timeout_s
        try:
            await asyncio.wait_for(send, limit)
        except TimeoutError:
            detail = f"Kafka did not acknowledge the {what} in {limit:g} s"
            if "event_id" in shown:
                detail += "; retrying with the same event_id is applied once"
            return JSONResponse({"detail": detail, **shown}, status_code=504)
        return JSONResponse({"accepted": what, **shown}, status_code=202)


def gateway(request: Request) -> Gateway:
    """The Gateway of the app serving ``request`` (a FastAPI dependency)."""
    found: Gateway = request.app.state.gateway
    return found


GatewayDep = Annotated[Gateway, Depends(gateway)]


@router.post(
    "/recommendations",
    responses=REPLY,
    openapi_extra=bodies.json_body("query", ("reply_to",), EXAMPLE_QUERY),
    summary="Ask for recommendations and wait for the answer",
)
async def recommendations(gw: GatewayDep, request: Request) -> Response:
    """The body is a query (topics/schemas/query.v1.json; request_id optional). Waits
    for the answer up to the query's deadline_ms, else SREC_GATEWAY_TIMEOUT_S."""
    return await gw.ask(await request.body(), None)


@router.get("/users/{user_id}/feed", responses=REPLY, summary="A 'for you' feed")
async def feed(gw: GatewayDep, user_id: str, k: int = 10) -> Response:
    """An ask with empty text for ``user_id``: their taste, or popular items."""
    if not 1 <= k <= MAX_K:
        raise BadMessage("query.k", f"must be within 1..{MAX_K}", k)
    return await gw.ask(b'{"k": %d}' % k, checked_user_id(user_id))


@router.delete("/users/{user_id}", status_code=202, summary="Forget a user")
async def forget(gw: GatewayDep, user_id: str, request: Request) -> Response:
    """A tombstone on `feedback`: the workers delete the user's state and impressions
    after every earlier event of theirs; their next ask is a cold start."""
    gw.check_write(request)
    return await gw.acked(
        gw.client.forget_user(checked_user_id(user_id)), "forget", user_id=user_id
    )


@router.post(
    "/feedback",
    status_code=202,
    openapi_extra=bodies.json_body(
        "feedback", (), {"user_id": "alice", "item_id": "Toy Story (1995)", "event": "click"}
    ),
    summary="Send one feedback event",
)
async def feedback(gw: GatewayDep, request: Request) -> Response:
    """The body is a feedback event (topics/schemas/feedback.v1.json). An event_id is set
    when absent and returned: a retry that repeats it is applied once."""
    gw.check_write(request)
    fb = bodies.feedback_from(await request.body())
    send = gw.client.send_raw("feedback", fb.user_id.encode(), codec.encode_feedback(fb), True)
    return await gw.acked(send, "feedback", event_id=fb.event_id)


@router.put(
    "/items/{item_id}",
    status_code=202,
    openapi_extra=bodies.json_body("item", ("item_id",), {"title": "Zorblax", "categories": []}),
    summary="Publish an item",
)
async def put_item(gw: GatewayDep, item_id: str, request: Request) -> Response:
    """The body is an item (topics/schemas/item.v1.json) without or with the same id."""
    gw.check_write(request)
    item = bodies.item_from(await request.body(), item_id)
    return await gw.acked(gw.client.upsert_item(item), "item", item_id=item_id)


@router.delete("/items/{item_id}", status_code=202, summary="Delete an item")
async def delete_item(gw: GatewayDep, item_id: str, request: Request) -> Response:
    gw.check_write(request)
    return await gw.acked(gw.client.delete_item(item_id), "item deletion", item_id=item_id)


@router.get("/health", summary="The gateway's health")
async def health(gw: GatewayDep) -> dict[str, Any]:
    return {
        "ready": gw.client.reply_partition is not None,
        "reply_partition": gw.client.reply_partition,
        "in_flight": gw.flight.now,
        "pending": gw.client.pending,
        "replies": gw.client.stats.as_dict(),
        "writes": "key" if gw.key is not None else ("open (loopback)" if gw.open_writes else "off"),
    }


@router.get("/metrics", summary="Prometheus metrics")
async def prometheus(gw: GatewayDep) -> Response:
    for outcome, value in gw.client.stats.as_dict().items():
        metrics.REPLY_RECORDS.labels(outcome).set(value)
    metrics.PENDING.set(gw.client.pending)
    return Response(generate_latest(metrics.REGISTRY), media_type="text/plain; version=0.0.4")


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


def _reply(reply: Recommendation) -> Response:
    return Response(codec.encode_recommendation(reply), media_type="application/json")
