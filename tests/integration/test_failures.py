"""Failures on a real broker with real worker processes: a worker whose broker vanished
still exits on SIGTERM; killing one of two workers under load, or stopping the broker and
starting it again, loses no query and no feedback event, and counts none twice; a table
recovery that hangs is restarted. Most tests start a broker of their own so the session
broker is untouched."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import (
    KAFKA_SH,
    WorkerProcess,
    free_port_pair,
    fresh_topics,
    worker_env,
)
from tests.integration.test_loop import ask_until

pytestmark = pytest.mark.integration

CATALOG = 200


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A broker of this test's own; yields (bootstrap, env for kafka.sh)."""
    port = free_port_pair()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_DATA_DIR": str(tmp_path / "kafka"),
        "KAFKA_HEAP": "-Xmx512m",
        "KAFKA_STOP_TIMEOUT": "5",
    }
    subprocess.run([str(KAFKA_SH), "start"], env=env, timeout=600, check=True)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, timeout=60, check=False)


def counter(worker: WorkerProcess, name: str) -> float:
    """A counter from the worker's /metrics (0 when it was never incremented)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def with_catalog(bootstrap: str, data_dir: Path, movies: list[Movie]) -> Settings:
    """Topics of this test's own, with the first CATALOG movies in `items`."""
    settings = fresh_topics(bootstrap, data_dir, "f")
    with RecClient(settings, listen=False) as client:
        for movie in movies[:CATALOG]:
            client.upsert_item(movie.as_item())
        client.flush()
    return settings


def one_worker(settings: Settings, tmp_path: Path, name: str) -> WorkerProcess:
    """A worker process of ``settings`` (not started)."""
    return WorkerProcess(worker_env(settings, name), tmp_path / "w.log", settings.web_port)


def test_sigterm_exits_within_10_s_when_the_broker_is_gone(
    own_broker: tuple[str, dict[str, str]], movies: list[Movie], tmp_path: Path
) -> None:
    bootstrap, broker_env = own_broker
    settings = with_catalog(bootstrap, tmp_path / "worker", movies)
    worker = one_worker(settings, tmp_path, "fail-worker")
    worker.start()
    try:
        worker.wait_ready(min_items=CATALOG, timeout=240)
        subprocess.run([str(KAFKA_SH), "stop"], env=broker_env, timeout=60, check=False)
        time.sleep(3)  # let the worker notice
        assert worker.alive()
        seconds = worker.stop(timeout=30)
        print(f"SIGTERM exit with the broker gone: {seconds:.1f} s")
        assert seconds < 10, f"took {seconds:.1f} s:\n{worker.log_tail()}"
    finally:
        worker._kill()


@dataclass
class Load:
    """What a steady load sent: query send times (wall clock) and clicks per user."""

    users: list[str]
    sent: dict[str, float] = field(default_factory=dict)
    clicks: dict[str, int] = field(default_factory=dict)


def two_workers(settings: Settings, tmp_path: Path, name: str) -> list[WorkerProcess]:
    """Two worker processes of one group (not started): ports and data folders apart."""
    workers = []
    for n in range(2):
        port = settings.web_port if n == 0 else free_port_pair()
        env = worker_env(
            settings, f"{name}-w{n}", SREC_WEB_PORT=str(port), SREC_DATA_DIR=str(tmp_path / f"w{n}")
        )
        workers.append(WorkerProcess(env, tmp_path / f"w{n}.log", port))
    return workers


def steady_load(
    client: RecClient,
    users: list[str],
    items: list[str],
    seconds: float,
    fault_at: float,
    fault: Callable[[], None],
) -> Load:
    """~17 queries and ~17 clicks a second for ``seconds``; ``fault()`` is started in a
    thread ``fault_at`` seconds in, and the load goes on meanwhile."""
    load = Load(users, clicks=dict.fromkeys(users, 0))
    started = time.monotonic()
    faulting: threading.Thread | None = None
    i = 0
    while time.monotonic() - started < seconds:
        user = users[i % len(users)]
        load.sent[client.send_query(user, "an adventure", k=5)] = time.time()
        client.feedback(user, items[i % len(items)], "click")
        load.clicks[user] += 1
        if faulting is None and time.monotonic() - started >= fault_at:
            faulting = threading.Thread(target=fault)
            faulting.start()
        i += 1
        time.sleep(0.05)
    assert faulting is not None
    faulting.join()
    client.flush(timeout=120)
    return load


