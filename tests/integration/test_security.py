"""SASL_SSL end to end: a broker of this module's own with a SASL_SSL listener (SASL/PLAIN
over TLS, certificates made here with openssl), topics created, a worker and the trainer
started over SASL_SSL, then: RecClient and the CLI are answered; a wrong password and a CA
the client does not trust are refused within a bound; the password is in no log and in no
error text."""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streaming_rec.config import Settings, load_settings
from streaming_rec.edge.admin import ensure_topics
from streaming_rec.edge.client import RecClient
from streaming_rec.edge.kafka_config import client_config
from streaming_rec.topics import TopicCatalog
from streaming_rec_dev.datasets.movielens import Movie
from streaming_rec_dev.devstack import KAFKA_SH, ROOT, WorkerProcess, free_port_pair, worker_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
]

CATALOG = 100
USER = "srec-app"
# Unique per run, so that finding one in a log can only be a leak.
PASSWORD = f"Pw-{secrets.token_hex(12)}"
WRONG_PASSWORD = f"Wrong-{secrets.token_hex(12)}"
REFUSAL_BOUND_S = 60.0  # kafka-python gives up after its 30 s bootstrap timeout


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip


@dataclass(frozen=True)
class Pki:
    ca: Path  # signed the broker's certificate
    other_ca: Path  # a CA that signed nothing of ours
    broker_dir: Path  # broker.key + broker.crt, for kafka.sh (KAFKA_SSL_DIR)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    make_ca(folder, "ca")
    make_ca(folder, "other-ca")
    broker = folder / "broker"
    broker.mkdir()
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("genpkey", "-algorithm", "RSA", "-out", "broker/broker.key", cwd=folder)  # PKCS#8
    openssl(
        "req", "-new", "-key", "broker/broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1",
        cwd=folder,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "broker/broker.crt",
        cwd=folder,
    )  # fmt: skip
    return Pki(folder / "ca.crt", folder / "other-ca.crt", broker)


