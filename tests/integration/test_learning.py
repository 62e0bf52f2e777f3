"""The ranking learns from the stream: clicks that name their request_id move the blend
weights, which every later reply and /metrics show; exploration slots log propensities."""

from __future__ import annotations

import re
import urllib.request

import pytest

from streaming_rec.edge.client import RecClient
from streaming_rec_dev.devstack import WorkerProcess
from tests.integration.test_loop import ask_until

pytestmark = pytest.mark.integration


def metric(worker: WorkerProcess, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_clicks_on_shown_items_move_the_blend_the_next_replies_use(
    worker: WorkerProcess, client: RecClient
) -> None:
    user = "u-learns"
    first = client.ask(user, "a space adventure", k=10)
    assert first.explanation is not None
    before = first.explanation
    # the user ignores the best text matches and clicks the last item shown, three times
    reply = first
    for clicked in range(1, 4):
        client.feedback(user, reply.items[-1].item_id, "click", request_id=reply.request_id)
        client.flush()
        reply = ask_until(
            client,
            user,
            lambda r, n=clicked: (
                r.explanation is not None
                and r.explanation.learned_pairs >= before.learned_pairs + 9 * n
            ),
            text="a space adventure",
            k=10,
        )
    after = reply.explanation
    assert after is not None and after.learned_pairs >= before.learned_pairs + 27, after
    # the text match did not predict these clicks: its weight went down
    assert after.alpha < before.alpha, (before, after)
    assert metric(worker, "streaming_rec_blend_learned_pairs") == after.learned_pairs
    assert metric(worker, 'streaming_rec_blend_weight{name="alpha"}') == pytest.approx(
        after.alpha, abs=1e-3
    )


def test_exploration_slots_are_marked_with_their_propensity(
    worker: WorkerProcess, client: RecClient
) -> None:
    share = None
    explored = exploited = 0
    for n in range(30):
        reply = client.ask(f"u-explore-{n}", "a thriller set in a big city", k=10)
        assert reply.explanation is not None
        share = reply.explanation.explore_share
        assert [i.explored for i in reply.items[:3]] == [False] * 3
        for item in reply.items[3:]:
            if item.explored:
                explored += 1
                assert 0 < item.propensity < share
            else:
                exploited += 1
                assert item.propensity == pytest.approx(1 - share)
    assert share == 0.05
    # 210 eligible slots at 5%: about 10 explored (P[none] = 0.95^210 ≈ 2e-5)
    assert 1 <= explored <= 40 and explored + exploited == 210
