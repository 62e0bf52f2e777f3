"""A rank worker accepts an embedded query only when its vector fits its own model."""

from __future__ import annotations

import numpy as np
import pytest

from streaming_rec.errors import DecodeError
from streaming_rec.flows.answer import check_embedding
from streaming_rec.schemas import EmbeddedQuery, Query

pytestmark = pytest.mark.unit


def embedded(text: str, vector: np.ndarray | None, model: str = "m") -> EmbeddedQuery:
    return EmbeddedQuery(
        query=Query(request_id="r", user_id="u", text=text),
        vector=vector,
        model=model,
        embedded_by="gpu-0",
        embedded_at=1.0,
        source_partition=0,
        source_offset=5,
        source_ts=1.0,
    )


def test_a_matching_embedding_passes() -> None:
    check_embedding(embedded("ghosts", np.full(4, 0.5, dtype=np.float32)), "m", 4)
    check_embedding(embedded("", None), "m", 4)  # "for you": nothing to encode


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (embedded("ghosts", np.full(4, 0.5, dtype=np.float32), model="other"), "model"),
        (embedded("ghosts", None), "vector"),
        (embedded("ghosts", np.full(8, 0.5**1.5, dtype=np.float32)), "vector"),
    ],
)
def test_a_foreign_or_missing_embedding_is_refused_naming_the_field(
    message: EmbeddedQuery, field: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        check_embedding(message, "m", 4)
    assert caught.value.field == f"embedded_query.{field}"
