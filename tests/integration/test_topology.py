"""The two-stage topology: an embed-only worker (SREC_ROLE=embed) encodes queries into
`embedded-queries`; a rank worker (SREC_ROLE=rank) answers them next to the user state,
without encoding. Same answers as the one-stage worker, feedback still personalises."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import WorkerProcess, free_port_pair, worker_env
from tests.integration.test_loop import ask_until

pytestmark = pytest.mark.integration

CATALOG = 400


def test_embed_workers_encode_and_rank_workers_answer(
    own_topics: Settings, movies: list[Movie], tmp_path: Path
) -> None:
    rank = WorkerProcess(
        worker_env(own_topics, "rank-0", SREC_ROLE="rank"),
        tmp_path / "rank.log",
        own_topics.web_port,
    )
    embed_port = free_port_pair()
    embed = WorkerProcess(
        worker_env(
            own_topics,
            "embed-0",
            SREC_ROLE="embed",
            SREC_WEB_PORT=str(embed_port),
            SREC_DATA_DIR=str(tmp_path / "embed"),
        ),
        tmp_path / "embed.log",
        embed_port,
    )
    genres = {m.item_id: m.genres for m in movies}
    with RecClient(own_topics) as client:
        for movie in movies[:CATALOG]:
            client.upsert_item(movie.as_item())
        client.flush()
        try:
            rank.start()
            embed.start()
            rank.wait_ready(min_items=CATALOG, timeout=240)
            assert embed.wait_ready(timeout=240)["role"] == "embed"
            reply = client.ask("u-topo", "a funny animated film for children", k=10, timeout=60)
            assert reply.status == "ok" and reply.strategy == "query"
            assert reply.worker == "rank-0"
            assert reply.timings.embed_ms > 0  # done by the embed worker, carried along
            kids = [
                i for i in reply.items[:5] if {"Animation", "Children's"} & set(genres[i.item_id])
            ]
            assert len(kids) >= 3, [(i.title, genres[i.item_id]) for i in reply.items]
            # feedback goes to the rank worker as before: "for you" follows the clicks
            user = f"u-topo-{uuid.uuid4().hex[:6]}"
            westerns = [m for m in movies[:CATALOG] if "Western" in m.genres][:3]
            for movie in westerns:
                client.feedback(user, movie.item_id, "click")
            client.flush()
            feed = ask_until(client, user, lambda r: r.user_events == len(westerns), text="")
            assert feed.strategy == "personal" and feed.user_events == len(westerns)
        finally:
            for worker in (embed, rank):
                worker.stop(timeout=30)
