"""Every Prometheus instrument, in one namespace. Recorded at the edge, never in the math."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
_NS = "streaming_rec"
_MS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

MESSAGES = Counter(
    "messages_total",
    "Messages handled, by topic and outcome (ok, dead_letter, expired, redelivered).",
    ["topic", "outcome"],
    namespace=_NS,
    registry=REGISTRY,
)
STAGE_MS = Histogram(
    "stage_ms",
    "Time per stage of a query (queue, embed, search, rank, total), ms.",
    ["stage"],
    namespace=_NS,
    registry=REGISTRY,
    buckets=_MS_BUCKETS,
)
BATCH_SIZE = Histogram(
    "query_batch_size",
    "Queries per micro-batch.",
    namespace=_NS,
    registry=REGISTRY,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
INDEX_SIZE = Gauge("index_items", "Live items in the index.", namespace=_NS, registry=REGISTRY)
INDEX_VERSION = Gauge(
    "index_version", "Vector updates applied to the index.", namespace=_NS, registry=REGISTRY
)
READY = Gauge(
    "ready", "1 once the index has caught up with item-vectors.", namespace=_NS, registry=REGISTRY
)
SNAPSHOT_SECONDS = Gauge(
    "items_snapshot_seconds",
    "Seconds the last items snapshot took, by operation (load, save).",
    ["operation"],
    namespace=_NS,
    registry=REGISTRY,
)
SNAPSHOT_WRITTEN_AT = Gauge(
    "items_snapshot_written_at",
    "Unix time of the items snapshot this worker last loaded or wrote.",
    namespace=_NS,
    registry=REGISTRY,
)
BLEND_WEIGHT = Gauge(
    "blend_weight",
    "Ranking blend in use (alpha, gamma, beta, prior_weight), learned online from clicks.",
    ["name"],
    namespace=_NS,
    registry=REGISTRY,
)
BLEND_PAIRS = Gauge(
    "blend_learned_pairs",
    "(clicked, not clicked) impression pairs the blend has learned from.",
    namespace=_NS,
    registry=REGISTRY,
)
UNREADABLE_BATCHES = Counter(
    "unreadable_batches_total",
    "Record batches skipped unread (codec missing, corrupt, unparsable), by topic and error.",
    ["topic", "error"],
    namespace=_NS,
    registry=REGISTRY,
)
UNREADABLE_RECORDS = Counter(
    "unreadable_records_total",
    "Offsets skipped in unreadable record batches, by topic.",
    ["topic"],
    namespace=_NS,
    registry=REGISTRY,
)


def show_blend(weights: dict[str, float], pairs: int) -> None:
    for name, value in weights.items():
        BLEND_WEIGHT.labels(name).set(value)
    BLEND_PAIRS.set(pairs)
