"""Log lines as JSON (SREC_LOG_FORMAT=json): one object per line with time, level, logger,
message, the request id from the context or extra=, and the traceback."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest

from streaming_rec import logs

pytestmark = pytest.mark.unit


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "streaming_rec.flows.policy", logging.WARNING, __file__, 1, msg, args, None
    )
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_a_json_line_holds_the_message_and_what_is_known_of_the_record() -> None:
    line = json.loads(
        logs.JsonFormatter().format(
            record("dead letter from %s[%d]", "srec.queries", 3, topic="srec.queries", offset=17)
        )
    )
    assert line["message"] == "dead letter from srec.queries[3]"
    assert line["level"] == "WARNING" and line["logger"] == "streaming_rec.flows.policy"
    assert line["topic"] == "srec.queries" and line["offset"] == 17
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert "request_id" not in line


def test_the_request_id_of_the_context_is_on_every_line_written_in_it() -> None:
    token = logs.request_id.set("r-42")
    try:
        line = json.loads(logs.JsonFormatter().format(record("answered")))
    finally:
        logs.request_id.reset(token)
    assert line["request_id"] == "r-42"
    explicit = json.loads(logs.JsonFormatter().format(record("x", request_id="r-1")))
    assert explicit["request_id"] == "r-1"


def test_a_traceback_stays_inside_its_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
    text = logs.JsonFormatter().format(rec)
    assert "\n" not in text
    assert "ValueError: bad" in json.loads(text)["exc"]


def test_faust_is_handed_our_formatter_for_json_and_its_own_for_text() -> None:
    assert logs.faust_logging_config("text", "INFO") is None
    config = logs.faust_logging_config("json", "INFO")
    assert config is not None
    logging.config.dictConfig(config)  # what Faust's worker does with it
    try:
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler.formatter, logs.JsonFormatter)
    finally:
        logging.getLogger().handlers.clear()
