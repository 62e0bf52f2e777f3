"""Connection settings for each Kafka client we ship, from the one Settings object.

Every client goes through here: kafka-python (RecClient, the CLI, the admin helpers) and
aiokafka (the trainer, topic replicas) take :func:`client_config` (producers
:func:`producer_config`, consumers :func:`consumer_config`), Faust takes
:func:`faust_broker_kwargs`. Producers compress with SREC_COMPRESSION; consumers read
committed records only (``read_committed``: a transaction's records once it commits,
never an aborted one's) and skip a batch they cannot read (:mod:`streaming_rec.edge.poison`).
Both build the same TLS context and the same SASL
credentials, and both refuse a half-made security setup (ConfigError) instead of falling
back to PLAINTEXT. The SASL password is read from its SecretStr only here, into the
client's keyword arguments; it is never logged.
"""

from __future__ import annotations

import ssl
from typing import Any

from streaming_rec.config import KafkaSettings, Settings
from streaming_rec.errors import ConfigError


def bootstrap_list(settings: KafkaSettings) -> list[str]:
    return [s.strip() for s in settings.bootstrap_servers.split(",") if s.strip()]


def uses_sasl(settings: KafkaSettings) -> bool:
    return settings.security_protocol.startswith("SASL_")


def uses_tls(settings: KafkaSettings) -> bool:
    return settings.security_protocol.endswith("SSL")


def check_security(settings: KafkaSettings) -> None:
    """ConfigError, naming the variable, when the security settings do not fit together."""
    if uses_sasl(settings):
        missing = [
            name
            for name, value in (
                ("SREC_SASL_MECHANISM", settings.sasl_mechanism),
                ("SREC_SASL_USERNAME", settings.sasl_username),
                ("SREC_SASL_PASSWORD", settings.sasl_password),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"SREC_SECURITY_PROTOCOL={settings.security_protocol} needs " + ", ".join(missing)
            )
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise ConfigError("SREC_SSL_CERTFILE and SREC_SSL_KEYFILE go together")
    if settings.ssl_certfile and not uses_tls(settings):
        raise ConfigError(
            "SREC_SSL_CERTFILE is set but SREC_SECURITY_PROTOCOL "
            f"({settings.security_protocol}) does not use TLS"
        )


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of every client (None without TLS): verifies the broker's
    certificate and host name against SREC_SSL_CAFILE (else the system CAs), and presents
    SREC_SSL_CERTFILE/SREC_SSL_KEYFILE when set (mutual TLS)."""
    if not uses_tls(settings):
        return None
    cafile = str(settings.ssl_cafile) if settings.ssl_cafile else None
    try:
        context = ssl.create_default_context(cafile=cafile)
        if settings.ssl_certfile and settings.ssl_keyfile:
            context.load_cert_chain(str(settings.ssl_certfile), str(settings.ssl_keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS files (SREC_SSL_*): {exc}") from exc
    return context


def _password(settings: KafkaSettings) -> str | None:
    return settings.sasl_password.get_secret_value() if settings.sasl_password else None


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's and aiokafka's clients (they share the names)."""
    check_security(settings)
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_list(settings),
        "security_protocol": settings.security_protocol,
    }
    if uses_sasl(settings):
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        config["sasl_plain_password"] = _password(settings)
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context
    return config


def compression_type(settings: KafkaSettings) -> str | None:
    """The producers' ``compression_type`` (None: uncompressed), from SREC_COMPRESSION."""
    return None if settings.compression == "none" else settings.compression


def producer_config(settings: KafkaSettings) -> dict[str, Any]:
    """:func:`client_config` plus the compression of SREC_COMPRESSION, for kafka-python's
    and aiokafka's producers. ConfigError as :func:`check_security`."""
    return {**client_config(settings), "compression_type": compression_type(settings)}


def consumer_config(settings: KafkaSettings) -> dict[str, Any]:
    """:func:`client_config` for a kafka-python or aiokafka consumer: committed records
    only (``read_committed``), and unreadable batches skipped instead of raised (installs
    the guard of :mod:`streaming_rec.edge.poison` once per process; PatchMismatch if the
    installed client is not the one it was written for). ConfigError as
    :func:`check_security`."""
    from streaming_rec.edge import poison

    poison.apply()
    return {**client_config(settings), "isolation_level": "read_committed"}


def faust_broker_kwargs(settings: Settings) -> dict[str, Any]:
    """``broker``, ``broker_credentials`` and ``producer_compression_type`` for faust.App.

    Faust derives the protocol from the credentials: SASLCredentials with a TLS context is
    SASL_SSL, without one SASL_PLAINTEXT; SSLCredentials is SSL; none is PLAINTEXT. (Its
    consumer is made read_committed and its fetcher guarded by
    :func:`streaming_rec.edge.faust_fixes.apply`.)"""
    import faust

    check_security(settings)
    kwargs: dict[str, Any] = {
        "broker": [f"kafka://{s}" for s in bootstrap_list(settings)],
        "producer_compression_type": compression_type(settings),
    }
    context = ssl_context(settings)
    if uses_sasl(settings):
        kwargs["broker_credentials"] = faust.SASLCredentials(
            username=settings.sasl_username,
            password=_password(settings),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    elif context is not None:
        kwargs["broker_credentials"] = faust.SSLCredentials(context)
    return kwargs
