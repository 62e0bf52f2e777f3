"""The topic contract (topics/) agrees with the codec: examples, schemas, topics.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from streaming_rec import codec
from streaming_rec.errors import ConfigError, DecodeError
from streaming_rec.topics import (
    TOPICS_DIR,
    TopicCatalog,
    TopicSpec,
    example_paths,
    schema_path,
)

pytestmark = pytest.mark.contract

KINDS = codec.KINDS
VALID = [(kind, path) for kind in KINDS for path in example_paths(kind)]
INVALID = [(kind, path) for kind in KINDS for path in example_paths(kind, invalid=True)]


def _id(case: tuple[str, Path]) -> str:
    return f"{case[0]}/{case[1].stem}"


def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_path(kind).read_text(encoding="utf-8")))


def _raw(payload: Any) -> bytes:
    """A string payload stands for raw bytes; anything else is encoded as JSON."""
    return payload.encode("utf-8") if isinstance(payload, str) else orjson.dumps(payload)


def _decode(kind: str, raw: bytes) -> BaseModel:
    message = codec.decode(kind, raw)
    assert message is not None
    return message


def test_every_kind_has_examples() -> None:
    for kind in KINDS:
        assert len(example_paths(kind)) >= 2, kind
        assert len(example_paths(kind, invalid=True)) >= 1, kind


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_valid_draft_2020_12(kind: str) -> None:
    schema = json.loads(schema_path(kind).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is True


@pytest.mark.parametrize("case", VALID, ids=_id)
def test_valid_example_round_trips(case: tuple[str, Path]) -> None:
    kind, path = case
    raw = path.read_bytes()
    validator = _validator(kind)
    validator.validate(json.loads(raw))
    message = _decode(kind, raw)
    encoded = codec.encode(message)
    validator.validate(orjson.loads(encoded))
    assert _decode(kind, encoded) == message
    assert codec.encode(_decode(kind, encoded)) == encoded


@pytest.mark.parametrize("case", INVALID, ids=_id)
def test_invalid_example_is_rejected_naming_its_field(case: tuple[str, Path]) -> None:
    kind, path = case
    example = json.loads(path.read_text(encoding="utf-8"))
    with pytest.raises(DecodeError) as caught:
        codec.decode(kind, _raw(example["payload"]))
    assert caught.value.field == example["field"], str(caught.value)
    payload = example["payload"]
    if isinstance(payload, dict) and not example.get("codec_only", False):
        assert not _validator(kind).is_valid(payload), "the JSON Schema accepts it"


def test_topics_json_is_consistent() -> None:
    catalog = TopicCatalog.load()
    names = {spec.name for spec in catalog.all()}
    assert names == {
        "queries",
        "feedback",
        "items",
        "item-vectors",
        "recommendations",
        "dead-letters",
        "user-state-changelog",
        "embedded-queries",
        "feedback-retry",
        "sequence-models",
    }
    for spec in catalog.all():
        assert (TOPICS_DIR / spec.schema).is_file(), spec.schema
        assert spec.kind in KINDS
        assert spec.cleanup_policy in ("delete", "compact")
    assert catalog.get("queries").partitions == catalog.get("feedback").partitions
    assert catalog.get("user-state-changelog").partitions == catalog.get("feedback").partitions
    assert catalog.get("embedded-queries").partitions == catalog.get("queries").partitions
    assert catalog.get("feedback-retry").partitions == catalog.get("feedback").partitions
    assert catalog.get("items").cleanup_policy == "compact"
    assert catalog.get("item-vectors").internal
    assert catalog.full_name("queries") == "srec.queries"
    assert catalog.full_name("dead-letters", "test.") == "test.dead-letters"


def test_catalog_refuses_unequal_co_partitioned_topics(tmp_path: Path) -> None:
    document = json.loads((TOPICS_DIR / "topics.json").read_text(encoding="utf-8"))
    for entry in document["topics"]:
        if entry["name"] == "feedback":
            entry["partitions"] = 4
    (tmp_path / "topics.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ConfigError, match="co-partitioned"):
        TopicCatalog.load(tmp_path)


def test_catalog_checks_queries_and_feedback_without_a_declared_group() -> None:
    def spec(name: str, partitions: int) -> TopicSpec:
        return TopicSpec(name, partitions, 1, "delete", None, "user_id", "x", False)

    with pytest.raises(ConfigError):
        TopicCatalog([spec("queries", 8), spec("feedback", 2)])


def test_unknown_topic_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        TopicCatalog.load().get("nope")
