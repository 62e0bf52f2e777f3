"""The messages on the topics, as frozen, strictly validated pydantic models.

The JSON Schemas in ``topics/schemas/`` describe the same messages for other languages;
``streaming_rec.codec`` is the only place that turns these models into bytes and back.
On the wire vectors are base64 strings; here they are 1-D float32 numpy arrays.

    fields.py   limits, field types and their validators, the Message base
    inputs.py   what clients write (Query, Feedback, Item) and what workers pass on the way
                to an answer (ItemVector, EmbeddedQuery)
    outputs.py  what workers write (Recommendation, DeadLetter, HeldFeedback,
                SequenceModelPart, UserStateRecord)
"""

from streaming_rec.schemas.fields import (
    EVENTS,
    MAX_DIM,
    MAX_K,
    MAX_TEXT,
    MAX_TIME,
    STATUSES,
    STRATEGIES,
    VERSION,
    Event,
    Id,
    Message,
    Status,
    Strategy,
)
from streaming_rec.schemas.inputs import (
    AttributeCondition,
    EmbeddedQuery,
    Feedback,
    Filters,
    Item,
    ItemVector,
    Query,
    ReplyTo,
)
from streaming_rec.schemas.outputs import (
    Blend,
    DeadLetter,
    HeldFeedback,
    Recommendation,
    RecommendedItem,
    SequenceModelPart,
    Timings,
    Understood,
    UnderstoodFacet,
    UserStateRecord,
)

__all__ = [
    "EVENTS",
    "MAX_DIM",
    "MAX_K",
    "MAX_TEXT",
    "MAX_TIME",
    "STATUSES",
    "STRATEGIES",
    "VERSION",
    "AttributeCondition",
    "Blend",
    "DeadLetter",
    "EmbeddedQuery",
    "Event",
    "Feedback",
    "Filters",
    "HeldFeedback",
    "Id",
    "Item",
    "ItemVector",
    "Message",
    "Query",
    "Recommendation",
    "RecommendedItem",
    "ReplyTo",
    "SequenceModelPart",
    "Status",
    "Strategy",
    "Timings",
    "Understood",
    "UnderstoodFacet",
    "UserStateRecord",
]
