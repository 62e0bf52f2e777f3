"""Settings sections of the processes: the worker, the web pages, the clients and the gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings

from streaming_rec.config.base import CONFIG


class WorkerSettings(BaseSettings):
    """The worker process: role, data folder, group membership, logs, probes."""

    model_config = CONFIG

    # --- Worker --------------------------------------------------------------------------
    role: Literal["all", "embed", "rank"] = Field(
        "all",
        description="What a worker does: all (encode and rank queries, the default); embed "
        "(encode queries only, e.g. on a GPU, into embedded-queries); rank (answer "
        "embedded-queries next to the user state, no query encoding).",
    )
    data_dir: Path = Field(Path("var/worker"), description="Worker state folder.")
    worker_name: str = Field("", description="Name in replies and logs (default host:pid).")
    snapshot_interval_s: float = Field(
        300.0,
        ge=0,
        description="How often a worker writes its items (index, catalog, offsets) to the "
        "data folder when they changed, so that a restart reads only the tail of "
        "item-vectors (0: never).",
    )
    gil_switch_interval_ms: float = Field(
        0.0,
        ge=0,
        le=100,
        description="How long a worker thread may hold the GIL while another waits for it "
        "(ms, sys.setswitchinterval; 0: Python's own 5 ms). 0.5 ms helped past capacity "
        "(150 q/s: p50 622 -> 157 ms) and hurt below it (100 q/s: 43 -> 98 ms) in "
        "bench/ab.py runs (docs/bench/ab-gil-switch-*.json), so it is not the default.",
    )
    gc_freeze: bool = Field(
        True,
        description="Move the objects a worker made at start (its libraries, the model, the "
        "catalog) out of the garbage collector's sight once it is ready (gc.freeze): a full "
        "collection then walks only what was made since, instead of ~280,000 objects "
        "(~100 ms with the GIL held; edge/gcwatch.py).",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="Faust's processing guarantee. exactly_once (Kafka transactions) works "
        "with the bundled broker but costs 20-40 % of p50 under load (docs/bench/"
        "exactly-once); user state is exactly-once either way (offset guard).",
    )
    session_timeout_s: float = Field(
        10.0,
        ge=6,
        le=300,
        description="A worker silent this long leaves the consumer group and its partitions "
        "move to the others (the failover time after a crash; the broker's minimum is 6 s).",
    )
    heartbeat_interval_s: float = Field(
        1.0, gt=0, le=60, description="How often a worker tells the group it is alive (s)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or as JSON objects one per line (time, level, "
        "logger, message, and request_id, topic, partition, offset where known).",
    )
    live_stall_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="/live answers 503 once a ready worker has held records on a partition "
        "this long without committing past any (wedged, not just behind; 0: never).",
    )
    recovery_stall_s: float = Field(
        20.0,
        ge=0,
        le=86_400,
        description="A table recovery (user state read back from its changelog after a "
        "rebalance) that reads nothing this long is restarted by a consumer-group rejoin, "
        "at most 3 times; then /live answers 503 (s; 0: never).",
    )

    @field_validator("heartbeat_interval_s")
    @classmethod
    def _heartbeat_within_session(cls, value: float, info: ValidationInfo) -> float:
        session = info.data.get("session_timeout_s")
        if session is not None and value * 3 > session:
            raise ValueError(f"must be at most a third of SREC_SESSION_TIMEOUT_S ({session})")
        return value


class WebSettings(BaseSettings):
    """HTTP pages, the clients and the HTTP gateway."""

    model_config = CONFIG

    # --- Health and metrics pages ------------------------------------------------------
    web_port: int = Field(6066, ge=0, le=65535, description="Health/metrics port (0: off).")
    web_host: str = Field(
        "127.0.0.1",
        description="Address the health/metrics pages (worker and trainer) bind (0.0.0.0 "
        "in the container image).",
    )

    # --- Clients (RecClient, AsyncRecClient) and the HTTP gateway ----------------------
    client_reply_partition: int = Field(
        -1,
        ge=-1,
        le=100_000,
        description="The partition of recommendations a client reads its replies from "
        "(-1: a hash of a random instance id). Each client reads about 1/P of all replies "
        "(P: partitions of recommendations); clients sharing a partition filter by "
        "request_id.",
    )
    client_max_pending: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Most requests one client keeps waiting for replies to (its reply store "
        "holds only these); past it the oldest is dropped and its wait fails.",
    )
    client_reply_ttl_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="How long a client keeps a request it sent and nobody waits for (s); "
        "a wait extends it to its own timeout.",
    )
    gateway_host: str = Field(
        "127.0.0.1",
        description="Address the HTTP gateway binds (0.0.0.0: every interface; beyond "
        "loopback, writes need SREC_GATEWAY_API_KEY).",
    )
    gateway_port: int = Field(8000, ge=0, le=65535, description="Port of the HTTP gateway.")
    gateway_api_key: SecretStr | None = Field(
        None,
        description="Key that writes (feedback, items, forgetting a user) must send as the "
        "X-API-Key header; required for writes once the gateway binds beyond loopback "
        "(never logged).",
    )
    gateway_cors_origins: str = Field(
        "",
        description="Origins allowed to call the gateway from a browser, comma-separated "
        "(the demo page is served by the gateway itself and needs none).",
    )
    gateway_max_in_flight: int = Field(
        512,
        ge=1,
        le=100_000,
        description="Most HTTP requests the gateway handles at once; beyond, 503.",
    )
    gateway_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="How long the gateway waits for an answer before 504 (a query's own "
        "deadline_ms wins).",
    )