def assert_nothing_lost(
    client: RecClient, load: Load, worker: WorkerProcess, settings: Settings
) -> dict[str, str]:
    """Every query sent is answered and every click is in its user's state exactly once
    (none lost, none counted twice when a partition is read again after the fault).
    Returns the worker that answered each query."""
    answered: dict[str, float] = {}
    answered_by: dict[str, str] = {}
    lost = []
    for request_id, at in load.sent.items():
        try:
            reply = client.wait(request_id, timeout=max(1.0, at + 90 - time.time()))
            answered[request_id] = reply.produced_at - at
            answered_by[request_id] = reply.worker
        except Exception:
            lost.append(request_id)
    print(
        f"queries sent {len(load.sent)}, lost {len(lost)}; slowest answer "
        f"{max(answered.values(), default=0):.1f} s after its send"
    )
    assert not lost
    wrong = {}
    for user in load.users:
        reply = ask_until(
            client,
            user,
            lambda r, u=user: r.user_events >= load.clicks[u],
            timeout=60,
            text="",
            k=5,
        )
        if reply.user_events != load.clicks[user]:
            wrong[user] = (load.clicks[user], reply.user_events)
    print(f"users whose state is not every click once (sent, in state): {len(wrong)} {wrong}")
    for topic in ("queries", "feedback"):
        for outcome in ("redelivered", "dead_letter"):
            count = counter(
                worker,
                f'streaming_rec_messages_total{{outcome="{outcome}",'
                f'topic="{settings.topic(topic)}"}}',
            )
            print(f"{topic} {outcome}: {count:.0f}")
            if outcome == "dead_letter":  # a redelivery is not bad input
                assert count == 0
    assert not wrong
    return answered_by


def new_users(client: RecClient, prefix: str) -> list[str]:
    """40 users, each answered once before the load starts."""
    users = [f"{prefix}-{i}-{uuid.uuid4().hex[:4]}" for i in range(40)]
    for user in users:
        client.ask(user, "", k=5, timeout=60)
    return users


def test_kill_9_of_one_of_two_workers_loses_no_query_and_no_feedback(
    own_broker: tuple[str, dict[str, str]], movies: list[Movie], tmp_path: Path
) -> None:
    bootstrap, _ = own_broker
    settings = with_catalog(bootstrap, tmp_path / "w0", movies)
    workers = two_workers(settings, tmp_path, "fail")
    with RecClient(settings) as client:
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.wait_ready(min_items=CATALOG, timeout=240)
            users = new_users(client, "u-kill")
            items = [m.item_id for m in movies[:CATALOG]]
            load = steady_load(
                client, users, items, 20, 8, lambda: workers[1].stop(sig=signal.SIGKILL)
            )
            assert_nothing_lost(client, load, workers[0], settings)
        finally:
            for worker in workers:
                worker._kill()


def test_the_broker_stopped_and_started_again_under_load_loses_nothing(
    own_broker: tuple[str, dict[str, str]], movies: list[Movie], tmp_path: Path
) -> None:
    bootstrap, broker_env = own_broker
    settings = with_catalog(bootstrap, tmp_path / "worker", movies)
    worker = one_worker(settings, tmp_path, "broker-restart")
    outage: dict[str, float] = {}

    def restart_broker() -> None:
        outage["stop"] = time.time()
        subprocess.run([str(KAFKA_SH), "stop"], env=broker_env, timeout=60, check=True)
        time.sleep(5)  # the broker stays away for a while
        subprocess.run([str(KAFKA_SH), "start"], env=broker_env, timeout=300, check=True)
        outage["back"] = time.time()

    with RecClient(settings) as client:
        try:
            worker.start()
            worker.wait_ready(min_items=CATALOG, timeout=240)
            users = new_users(client, "u-broker")
            items = [m.item_id for m in movies[:CATALOG]]
            load = steady_load(client, users, items, 25, 5, restart_broker)
            print(f"broker away {outage['back'] - outage['stop']:.1f} s")
            assert worker.alive(), worker.log_tail()
            assert_nothing_lost(client, load, worker, settings)
        finally:
            worker._kill()


