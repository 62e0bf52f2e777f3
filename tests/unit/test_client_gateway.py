"""The gateway's HTTP rules without a broker (a fake AsyncRecClient records what would be
published): bodies checked by the codec with 422 naming the field, writes guarded by the
key or loopback, a bounded body, 504 on timeout, event ids set for retries."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from typing import Any

import orjson
import pytest

with warnings.catch_warnings():  # starlette 1.x: "use httpx2"; httpx is what FastAPI documents
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from streaming_rec import codec
from streaming_rec.config import Settings, load_settings
from streaming_rec.edge.replies import ReplyStats
from streaming_rec.errors import RequestTimeout
from streaming_rec.gateway.app import create_app, is_loopback
from streaming_rec.schemas import Query, Recommendation, Timings

pytestmark = pytest.mark.unit


class FakeClient:
    """What the gateway calls on an AsyncRecClient; answers every query at once."""

    def __init__(self, answer: bool = True) -> None:
        self.reply_partition = 4
        self.answer = answer
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.queries: list[dict[str, Any]] = []
        self.stats = ReplyStats()
        self.pending = 0

    async def send(self, query: Query) -> str:
        self.queries.append(orjson.loads(codec.encode_query(query)))  # as on the topic
        return query.request_id

    async def wait(self, request_id: str, timeout: float) -> Recommendation:
        if not self.answer:
            raise RequestTimeout(f"no answer to request {request_id} within {timeout:g} s")
        q = self.queries[-1]
        return Recommendation(
            request_id=request_id, user_id=q["user_id"], status="ok", strategy="popular",
            model_version="m", index_version=1, index_size=1, user_events=0,
            timings=Timings(), produced_at=1.0, worker="w",
        )  # fmt: skip

    async def send_raw(
        self, topic: str, key: bytes | None, value: bytes | None, acked: bool = False
    ) -> None:
        self.sent.append((topic, key, value))

    async def forget_user(self, user_id: str) -> None:
        self.sent.append(("feedback", user_id.encode(), None))

    async def upsert_item(self, item: Any) -> None:
        self.sent.append(("items", item.item_id.encode(), codec.encode_item(item)))

    async def delete_item(self, item_id: str) -> None:
        self.sent.append(("items", item_id.encode(), None))


def gateway(client: FakeClient, **settings: Any) -> TestClient:
    config: Settings = load_settings(**settings)
    return TestClient(create_app(config, client))  # type: ignore[arg-type]


def test_an_ask_is_a_query_to_the_gateways_reply_partition_and_returns_the_reply() -> None:
    fake = FakeClient()
    with gateway(fake) as http:
        response = http.post("/recommendations", json={"user_id": "al", "text": "a film", "k": 3})
        assert response.status_code == 200
        reply = codec.decode_recommendation(response.content)  # the topic's schema
        assert reply.user_id == "al" and reply.request_id == fake.queries[0]["request_id"]
        assert fake.queries[0]["k"] == 3 and fake.queries[0]["text"] == "a film"
        feed = http.get("/users/bo/feed", params={"k": 4})
        assert feed.status_code == 200 and fake.queries[1]["text"] == ""
        assert fake.queries[1]["user_id"] == "bo" and fake.queries[1]["k"] == 4


def test_an_ask_keeps_every_field_of_the_body_filters_and_understand_included() -> None:
    fake = FakeClient()
    body = {
        "user_id": "al",
        "text": "laptops",
        "understand": False,
        "filters": {"categories": ["Laptops"], "attributes": {"price": {"lte": 1000}}},
    }
    with gateway(fake) as http:
        assert http.post("/recommendations", json=body).status_code == 200
    sent = fake.queries[0]
    assert sent["understand"] is False and sent["reply_to"] == {"partition": 4}
    assert sent["filters"]["categories"] == ["Laptops"]
    assert sent["filters"]["attributes"]["price"]["lte"] == 1000


def test_a_bad_field_is_a_422_naming_it() -> None:
    with gateway(FakeClient()) as http:
        for body, field in (
            ({"user_id": "al", "k": 0}, "query.k"),
            ({"text": "no user"}, "query.user_id"),
            ({"user_id": "al", "k": "5"}, "query.k"),
        ):
            response = http.post("/recommendations", json=body)
            assert response.status_code == 422 and response.json()["field"] == field, body
        response = http.post("/recommendations", content=b"{not json")
        assert response.status_code == 422 and response.json()["field"] == "query"
        response = http.post("/feedback", json={"user_id": "al", "item_id": "x", "event": "love"})
        assert response.status_code == 422 and response.json()["field"] == "feedback.event"
        response = http.put("/items/a", json={"item_id": "b", "title": "t"})
        assert response.status_code == 422 and response.json()["field"] == "item.item_id"
        assert http.get("/users/al/feed", params={"k": 101}).json()["field"] == "query.k"


def test_no_answer_in_time_is_a_504() -> None:
    with gateway(FakeClient(answer=False), gateway_timeout_s=0.5) as http:
        response = http.post("/recommendations", json={"user_id": "al"})
        assert response.status_code == 504 and "within 0.5 s" in response.json()["detail"]


def test_feedback_gets_an_event_id_the_caller_can_retry_with() -> None:
    fake = FakeClient()
    with gateway(fake) as http:
        first = http.post("/feedback", json={"user_id": "al", "item_id": "x", "event": "click"})
        assert first.status_code == 202
        event_id = first.json()["event_id"]
        retry = http.post(
            "/feedback",
            json={"user_id": "al", "item_id": "x", "event": "click", "event_id": event_id},
        )
        assert retry.json()["event_id"] == event_id
    sent = [codec.decode_feedback(value) for _, _, value in fake.sent]
    assert [fb.event_id for fb in sent] == [event_id, event_id]
    assert all(fb.ts is not None for fb in sent)


def test_forgetting_a_user_publishes_a_tombstone_keyed_by_them() -> None:
    fake = FakeClient()
    with gateway(fake) as http:
        assert http.delete("/users/al").status_code == 202
    assert fake.sent == [("feedback", b"al", None)]


def test_writes_need_the_key_when_one_is_set_and_are_off_beyond_loopback_without_one() -> None:
    fb = {"user_id": "al", "item_id": "x", "event": "click"}
    with gateway(FakeClient(), gateway_api_key="s3cret") as http:
        assert http.post("/feedback", json=fb).status_code == 401
        assert http.post("/feedback", json=fb, headers={"X-API-Key": "nope"}).status_code == 401
        assert http.post("/feedback", json=fb, headers={"X-API-Key": "s3cret"}).status_code == 202
        assert http.post("/recommendations", json={"user_id": "al"}).status_code == 200  # a read
    with gateway(FakeClient(), gateway_host="0.0.0.0") as http:
        refused = http.delete("/users/al")
        assert refused.status_code == 403 and "SREC_GATEWAY_API_KEY" in refused.json()["detail"]
        assert http.put("/items/a", json={"title": "t"}).status_code == 403
    with gateway(FakeClient()) as http:  # loopback, no key: a developer's machine
        assert http.post("/feedback", json=fb).status_code == 202
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")


class SlowClient(FakeClient):
    async def wait(self, request_id: str, timeout: float) -> Recommendation:
        await asyncio.sleep(1.0)
        return await super().wait(request_id, timeout)


def test_past_the_in_flight_bound_a_request_is_refused_with_503() -> None:
    with gateway(SlowClient(), gateway_max_in_flight=1) as http:
        slow: list[int] = []
        first = threading.Thread(
            target=lambda: slow.append(
                http.post("/recommendations", json={"user_id": "al"}).status_code
            )
        )
        first.start()
        time.sleep(0.3)  # the first is waiting for its answer
        refused = http.post("/recommendations", json={"user_id": "bo"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert http.get("/health").json()["in_flight"] == 1  # /health is not counted
        first.join()
        assert slow == [200]


def test_a_body_over_one_mib_is_refused_with_413() -> None:
    with gateway(FakeClient()) as http:
        response = http.post("/recommendations", content=b"{" + b" " * (1024 * 1024 + 1) + b"}")
        assert response.status_code == 413


def test_the_page_openapi_health_and_metrics_are_served() -> None:
    with gateway(FakeClient()) as http:
        page = http.get("/")
        assert page.status_code == 200 and 'id="results"' in page.text
        assert http.get("/static/app.js").status_code == 200
        paths = http.get("/openapi.json").json()["paths"]
        assert {"/recommendations", "/feedback", "/items/{item_id}", "/users/{user_id}"} <= set(
            paths
        )
        health = http.get("/health").json()
        assert health["reply_partition"] == 4 and health["writes"] == "open (loopback)"
        http.post("/recommendations", json={"user_id": "al"})
        text = http.get("/metrics").text
        assert (
            'streaming_rec_gateway_request_duration_seconds_count{route="/recommendations"' in text
        )
