from pathlib import Path

import pytest

from streaming_rec.config import load_settings, settings_table
from streaming_rec.errors import ConfigError

pytestmark = pytest.mark.unit


def test_defaults_load_and_name_topics_with_the_prefix() -> None:
    settings = load_settings()
    assert settings.topic("queries") == settings.topic_prefix + "queries"
    assert set(settings.event_weights) == {"click", "add_to_cart", "purchase", "skip", "dislike"}


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SREC_CANDIDATES", "0")
    with pytest.raises(ConfigError, match="SREC_CANDIDATES"):
        load_settings()
    monkeypatch.setenv("SREC_CANDIDATES", "10")
    monkeypatch.setenv("SREC_DEVICE", "tpu")
    with pytest.raises(ConfigError, match="SREC_DEVICE"):
        load_settings()


def test_kafka_bootstrap_servers_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SREC_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:29092")
    assert load_settings().bootstrap_servers == "broker:29092"


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SREC_SASL_PASSWORD", "hunter2")
    settings = load_settings()
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_the_readme_settings_table_is_current() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert settings_table() in readme, "regenerate: streaming-rec settings --markdown"