def test_a_second_worker_joining_under_load_takes_partitions_and_their_users(
    kafka_bootstrap: str, movies: list[Movie], tmp_path: Path
) -> None:
    """`make run-workers WORKERS=2` in motion: the group rebalances when a worker joins,
    the users of the partitions that move are served by the new worker with their state
    (recovered from the changelog), and nothing is lost or counted twice."""
    settings = with_catalog(kafka_bootstrap, tmp_path / "w0", movies)
    workers = two_workers(settings, tmp_path, "join")

    def join() -> None:
        workers[1].start()
        workers[1].wait_ready(min_items=CATALOG, timeout=240)

    with RecClient(settings) as client:
        try:
            workers[0].start()
            workers[0].wait_ready(min_items=CATALOG, timeout=240)
            users = new_users(client, "u-join")
            items = [m.item_id for m in movies[:CATALOG]]
            load = steady_load(client, users, items, 25, 3, join)
            answered_by = assert_nothing_lost(client, load, workers[0], settings)
            last = sorted(load.sent, key=load.sent.__getitem__)[-50:]
            by_worker = Counter(answered_by[r] for r in last)
            print(f"the last 50 queries answered by {dict(by_worker)}")
            assert set(by_worker) == {"join-w0", "join-w1"}  # the partitions were split
        finally:
            for worker in workers:
                worker._kill()


def test_a_hung_table_recovery_is_restarted_and_the_user_state_comes_back(
    kafka_bootstrap: str, movies: list[Movie], tmp_path: Path
) -> None:
    """The recovery-hang class of faust-streaming (seen once in CI after a kill -9): a
    worker's recovery of the user-state changelog never receives a record. The fault is
    injected (tests/integration/hung_recovery_worker.py drops the first resume of the
    changelog partitions); the worker must notice within SREC_RECOVERY_STALL_S, rejoin its
    group, recover the state and answer with it."""
    settings = with_catalog(kafka_bootstrap, tmp_path / "w", movies)
    user = f"u-hung-{uuid.uuid4().hex[:6]}"
    items = [m.item_id for m in movies[:5]]
    first = one_worker(settings, tmp_path, "hung-a")
    hung = WorkerProcess(
        worker_env(settings, "hung-b", SREC_RECOVERY_STALL_S="5"),
        tmp_path / "hung.log",
        settings.web_port,
        argv=[str(Path(__file__).with_name("hung_recovery_worker.py"))],
    )
    with RecClient(settings) as client:
        try:
            first.start()
            first.wait_ready(min_items=CATALOG, timeout=240)
            for item in items:
                client.feedback(user, item, "click")
            client.flush()
            before = ask_until(client, user, lambda r: r.user_events == len(items), text="")
            assert before.user_events == len(items)
            first.stop()

            started = time.monotonic()
            hung.start()
            hung.wait_ready(min_items=CATALOG, timeout=240)
            after = client.ask(user, "", timeout=90)  # answered once recovered
            print(
                f"answered with the recovered state {time.monotonic() - started:.1f} s after start"
            )
            log = hung.log_path.read_text(errors="replace")
            assert "fault: the resume of" in log  # the hang was injected
            assert after.user_events == len(items), hung.log_tail()
            assert "rejoining the consumer group to restart it" in log
            assert counter(hung, "streaming_rec_recovery_restarts_total") >= 1
        finally:
            first._kill()
            hung._kill()
