"""Every error streaming_rec raises, in one tree.

    StreamingRecError                 base; ``retriable`` says whether trying again may help
    ├── ConfigError                   a setting is missing or invalid (raised at start)
    │   └── PatchMismatch             a patched library changed (edge/patching.py)
    ├── BadMessage                    a message the product will not take; names the field
    │   ├── DecodeError               it does not decode or validate
    │   └── Refused                   it decodes, but cannot be taken now
    │       ├── DuplicateRequest      a client repeated a recent request_id
    │       └── UnknownItem           feedback on an item that is not in the catalog
    ├── IndexError_                   the vector index was asked something it cannot do
    ├── SnapshotError                 an index snapshot is missing, corrupt or incompatible
    ├── ExportError                   the ONNX export of the encoder failed (core/onnx_export.py;
    │                                 the worker falls back to torch)
    ├── BrokerError (retriable)       Kafka did not answer or refused a request
    └── RequestTimeout (retriable)    no answer arrived for a request in time

A bad message never kills a worker: the flow that reads it hands it to its topic's
bad-message policy (``streaming_rec.flows.policy``), which sends the original bytes to the
dead-letter topic with ``str(error)`` as the reason and the error's class name, and the
flow goes on. Any other exception raised while one record is handled is contained the same
way (dead-lettered as an internal error), so no record can crash-loop a worker.
"""

from __future__ import annotations

from typing import Any


class StreamingRecError(Exception):
    """Base of every error this package raises on purpose."""

    retriable: bool = False


class ConfigError(StreamingRecError):
    """A setting is missing or invalid."""


class BadMessage(StreamingRecError):
    """A message the product will not take (the base of DecodeError and Refused).

    ``field`` is the dotted path of the offending field ("query.filters.categories.3"),
    or the message kind itself when the whole payload is bad ("query").
    """

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        self.field = field
        self.reason = reason
        self.value = value
        shown = "" if value is None else f", got {_preview(value)}"
        super().__init__(f"{field}: {reason}{shown}")


class DecodeError(BadMessage):
    """A message could not be decoded or failed validation."""


class Refused(BadMessage):
    """A message that decodes and validates, but that the product does not take."""


class DuplicateRequest(Refused):
    """A query repeating a recent (user_id, request_id) pair from another record."""


class UnknownItem(Refused):
    """Feedback on an item that is not in the catalog (after it was held for the item)."""


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
