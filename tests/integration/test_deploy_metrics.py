"""What deploy/ watches exists: a real worker and trainer (real broker, real model) are
scraped, and every metric and label that the Grafana dashboard and the alert rules query is
in their /metrics; every alert expression parses (promql-parser). The probes answer as the
Kubernetes manifests expect: /ready 503 until /health says ready, then 200; /live 200 all
along (a loading worker is not wedged)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streaming_rec.config import Settings
from streaming_rec.edge.client import RecClient
from streaming_rec_dev import deploy_check
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import WorkerProcess, free_port_pair, worker_env

pytestmark = pytest.mark.integration
CATALOG = 1000
# what this test cannot make a real worker do in seconds: a corrupt record batch
# (tests/integration/test_codecs.py makes one); checked as declared by the instrument
NO_SAMPLE_EXPECTED = {"streaming_rec_unreadable_batches_total"}


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def exposed(port: int) -> tuple[dict[str, set[str]], set[str]]:
    """Sample names → label names seen, and the metric families declared (with HELP)."""
    status, body = get(port, "/metrics")
    assert status == 200
    samples: dict[str, set[str]] = {}
    declared: set[str] = set()
    for family in text_string_to_metric_families(body.decode()):
        declared.add(family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples, declared


def test_the_dashboard_and_the_alerts_query_what_a_worker_and_the_trainer_expose(
    own_topics: Settings, movies: list[Movie], tmp_path: Path
) -> None:
    queries = deploy_check.all_queries()  # raises if an expression does not parse
    assert len(deploy_check.alert_rules()) >= 4

    with RecClient(own_topics, listen=False) as client:
        for movie in movies[:CATALOG]:
            client.upsert_item(movie.as_item())
        client.flush()
    trainer_port = free_port_pair()
    worker = WorkerProcess(
        worker_env(own_topics, "metrics-worker", SREC_TRAINER_WEB_PORT=str(trainer_port)),
        tmp_path / "worker.log",
        own_topics.web_port,
    )
    trainer = WorkerProcess(
        worker_env(
            own_topics,
            "metrics-trainer",
            SREC_TRAINER_WEB_PORT=str(trainer_port),
            SREC_TRAINER_INTERVAL_S="1",
            SREC_DATA_DIR=str(tmp_path / "trainer"),
        ),
        tmp_path / "trainer.log",
        trainer_port,
        command="trainer",
    )
    worker.start()
    trainer.start()
    try:
        # /ready mirrors /health's "ready" in its status code, 503 first, then 200
        seen: list[int] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and 200 not in seen:
            assert worker.alive(), worker.log_tail()
            try:
                status, body = get(own_topics.web_port, "/ready")
            except OSError:  # the web server is not up yet
                time.sleep(0.1)
                continue
            assert status == (200 if orjson.loads(body)["ready"] else 503)
            if not seen or seen[-1] != status:
                seen.append(status)
                live_status, _ = get(own_topics.web_port, "/live")
                assert live_status == 200  # loading is not wedged
            time.sleep(0.05)
        assert seen == [503, 200], (seen, worker.log_tail())
        trainer.wait_ready(timeout=120)
        assert get(trainer_port, "/ready")[0] == 200
        assert orjson.loads(get(trainer_port, "/live")[1]) == {"live": True}

        # traffic: answers, clicks the blend and the trainer learn from, one dead letter
        with RecClient(own_topics) as client:
            for i in range(10):
                reply = client.ask(f"user-{i}", "a funny animated film", timeout=30)
                client.feedback(
                    f"user-{i}", reply.items[0].item_id, "click", request_id=reply.request_id
                )
            client.send_raw("queries", b"user-x", b"not json")
            client.flush()

        wanted = {m for q in queries for m in q.our_metrics}
        samples: dict[str, set[str]] = {}
        declared: set[str] = set()
        deadline = time.monotonic() + 60  # lag is sampled every 5 s, refreshes every 1 s
        while time.monotonic() < deadline:
            samples, declared = {}, set()
            for port in (own_topics.web_port, trainer_port):
                got, names = exposed(port)
                for name, labels in got.items():
                    samples.setdefault(name, set()).update(labels)
                declared |= names
            if wanted - NO_SAMPLE_EXPECTED <= set(samples):
                break
            time.sleep(1)
    finally:
        worker.stop(timeout=30)
        trainer.stop(timeout=30)

    missing = sorted(wanted - NO_SAMPLE_EXPECTED - set(samples))
    assert not missing, f"queried but not exposed: {missing}\n{worker.log_tail()}"
    for name in NO_SAMPLE_EXPECTED & wanted:
        assert name.removesuffix("_total") in declared, name
    for query in queries:
        for name, labels in query.our_metrics.items():
            if name in samples:
                assert labels <= samples[name], (query.where, name, labels, samples[name])
        grouped = set().union(*(samples.get(n, set()) for n in query.metrics)) | {"job"}
        if any(n in NO_SAMPLE_EXPECTED for n in query.metrics):
            continue
        assert query.grouping <= grouped | deploy_check.TARGET_LABELS, (query.where, grouped)
    # the figures the dashboard's main panels show are real numbers of this run
    assert "streaming_rec_stage_seconds_bucket" in samples
    assert {"topic", "partition"} <= samples["streaming_rec_consumer_lag_records"]
    assert {"version", "role", "model", "encoder"} <= samples["streaming_rec_build_info"]
