"""Every Prometheus instrument, in one namespace. Recorded at the edge, never in the math.

Names follow Prometheus conventions: the ``streaming_rec_`` namespace, base units in the
name (``_seconds``, ``_bytes``, ``_total`` for counters, ``_timestamp_seconds`` for Unix
times), histograms for latencies. The process's own figures (``process_resident_memory_bytes``,
CPU, open files) come from prometheus_client's process collector on the same registry.
Two names changed on the way to base units (docs/deploy.md lists them):
``streaming_rec_stage_ms`` (ms) is ``streaming_rec_stage_seconds`` (s), and
``streaming_rec_items_snapshot_written_at`` is
``streaming_rec_items_snapshot_written_timestamp_seconds``.

Worker, trainer and embed worker each serve this registry on ``/metrics``; an instrument a
process never touches is exported with its zero value (or no sample, for labelled ones).
"""

from __future__ import annotations

import platform
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes, process_cpu_seconds_total
_NS = "streaming_rec"
# 0.5 ms … 10 s: a query stage is ~1-20 ms, a round trip under load up to seconds
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
# commits and rebalances: ms … a minute
SLOW_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

BUILD_INFO = Info(
    "build",
    "The running build: package version, process role, model id and encoder backend, Python.",
    namespace=_NS,
    registry=REGISTRY,
)

