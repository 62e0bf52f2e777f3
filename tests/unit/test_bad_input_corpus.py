"""Every case of the bad-input corpus (tests/bad_input/) is refused by the codec with an
error naming its field — except the two only a worker can see (an unknown item, a request
id it answered just before), which must decode, so that the worker is the one to refuse
them (tests/integration/test_bad_input.py runs the corpus through a real worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streaming_rec import codec
from streaming_rec.errors import DecodeError
from tests.bad_input.corpus import TOPICS, Case, corpus, markdown_table

pytestmark = pytest.mark.unit

CASES = corpus()
KIND_OF_TOPIC = {"queries": "query", "feedback": "feedback", "items": "item"}
README = Path(__file__).resolve().parents[1] / "bad_input" / "README.md"


def _decode(case: Case) -> object:
    return codec.decode(KIND_OF_TOPIC[case.topic], case.value, case.key)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.topic}/{c.kind}")
def test_each_case_is_refused_naming_its_field(case: Case) -> None:
    if case.worker_only:
        assert _decode(case) is not None  # valid on the wire: only the worker's state refuses it
        for before in case.before:
            assert codec.decode(KIND_OF_TOPIC[case.topic], before, case.key) is not None
        return
    with pytest.raises(DecodeError) as caught:
        _decode(case)
    error = caught.value
    assert error.field == case.field, str(error)
    assert error.reason.startswith(case.reason), str(error)
    assert str(error).startswith(f"{case.field}: "), str(error)
    assert len(str(error)) < 400  # the reason, not the payload


def test_the_corpus_is_large_distinct_and_covers_every_input_topic() -> None:
    names = [(c.topic, c.kind) for c in CASES]
    assert len(names) == len(set(names)) >= 45
    assert {c.topic for c in CASES} == set(TOPICS)
    assert all(c.field.split(".")[0] == KIND_OF_TOPIC[c.topic] for c in CASES)
    assert len({(c.topic, c.key, c.value) for c in CASES}) == len(CASES)  # no message twice
    assert sum(c.worker_only for c in CASES) == 2


def test_a_1_mb_case_still_fits_a_kafka_message() -> None:
    biggest = max(len(c.value or b"") + len(c.key or b"") for c in CASES)
    assert 900_000 < biggest < 1_048_576 - 1024  # kafka-python's max_request_size, less headers


def test_the_readme_table_lists_the_corpus() -> None:
    assert markdown_table(CASES) in README.read_text(encoding="utf-8")
