"""The HTTP gateway as a process of its own (`streaming-rec gateway`) in front of a real
worker: asks, feeds, feedback retried with its event_id, forgetting a user, the catalog,
a 504, the health and metrics pages.

The gateway's stack has topics and a worker of its own (a 1,000-movie part of ML-1M:
every horror, animation and children's film and the first others), so the clicks here and
in test_browser.py never reach the session worker's popular-now, which other tests read
as a cold start's feed."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from streaming_rec import codec
from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec.schemas import Recommendation
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import (
    ROOT,
    WorkerProcess,
    free_port_pair,
    fresh_topics,
    worker_env,
)
from tests.integration.test_loop import genre_share

pytestmark = pytest.mark.integration


class Gateway:
    """The gateway process and a tiny HTTP client for it (stdlib only)."""

    def __init__(self, process: WorkerProcess, settings: Settings) -> None:
        self.process = process
        self.settings = settings
        self.url = f"http://127.0.0.1:{process.port}"

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return status, raw.decode()

    def ask(self, user_id: str, text: str = "", k: int = 10) -> Recommendation:
        status, body = self.call(
            "POST", "/recommendations", {"user_id": user_id, "text": text, "k": k}
        )
        assert status == 200, body
        return codec.decode_recommendation(orjson.dumps(body))

    def feed(self, user_id: str, k: int = 10) -> Recommendation:
        status, body = self.call("GET", f"/users/{user_id}/feed?k={k}")
        assert status == 200, body
        return codec.decode_recommendation(orjson.dumps(body))

    def feed_until(
        self, user_id: str, done: Callable[[Recommendation], bool], timeout: float = 10.0
    ) -> Recommendation:
        deadline = time.monotonic() + timeout
        reply = self.feed(user_id)
        while not done(reply) and time.monotonic() < deadline:
            time.sleep(0.1)
            reply = self.feed(user_id)
        return reply


GENRES = {"Horror", "Animation", "Children's"}


def catalog(movies: list[Movie], size: int = 1000) -> list[Movie]:
    """Every movie in GENRES, then the first others, ``size`` in all."""
    chosen = [m for m in movies if GENRES & set(m.genres)]
    others = [m for m in movies if not GENRES & set(m.genres)]
    return chosen + others[: max(0, size - len(chosen))]


@pytest.fixture(scope="session")
def gateway(
    kafka_bootstrap: str, movies: list[Movie], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """`streaming-rec gateway` on a free loopback port, with a worker and topics of its own."""
    folder = tmp_path_factory.mktemp("gateway-stack")
    settings = fresh_topics(kafka_bootstrap, folder / "worker", "gw")
    items = catalog(movies)
    with RecClient(settings, listen=False, bulk=True) as loader:
        for movie in items:
            loader.upsert_item(movie.as_item())
        loader.flush()
    worker = WorkerProcess(
        worker_env(settings, "gateway-worker"), folder / "worker.log", settings.web_port
    )
    port = free_port_pair()
    env = worker_env(settings, "test-gateway", SREC_GATEWAY_PORT=str(port))
    process = WorkerProcess(env, folder / "gateway.log", port, command="gateway")
    try:
        worker.start()
        worker.wait_ready(min_items=len(items), timeout=300)
        process.start()
        process.wait_ready(timeout=60)
        yield Gateway(process, settings)
    finally:
        process.stop(timeout=30)
        worker.stop(timeout=30)


def test_an_http_ask_is_answered_with_the_topics_reply(
    gateway: Gateway, movies: list[Movie]
) -> None:
    by_id = {m.item_id: m for m in movies}
    reply = gateway.ask("u-http", "a funny animated film for children")
    assert reply.status == "ok" and len(reply.items) == 10 and reply.explanation is not None
    assert genre_share(reply, {"Animation", "Children's"}, by_id) >= 0.7
    assert reply.timings.embed_ms > 0


def test_no_answer_in_time_is_a_504_and_bad_fields_are_named(gateway: Gateway) -> None:
    status, body = gateway.call(
        "POST", "/recommendations", {"user_id": "u-hurry", "text": "a film", "deadline_ms": 1}
    )
    assert status == 504 and "within 0.001 s" in body["detail"]
    status, body = gateway.call("POST", "/recommendations", {"user_id": "u", "k": 500})
    assert status == 422 and body["field"] == "query.k"


def test_a_retried_feedback_event_is_applied_once(gateway: Gateway, movies: list[Movie]) -> None:
    user = f"u-retry-{uuid.uuid4().hex[:6]}"
    first, second = movies[0].item_id, movies[1].item_id
    status, body = gateway.call(
        "POST", "/feedback", {"user_id": user, "item_id": first, "event": "click"}
    )
    assert status == 202
    event_id = body["event_id"]
    for _ in range(2):  # the client's retries after (say) a 504: the same event_id
        retry = {"user_id": user, "item_id": first, "event": "click", "event_id": event_id}
        assert gateway.call("POST", "/feedback", retry)[0] == 202
    status, _ = gateway.call(
        "POST", "/feedback", {"user_id": user, "item_id": second, "event": "click"}
    )
    assert status == 202  # a new event, its own event_id
    reply = gateway.feed_until(user, lambda r: r.user_events >= 2)
    time.sleep(1.0)  # time for a wrongly applied retry to show
    assert gateway.feed(user).user_events == 2 == reply.user_events


def test_a_forgotten_user_is_a_cold_start_user_again(gateway: Gateway, movies: list[Movie]) -> None:
    horror = [m.item_id for m in movies if m.genres == ("Horror",)][:3]  # in the catalog
    for user, forget in (
        (f"u-forget-http-{uuid.uuid4().hex[:6]}", "http"),
        (f"u-forget-cli-{uuid.uuid4().hex[:6]}", "cli"),
    ):
        for item_id in horror:
            body = {"user_id": user, "item_id": item_id, "event": "click"}
            assert gateway.call("POST", "/feedback", body)[0] == 202
        warm = gateway.feed_until(user, lambda r: r.user_events == len(horror))
        assert warm.strategy == "personal" and warm.user_events == len(horror)
        if forget == "http":
            assert gateway.call("DELETE", f"/users/{user}")[0] == 202
        else:
            subprocess.run(
                [sys.executable, "-m", "streaming_rec", "forget", user],
                env=worker_env(gateway.settings),
                cwd=ROOT,
                check=True,
                capture_output=True,
                timeout=60,
            )
        cold = gateway.feed_until(user, lambda r: r.user_events == 0)
        # their clicks stay in popular-now as anonymous per-item counts (docs/gateway.md)
        assert (cold.strategy, cold.user_events) == ("popular", 0), forget


def test_items_put_and_deleted_over_http(gateway: Gateway) -> None:
    item_id = f"gw-{uuid.uuid4().hex[:8]}"
    body = {"title": "Quixel and the velvet submarine", "categories": ["Adventure"]}
    assert gateway.call("PUT", f"/items/{item_id}", body)[0] == 202

    def top(text: str) -> str:
        reply = gateway.ask("u-gw-items", text, k=3)
        return reply.items[0].item_id if reply.items else ""

    deadline = time.monotonic() + 10
    while top("a velvet submarine") != item_id and time.monotonic() < deadline:
        time.sleep(0.2)
    assert top("a velvet submarine") == item_id
    assert gateway.call("DELETE", f"/items/{item_id}")[0] == 202
    deadline = time.monotonic() + 10
    while top("a velvet submarine") == item_id and time.monotonic() < deadline:
        time.sleep(0.2)
    assert top("a velvet submarine") != item_id


def test_health_and_metrics_of_the_gateway(gateway: Gateway) -> None:
    status, health = gateway.call("GET", "/health")
    assert status == 200 and health["ready"] and health["writes"] == "open (loopback)"
    assert health["replies"]["fetched"] >= health["replies"]["kept"] >= 1
    status, text = gateway.call("GET", "/metrics")
    assert status == 200 and "streaming_rec_gateway_request_duration_seconds_bucket" in text
    assert 'streaming_rec_gateway_reply_records{outcome="kept"}' in text
