"""The topic contract: ``topics/topics.json`` loaded into frozen specs.

``topics/`` (topics.json, the JSON Schemas and the examples) is the public API of the
product; this module is how the code reads it. Real topic names are ``prefix + name``.
The package ships it as package data, ``streaming_rec/contract`` (in the repository a
link to ``../topics``), found through importlib.resources, so an installed wheel reads
the same contract as a checkout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from streaming_rec.errors import ConfigError

TOPICS_DIR = Path(str(resources.files("streaming_rec") / "contract"))  # = topics/ of the repo
DEFAULT_PREFIX = "srec."
CLEANUP_POLICIES = ("delete", "compact")
_CO_PARTITIONED = ("queries", "feedback")
T = TypeVar("T")


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract."""

    name: str  # logical name, without the prefix
    partitions: int
    replication_factor: int
    cleanup_policy: str  # "delete" | "compact"
    retention_ms: int | None  # None: the broker's default
    key: str  # what the key is, in words
    schema: str  # the value's JSON Schema, relative to topics/ ("schemas/query.v1.json")
    internal: bool
    description: str = ""

    @property
    def kind(self) -> str:
        """The message kind of the value ("schemas/item_vector.v1.json" → "item_vector")."""
        return Path(self.schema).name.split(".", 1)[0]

    def full_name(self, prefix: str = DEFAULT_PREFIX) -> str:
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        """Kafka topic configs for creating this topic."""
        config = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        return config


class TopicCatalog:
    """Every topic of the contract, by logical name."""

    def __init__(
        self, specs: Sequence[TopicSpec], co_partitioned: Sequence[Sequence[str]] = ()
    ) -> None:
        self._specs = {spec.name: spec for spec in specs}
        if len(self._specs) != len(specs):
            raise ConfigError("topics.json: a topic name appears twice")
        groups = [tuple(group) for group in co_partitioned]
        if not any(set(_CO_PARTITIONED) <= set(g) for g in groups):
            groups.append(_CO_PARTITIONED)
        for group in groups:
            self._check_co_partitioned(group)

    def _check_co_partitioned(self, group: Sequence[str]) -> None:
        counts = {name: self.get(name).partitions for name in group}
        if len(set(counts.values())) > 1:
            shown = ", ".join(f"{name}={n}" for name, n in counts.items())
            raise ConfigError(f"topics.json: co-partitioned topics differ in partitions: {shown}")

    @classmethod
    def load(cls, directory: Path | str | None = None) -> TopicCatalog:
        """Read ``topics.json`` from ``directory`` (default: the contract the package ships)."""
        path = Path(directory or TOPICS_DIR) / "topics.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            specs = [_spec(entry) for entry in document["topics"]]
            groups = document.get("co_partitioned", [])
        except OSError as exc:
            raise ConfigError(f"cannot read the topic contract {path}: {exc}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"invalid topic contract {path}: {exc!r}") from exc
        return cls(specs, groups)

    def get(self, logical: str) -> TopicSpec:
        try:
            return self._specs[logical]
        except KeyError:
            raise ConfigError(
                f"unknown topic {logical!r}; known: {', '.join(self._specs)}"
            ) from None

    def full_name(self, logical: str, prefix: str = DEFAULT_PREFIX) -> str:
        """The real topic name: ``prefix`` + the logical name."""
        return self.get(logical).full_name(prefix)

    def all(self) -> list[TopicSpec]:
        return list(self._specs.values())

    def __contains__(self, logical: object) -> bool:
        return logical in self._specs


def _spec(entry: Mapping[str, Any]) -> TopicSpec:
    name = entry["name"]
    spec = TopicSpec(
        name=_typed(name, "name", str),
        partitions=_typed(entry["partitions"], f"{name}.partitions", int),
        replication_factor=_typed(entry["replication_factor"], f"{name}.replication_factor", int),
        cleanup_policy=_typed(entry["cleanup_policy"], f"{name}.cleanup_policy", str),
        retention_ms=entry["retention_ms"]
        if entry["retention_ms"] is None
        else _typed(entry["retention_ms"], f"{name}.retention_ms", int),
        key=_typed(entry["key"], f"{name}.key", str),
        schema=_typed(entry["schema"], f"{name}.schema", str),
        internal=_typed(entry.get("internal", False), f"{name}.internal", bool),
        description=_typed(entry.get("description", ""), f"{name}.description", str),
    )
    if spec.partitions < 1 or spec.replication_factor < 1:
        raise ConfigError(f"topics.json: {name}: partitions and replication_factor must be ≥ 1")
    if spec.cleanup_policy not in CLEANUP_POLICIES:
        raise ConfigError(f"topics.json: {name}: cleanup_policy must be one of {CLEANUP_POLICIES}")
    return spec


def _typed(value: object, where: str, kind: type[T]) -> T:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"topics.json: {where} must be {kind.__name__}, got {value!r}")
    return value


def load_catalog(directory: Path | str | None = None) -> TopicCatalog:
    """The topic catalog from ``directory`` (default: the contract the package ships)."""
    return TopicCatalog.load(directory)


def schema_path(kind: str, directory: Path | str | None = None) -> Path:
    """The JSON Schema file of a message kind ("query" → topics/schemas/query.v1.json)."""
    return Path(directory or TOPICS_DIR) / "schemas" / f"{kind}.v1.json"


def example_paths(
    kind: str, directory: Path | str | None = None, invalid: bool = False
) -> list[Path]:
    """The example files of a message kind, sorted (``invalid=True``: the invalid ones)."""
    folder = Path(directory or TOPICS_DIR) / "examples" / kind
    if invalid:
        folder = folder / "invalid"
    return sorted(folder.glob("*.json"))
