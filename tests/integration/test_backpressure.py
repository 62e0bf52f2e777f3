"""Back-pressure: a flood of queries far beyond what one worker can answer keeps its memory
bounded and the worker alive; the group's lag grows, then drains; every query gets a reply
(an answer, or "expired" once it is older than the deadline); a query after the flood is
answered at the usual speed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec.edge.lag import LagProbe
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import WorkerProcess, worker_env

pytestmark = pytest.mark.integration

FLOOD = 8000  # ~30× what the worker answers in a second on this machine
DEADLINE_MS = 8000
TEXTS = (
    "a slow thoughtful drama about family secrets",
    "a small town comedy with great actors",
    "space adventure with robots and aliens",
    "a scary haunted house on a stormy night",
    "animated film for children about talking animals",
)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_a_flood_keeps_memory_bounded_and_the_backlog_drains(
    own_topics: Settings, movies: list[Movie], tmp_path: Path
) -> None:
    env = worker_env(own_topics, "flood-worker", SREC_QUERY_DEADLINE_MS=str(DEADLINE_MS))
    worker = WorkerProcess(env, tmp_path / "worker.log", own_topics.web_port)
    with RecClient(own_topics) as client, LagProbe(own_topics) as probe:
        for movie in movies[:300]:
            client.upsert_item(movie.as_item())
        client.flush()
        worker.start()
        try:
            worker.wait_ready(min_items=300, timeout=240)
            assert worker.process is not None
            pid = worker.process.pid
            client.ask("u-before", "a comedy", k=10, timeout=30)
            baseline = rss_mib(pid)
            samples: list[tuple[float, float, int]] = []  # (t, rss MiB, queries lag)
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    samples.append((time.monotonic(), rss_mib(pid), probe.lag("queries")))
                    time.sleep(0.5)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            sent = []
            for i in range(FLOOD):
                text = f"{TEXTS[i % len(TEXTS)]} {i}"
                sent.append(client.send_query(f"u-flood-{i % 500}", text, k=10))
            client.flush()
            flood_s = time.monotonic() - started
            replies = {}
            for request_id in sent:
                replies[request_id] = client.wait(request_id, timeout=180)
            drained_s = time.monotonic() - started
            # the group commits what it answered: the lag goes back to zero
            deadline = time.monotonic() + 30
            while probe.lag("queries") > 0 and time.monotonic() < deadline:
                time.sleep(0.5)
            done.set()
            sampler.join()
            final_lag = probe.lag("queries")
            assert worker.alive(), worker.log_tail()
            after = client.ask("u-after", "a comedy", k=10, timeout=30)
            statuses = Counter(r.status for r in replies.values())
            peak_rss = max(s[1] for s in samples)
            peak_lag = max(s[2] for s in samples)
            print(
                f"flood of {FLOOD} sent in {flood_s:.1f} s, all replied in {drained_s:.1f} s "
                f"({statuses}); lag peak {peak_lag}, final {final_lag}; worker RSS "
                f"{baseline:.0f} → peak {peak_rss:.0f} MiB; next query "
                f"{after.timings.total_ms:.0f} ms in the worker"
            )
            assert set(statuses) <= {"ok", "expired"} and statuses["expired"] > 0
            assert peak_lag > 1000  # the flood was beyond capacity: a backlog built up
            assert final_lag == 0
            assert peak_rss - baseline < 300, "memory grew with the backlog"
            assert after.status == "ok" and after.timings.total_ms < 1000
        finally:
            worker.stop(timeout=30)
