"""Log lines as text or as JSON objects (SREC_LOG_FORMAT), configured once by the CLI.

A JSON line holds ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, and,
where known, ``request_id``, ``user_id``, ``topic``, ``partition``, ``offset`` (from a
call's ``extra=`` or, for ``request_id``, from the ``request_id`` context variable that a
request handler sets), ``exc`` (the traceback) and ``process``/``thread`` names::

    {"time":"2026-05-02T10:00:00.123Z","level":"WARNING","logger":"streaming_rec.flows.policy",
     "message":"dead letter from srec.queries[0]@17: ...","request_id":"r-1"}

Faust's worker sets up logging itself when it starts: ``faust_logging_config`` is what it
is handed so that its lines (and ours) come out in the same format.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
"""The request being handled on this task or thread, added to every log line it writes."""

EXTRA_FIELDS = ("request_id", "user_id", "topic", "partition", "offset", "worker")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per log record (see the module docstring for its fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if "request_id" not in line and (current := request_id.get()) is not None:
            line["request_id"] = current
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.levelno >= logging.WARNING:
            line["process"] = record.processName
            line["thread"] = record.threadName
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str, level: str = "INFO") -> None:
    """Configure the root logger (every command but the worker, whose Faust does it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_kafka()


def quiet_kafka() -> None:
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("kafka.cluster").setLevel(logging.CRITICAL)  # noise when a client closes


def faust_logging_config(log_format: str, level: str) -> dict[str, Any] | None:
    """The dictConfig Faust's worker applies at start: None (Faust's own coloured text
    lines) for text, our JSON formatter on stdout for json."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            "kafka": {"level": "WARNING"},
            "kafka.cluster": {"level": "CRITICAL"},
        },
    }
