"""A worker stopped and started again keeps the user vectors (changelog) and the index."""

from __future__ import annotations

import uuid

import pytest

from streaming_rec.edge.client import RecClient
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import WorkerProcess
from tests.integration.test_loop import ask_until

pytestmark = pytest.mark.integration


def test_restart_keeps_user_state_and_index(
    worker: WorkerProcess, client: RecClient, movies: list[Movie]
) -> None:
    user = f"u-restart-{uuid.uuid4().hex[:6]}"
    westerns = [m for m in movies if "Western" in m.genres][:4]
    for movie in westerns:
        client.feedback(user, movie.item_id, "click")
    client.flush()
    before = ask_until(client, user, lambda r: r.user_events == len(westerns), text="", k=10)
    assert before.user_events == len(westerns)
    size_before = before.index_size

    exit_seconds = worker.stop()
    assert exit_seconds < 10, f"SIGTERM exit took {exit_seconds:.1f} s"
    worker.start()
    worker.wait_ready(min_items=size_before, timeout=240)

    after = client.ask(user, "", k=10, timeout=30)
    assert after.user_events == len(westerns) and after.strategy == "personal"
    assert after.index_size == size_before
    # the same state, index and (restored) blend give the same ranking; from the 4th slot
    # on a slot may explore, drawn per request (tests/unit/test_learner.py)
    assert after.explanation == before.explanation
    assert [i.item_id for i in after.items[:3]] == [i.item_id for i in before.items[:3]]
    # the items ranked by score in both answers come in the same order (an explored slot
    # replaces a different position in each)
    exploited_before = [i.item_id for i in before.items if not i.explored]
    exploited_after = [i.item_id for i in after.items if not i.explored]
    common_before = [i for i in exploited_before if i in set(exploited_after)]
    common_after = [i for i in exploited_after if i in set(exploited_before)]
    assert common_after == common_before and len(common_before) >= 3