@pytest.fixture(scope="module")
def sasl_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A broker of this module's own with a SASL_SSL listener; yields (its SASL_SSL
    bootstrap, its data folder). Stopped whatever happens."""
    port, sasl_port = free_port_pair(), free_port_pair()
    data_dir = tmp_path_factory.mktemp("kafka-sasl")
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_DATA_DIR": str(data_dir),
        "KAFKA_HEAP": "-Xmx512m",
        "KAFKA_STOP_TIMEOUT": "5",
        "KAFKA_SASL_SSL_PORT": str(sasl_port),
        "KAFKA_SSL_DIR": str(pki.broker_dir),
        "KAFKA_SASL_USERS": f"{USER}:{PASSWORD}",
    }

    def stop() -> None:
        subprocess.run([str(KAFKA_SH), "stop"], env=env, timeout=60, check=False)

    atexit.register(stop)  # also when pytest dies before the finally below
    try:
        subprocess.run([str(KAFKA_SH), "start"], env=env, timeout=600, check=True)
        yield f"127.0.0.1:{sasl_port}", data_dir
    finally:
        stop()
        atexit.unregister(stop)


def sasl_settings(bootstrap: str, ca: Path, password: str = PASSWORD, **extra: object) -> Settings:
    return load_settings(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username=USER,
        sasl_password=password,
        ssl_cafile=ca,
        **extra,
    )


def security_env(settings: Settings) -> dict[str, str]:
    """The SREC_ security variables of ``settings`` (for a worker or CLI process)."""
    assert settings.sasl_password is not None
    return {
        "SREC_SECURITY_PROTOCOL": settings.security_protocol,
        "SREC_SASL_MECHANISM": str(settings.sasl_mechanism),
        "SREC_SASL_USERNAME": str(settings.sasl_username),
        "SREC_SASL_PASSWORD": settings.sasl_password.get_secret_value(),
        "SREC_SSL_CAFILE": str(settings.ssl_cafile),
    }


def cli(settings: Settings, *args: str) -> subprocess.Popen[str]:
    env = worker_env(settings, "cli", **security_env(settings))
    return subprocess.Popen(
        [sys.executable, "-m", "streaming_rec", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@dataclass
class Refusal:
    """A CLI run that should be refused: its output, exit code and duration."""

    process: subprocess.Popen[str]
    started: float
    output: str = ""
    seconds: float = 0.0

    def finish(self) -> Refusal:
        if self.process.returncode is None:
            try:
                self.output, _ = self.process.communicate(timeout=REFUSAL_BOUND_S + 30)
            finally:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait(10)
            self.seconds = time.monotonic() - self.started
        return self


@dataclass
class Stack:
    settings: Settings
    worker: WorkerProcess
    trainer: WorkerProcess
    broker_dir: Path
    wrong_password: Refusal
    untrusted_ca: Refusal
    pki: Pki


@pytest.fixture(scope="module")
def stack(
    sasl_broker: tuple[str, Path],
    pki: Pki,
    movies: list[Movie],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    bootstrap, broker_dir = sasl_broker
    tag = uuid.uuid4().hex[:8]
    folder = tmp_path_factory.mktemp("secure")
    settings = sasl_settings(
        bootstrap,
        pki.ca,
        topic_prefix=f"s{tag}.",
        app_id=f"srec-sec-{tag}",
        data_dir=folder / "worker",
        web_port=free_port_pair(),
        trainer_web_port=free_port_pair(),
    )
    ensure_topics(settings, TopicCatalog.load())  # the admin helper, over SASL_SSL
    with RecClient(settings, listen=False) as client:
        for movie in movies[:CATALOG]:
            client.upsert_item(movie.as_item())
        client.flush()
    # The two refusals take kafka-python's bootstrap timeout: run them while the worker
    # loads its model.
    wrong = sasl_settings(bootstrap, pki.ca, WRONG_PASSWORD, topic_prefix=settings.topic_prefix)
    untrusting = sasl_settings(bootstrap, pki.other_ca, topic_prefix=settings.topic_prefix)
    refusals = [
        Refusal(cli(s, "ask", "a film", "-u", "intruder", "--timeout", "5"), time.monotonic())
        for s in (wrong, untrusting)
    ]
    env = worker_env(settings, "sec-worker", **security_env(settings))
    worker = WorkerProcess(env, folder / "worker.log", settings.web_port)
    trainer_env = worker_env(settings, "sec-trainer", **security_env(settings))
    trainer = WorkerProcess(
        trainer_env, folder / "trainer.log", settings.trainer_web_port, command="trainer"
    )
    try:
        worker.start()
        trainer.start()
        worker.wait_ready(min_items=CATALOG, timeout=180)
        trainer.wait_ready(timeout=120)
        yield Stack(settings, worker, trainer, broker_dir, refusals[0], refusals[1], pki)
    finally:
        for process in (worker, trainer):
            try:
                process.stop(timeout=30)
            finally:
                process._kill()
        for refusal in refusals:
            if refusal.process.poll() is None:
                refusal.process.kill()
                refusal.process.wait(10)


def test_a_query_through_recclient_is_answered_over_sasl_ssl(stack: Stack) -> None:
    with RecClient(stack.settings) as client:
        # understand=False: the text as it is (parsed, "children" is a hard category filter
        # that the test's small catalog fills with fewer than 5 films)
        reply = client.ask(
            "sec-alice", "a funny animated film for children", k=5, timeout=30, understand=False
        )
        assert reply.status == "ok" and len(reply.items) == 5
        client.feedback("sec-alice", reply.items[0].item_id, "click", request_id=reply.request_id)
        client.flush()


def test_the_cli_asks_over_sasl_ssl(stack: Stack) -> None:
    process = cli(stack.settings, "ask", "a space adventure", "-u", "sec-bob", "-k", "3")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "strategy query" in output
    assert PASSWORD not in output


def test_the_trainer_runs_over_sasl_ssl(stack: Stack) -> None:
    health = stack.trainer.health()
    assert health is not None and health["ready"], stack.trainer.log_tail()


def test_a_wrong_password_is_refused_within_a_bound(stack: Stack) -> None:
    # kafka-python (RecClient, CLI): the broker closes the connection; the client gives up
    # after its bootstrap timeout with an error, it does not hang.
    refusal = stack.wrong_password.finish()
    print(f"CLI with a wrong password: exit {refusal.process.returncode} after "
          f"{refusal.seconds:.1f} s: {refusal.output.strip().splitlines()[-1]}")  # fmt: skip
    assert refusal.process.returncode not in (0, None)
    assert refusal.seconds < REFUSAL_BOUND_S
    assert "Unable to bootstrap" in refusal.output
    for secret in (WRONG_PASSWORD, PASSWORD):
        assert secret not in refusal.output
    # aiokafka (the trainer's and the worker's client): the broker's reason, at once.
    wrong = sasl_settings(stack.settings.bootstrap_servers, stack.pki.ca, WRONG_PASSWORD)
    started = time.monotonic()
    error = asyncio.run(aiokafka_start_error(wrong))
    print(f"aiokafka with a wrong password: {time.monotonic() - started:.1f} s: {error}")
    assert "Authentication failed" in error
    assert WRONG_PASSWORD not in error


def test_a_client_that_does_not_trust_the_ca_is_refused(stack: Stack) -> None:
    refusal = stack.untrusted_ca.finish()
    print(f"CLI trusting another CA: exit {refusal.process.returncode} after "
          f"{refusal.seconds:.1f} s")  # fmt: skip
    assert refusal.process.returncode not in (0, None)
    assert refusal.seconds < REFUSAL_BOUND_S
    assert "CERTIFICATE_VERIFY_FAILED" in refusal.output
    assert PASSWORD not in refusal.output
    untrusting = sasl_settings(stack.settings.bootstrap_servers, stack.pki.other_ca)
    error = asyncio.run(aiokafka_start_error(untrusting))
    assert "CERTIFICATE_VERIFY_FAILED" in error, error


def test_the_password_is_in_no_log(stack: Stack) -> None:
    # After the others (file order): the worker has answered queries by now.
    stack.wrong_password.finish()
    stack.untrusted_ca.finish()
    texts = {
        "worker log": stack.worker.log_path.read_text(errors="replace"),
        "trainer log": stack.trainer.log_path.read_text(errors="replace"),
        "broker log": (stack.broker_dir / "broker.log").read_text(errors="replace"),
        "wrong-password CLI": stack.wrong_password.output,
        "untrusted-CA CLI": stack.untrusted_ca.output,
    }
    for name, text in texts.items():
        for secret in (PASSWORD, WRONG_PASSWORD):
            assert secret not in text, f"{name} holds a password"


async def aiokafka_start_error(settings: Settings) -> str:
    """The error (text, with what aiokafka logged) of starting an aiokafka producer."""
    import logging

    from aiokafka import AIOKafkaProducer

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("aiokafka")
    logger.addHandler(handler)
    producer = AIOKafkaProducer(**client_config(settings), request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(producer.start(), timeout=30)
    except Exception as exc:
        return " | ".join([*records, f"{type(exc).__name__}: {exc}"])
    finally:
        logger.removeHandler(handler)
        await producer.stop()
    raise AssertionError("aiokafka connected")
