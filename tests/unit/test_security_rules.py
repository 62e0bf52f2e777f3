"""Security rules that need no broker: every client gets the same TLS and SASL settings
(kafka-python/aiokafka keyword arguments, Faust credentials as Faust turns them into
aiokafka's), a half-made security setup is refused, the password shows in no repr, the
web endpoints bind 127.0.0.1 by default, and no module deserializes with pickle/marshal
or runs eval/exec."""

from __future__ import annotations

import ast
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streaming_rec.config import Settings, load_settings
from streaming_rec.edge.kafka_config import client_config, faust_broker_kwargs, ssl_context
from streaming_rec.errors import ConfigError

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "streaming_rec"
PASSWORD = "unit-Secret-9f2c"
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}
BANNED_CALLS = {"eval", "exec", "compile", "__import__"}


@pytest.fixture(autouse=True)
def _no_srec_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("SREC_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


def sasl(protocol: str = "SASL_SSL", **extra: object) -> Settings:
    return load_settings(
        bootstrap_servers="b1:9093, b2:9093",
        security_protocol=protocol,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="app",
        sasl_password=PASSWORD,
        **extra,
    )


# --- what each client is given --------------------------------------------------------------
def test_sasl_ssl_gives_kafka_python_and_aiokafka_sasl_and_a_verifying_tls_context() -> None:
    config = client_config(sasl())
    assert config["bootstrap_servers"] == ["b1:9093", "b2:9093"]
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "app"
    assert config["sasl_plain_password"] == PASSWORD
    context = config["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_faust_gets_the_same_credentials_as_aiokafka_would() -> None:
    settings = sasl()
    credentials = faust_broker_kwargs(settings)["broker_credentials"]
    auth = credentials_to_aiokafka_auth(credentials)  # what Faust hands to aiokafka
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "app"
    assert auth["sasl_plain_password"] == PASSWORD
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert PASSWORD not in repr(credentials)


def test_sasl_plaintext_has_no_tls_and_ssl_alone_no_sasl() -> None:
    auth = credentials_to_aiokafka_auth(
        faust_broker_kwargs(sasl("SASL_PLAINTEXT"))["broker_credentials"]
    )
    assert auth["security_protocol"] == "SASL_PLAINTEXT" and auth["ssl_context"] is None
    assert "ssl_context" not in client_config(sasl("SASL_PLAINTEXT"))
    tls = load_settings(security_protocol="SSL")
    auth = credentials_to_aiokafka_auth(faust_broker_kwargs(tls)["broker_credentials"])
    assert auth["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in client_config(tls)


def test_plaintext_by_default_for_every_client() -> None:
    settings = load_settings()
    assert client_config(settings) == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "PLAINTEXT",
    }
    assert "broker_credentials" not in faust_broker_kwargs(settings)


def test_a_half_made_security_setup_is_refused_not_downgraded() -> None:
    incomplete = load_settings(security_protocol="SASL_SSL", sasl_username="app")
    for build in (client_config, faust_broker_kwargs):
        with pytest.raises(ConfigError, match="SREC_SASL_MECHANISM, SREC_SASL_PASSWORD"):
            build(incomplete)
    with pytest.raises(ConfigError, match="SREC_SSL_KEYFILE"):
        client_config(sasl(ssl_certfile="/nonexistent.pem"))
    with pytest.raises(ConfigError, match="does not use TLS"):
        client_config(
            load_settings(ssl_certfile="/nonexistent.pem", ssl_keyfile="/nonexistent.key")
        )
    with pytest.raises(ConfigError, match="TLS files"):
        client_config(sasl(ssl_cafile="/nonexistent-ca.pem"))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_a_client_certificate_is_loaded_for_mutual_tls(tmp_path: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", "client.key", "-out", "client.crt", "-subj", "/CN=client"],
        cwd=tmp_path, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    settings = sasl(ssl_certfile=tmp_path / "client.crt", ssl_keyfile=tmp_path / "client.key")
    assert ssl_context(settings) is not None  # load_cert_chain accepted the pair
    with pytest.raises(ConfigError, match="TLS files"):
        ssl_context(sasl(ssl_certfile=tmp_path / "client.crt", ssl_keyfile=tmp_path / "x"))


# --- secrets, bind addresses ----------------------------------------------------------------
def test_the_password_is_a_secret_in_every_repr() -> None:
    settings = sasl()
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in str(settings.model_dump())
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == PASSWORD


def test_health_and_metrics_bind_localhost_by_default() -> None:
    assert Settings.model_fields["web_host"].default == "127.0.0.1"
    assert load_settings().web_host == "127.0.0.1"
    sources = {
        path.name: path.read_text()
        for path in (PACKAGE / "edge").glob("*.py")
        if "web_bind" in path.read_text() or "TCPSite" in path.read_text()
    }
    assert {"faust_base.py", "trainer.py"} <= set(sources)
    for name, text in sources.items():
        assert "settings.web_host" in text, f"{name} binds something else than SREC_WEB_HOST"
        assert "0.0.0.0" not in text, name
    # both worker roles build their Faust app with faust_base.new_faust_app
    from streaming_rec.edge.faust_base import new_faust_app

    assert new_faust_app(load_settings(), "probe").conf.web_bind == "127.0.0.1"
    assert "new_faust_app(" in (PACKAGE / "edge" / "embed_app.py").read_text()


# --- no code from data ------------------------------------------------------------------------
def scan(source: str, where: str) -> list[str]:
    """Each use of pickle-like modules, eval/exec/compile, torch/joblib.load, allow_pickle."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        names: set[str] = set()
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {(node.module or "").split(".")[0]}
        line = getattr(node, "lineno", 0)
        problems += [f"{where}:{line} imports {n}" for n in sorted(names & BANNED_MODULES)]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in BANNED_CALLS:
            problems.append(f"{where}:{node.lineno} calls {func.id}()")
        if (
            isinstance(func, ast.Attribute)
            and func.attr in {"load", "loads"}
            and isinstance(func.value, ast.Name)
            and func.value.id in {"torch", "joblib", "pickle", "marshal"}
        ):
            problems.append(f"{where}:{node.lineno} calls {func.value.id}.{func.attr}()")
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg == "allow_pickle" and not (
                isinstance(value, ast.Constant) and value.value is False
            ):
                problems.append(f"{where}:{node.lineno} allow_pickle is not False")
    return problems


def test_no_module_uses_pickle_marshal_eval_or_exec() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        problems += scan(path.read_text(), str(path.relative_to(PACKAGE.parent)))
    assert not problems, "\n".join(problems)


def test_the_scan_finds_what_it_looks_for() -> None:
    bad = (
        "import pickle\nfrom marshal import loads\nimport os, dill\neval('1')\nexec('x')\n"
        "torch.load(f)\nnp.load(f, allow_pickle=True)\nnp.load(f, allow_pickle=False)\n"
    )
    assert len(scan(bad, "bad.py")) == 7
