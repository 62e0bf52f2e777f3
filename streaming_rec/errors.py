"""Every error streaming_rec raises, in one tree.

    StreamingRecError                 base; ``retriable`` says whether trying again may help
    ├── ConfigError                   a setting is missing or invalid (raised at start)
    ├── DecodeError                   a message does not decode or validate; names the field
    ├── IndexError_                   the vector index was asked something it cannot do
    ├── SnapshotError                 an index snapshot is missing, corrupt or incompatible
    ├── BrokerError (retriable)       Kafka did not answer or refused a request
    └── RequestTimeout (retriable)    no answer arrived for a request in time

A bad message never kills a worker: the agent catches ``DecodeError``, sends the
original bytes to the dead-letter topic with ``str(error)`` as the reason, and
goes on.
"""

from __future__ import annotations

from typing import Any


class StreamingRecError(Exception):
    """Base of every error this package raises on purpose."""

    retriable: bool = False


class ConfigError(StreamingRecError):
    """A setting is missing or invalid."""


class DecodeError(StreamingRecError):
    """A message could not be decoded or failed validation.

    ``field`` is the dotted path of the offending field ("query.filters.categories.3"),
    or the message kind itself when the whole payload is bad ("query").
    """

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        self.field = field
        self.reason = reason
        self.value = value
        shown = "" if value is None else f", got {_preview(value)}"
        super().__init__(f"{field}: {reason}{shown}")


class IndexError_(StreamingRecError):  # noqa: N801 - trailing underscore avoids the builtin
    """The vector index was asked something it cannot do (wrong dimension, ...)."""


class SnapshotError(StreamingRecError):
    """An index snapshot is missing, corrupt or was written for another configuration."""


class BrokerError(StreamingRecError):
    """Kafka did not answer or refused a request."""

    retriable = True


class RequestTimeout(StreamingRecError):
    """No recommendation arrived for a request within its timeout."""

    retriable = True


def _preview(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except RecursionError:  # a value nested ~1000 levels deep (the JSON parser allows 1024)
        text = f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."