# --- flows (the Meter port) -----------------------------------------------------------------
MESSAGES = Counter(
    "messages",
    "Messages handled, by topic and outcome (ok, dead_letter, expired, redelivered, held, "
    "refused, skipped).",
    ["topic", "outcome"],
    namespace=_NS,
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "stage_seconds",
    "Time per stage of a query, s: queue (sent → taken by the worker), embed, search, rank, "
    "total (sent → answer ready).",
    ["stage"],
    namespace=_NS,
    registry=REGISTRY,
    buckets=LATENCY_BUCKETS_S,
)
BATCH_SIZE = Histogram(
    "query_batch_size",
    "Queries per micro-batch.",
    namespace=_NS,
    registry=REGISTRY,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
DEAD_LETTERS = Counter(
    "dead_letters",
    "Dead letters sent, by the topic of the refused record and the error (DecodeError, "
    "UnknownItem, DuplicateRequest, or the class of an internal error).",
    ["topic", "error"],
    namespace=_NS,
    registry=REGISTRY,
)

# --- the worker's replicated state ----------------------------------------------------------
INDEX_SIZE = Gauge("index_items", "Live items in the index.", namespace=_NS, registry=REGISTRY)
INDEX_VERSION = Gauge(
    "index_version", "Vector updates applied to the index.", namespace=_NS, registry=REGISTRY
)
READY = Gauge(
    "ready",
    "1 when the process is ready (worker: the index covers the catalog and popular-now has "
    "caught up; trainer: both topics read), else 0; what /ready answers.",
    namespace=_NS,
    registry=REGISTRY,
)
SNAPSHOT_SECONDS = Gauge(
    "items_snapshot_seconds",
    "Seconds the last items snapshot took, by operation (load, save).",
    ["operation"],
    namespace=_NS,
    registry=REGISTRY,
)
SNAPSHOT_WRITTEN_AT = Gauge(
    "items_snapshot_written_timestamp_seconds",
    "Unix time (s) of the items snapshot this worker last loaded or wrote.",
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

# --- transport ------------------------------------------------------------------------------
UNREADABLE_BATCHES = Counter(
    "unreadable_batches",
    "Record batches skipped unread (codec missing, corrupt, unparsable), by topic and error.",
    ["topic", "error"],
    namespace=_NS,
    registry=REGISTRY,
)
UNREADABLE_RECORDS = Counter(
    "unreadable_records",
    "Offsets skipped in unreadable record batches, by topic.",
    ["topic"],
    namespace=_NS,
    registry=REGISTRY,
)

# --- the consumer group (edge/monitor.py) ---------------------------------------------------
CONSUMER_LAG = Gauge(
    "consumer_lag_records",
    "Records of an assigned partition past the group's committed offset (end offset − "
    "committed), sampled every few seconds, by topic and partition.",
    ["topic", "partition"],
    namespace=_NS,
    registry=REGISTRY,
)
COMMIT_SECONDS = Histogram(
    "commit_seconds",
    "Time of one offset commit of the consumer (producer flush included), s.",
    namespace=_NS,
    registry=REGISTRY,
    buckets=SLOW_BUCKETS_S,
)
REBALANCES = Counter(
    "rebalances",
    "Consumer-group rebalances this process took part in.",
    namespace=_NS,
    registry=REGISTRY,
)
RECOVERY_RESTARTS = Counter(
    "recovery_restarts",
    "Table recoveries restarted (by a group rejoin) after reading nothing for "
    "SREC_RECOVERY_STALL_S.",
    namespace=_NS,
    registry=REGISTRY,
)
GC_PAUSE_SECONDS = Histogram(
    "gc_pause_seconds",
    "Python garbage collections by generation: how long each held the process (s; "
    "edge/gcwatch.py).",
    ["generation"],
    namespace=_NS,
    registry=REGISTRY,
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
REBALANCE_SECONDS = Histogram(
    "rebalance_seconds",
    "Time from a rebalance's start to its end (partitions assigned and recovered), s.",
    namespace=_NS,
    registry=REGISTRY,
    buckets=SLOW_BUCKETS_S,
)
ASSIGNED_PARTITIONS = Gauge(
    "assigned_partitions",
    "Partitions assigned to this worker, by topic.",
    ["topic"],
    namespace=_NS,
    registry=REGISTRY,
)
EVENT_LOOP_LAG = Gauge(
    "event_loop_lag_seconds",
    "How late the last event-loop tick ran (s): the loop is blocked when this grows.",
    namespace=_NS,
    registry=REGISTRY,
)

# --- the trainer ----------------------------------------------------------------------------
AGENT_CRASHES = Counter(
    "agent_crashes_total",
    "Agent actors that ended with an exception (Faust's supervisor starts them again).",
    ["agent"],
    namespace=_NS,
    registry=REGISTRY,
)
TRAINER_REFRESHES = Counter(
    "trainer_refreshes",
    "Refreshes of the item factors (a fit and a publish).",
    namespace=_NS,
    registry=REGISTRY,
)
TRAINER_REFRESH_SECONDS = Histogram(
    "trainer_refresh_seconds",
    "Time of one refresh (fit, then publish the changed items), s.",
    namespace=_NS,
    registry=REGISTRY,
    buckets=SLOW_BUCKETS_S,
)
TRAINER_EVENTS = Gauge(
    "trainer_feedback_events",
    "Feedback events in the trainer's statistics (read since it started, less those of "
    "forgotten users).",
    namespace=_NS,
    registry=REGISTRY,
)
TRAINER_PUBLISHED = Counter(
    "trainer_published_vectors",
    "Item vectors with factors the trainer sent to item-vectors.",
    namespace=_NS,
    registry=REGISTRY,
)
TRAINER_ITEMS = Gauge(
    "trainer_items",
    "Items the trainer knows (from item-vectors).",
    namespace=_NS,
    registry=REGISTRY,
)
TRAINER_LEARNED = Gauge(
    "trainer_learned_items",
    "Items with factors learned from feedback at the last refresh.",
    namespace=_NS,
    registry=REGISTRY,
)


def show_build(role: str, model: str, encoder: str) -> None:
    """Publish ``streaming_rec_build_info`` for this process (``encoder`` is the backend that
    runs the model: onnx-fp32, torch-cpu-fp32, ...; "none" for the trainer)."""
    try:
        version = metadata.version("streaming-rec")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        version = "unknown"
    BUILD_INFO.info(
        {
            "version": version,
            "role": role,
            "model": model,
            "encoder": encoder,
            "python": platform.python_version(),
        }
    )


def show_blend(weights: dict[str, float], pairs: int) -> None:
    for name, value in weights.items():
        BLEND_WEIGHT.labels(name).set(value)
    BLEND_PAIRS.set(pairs)
