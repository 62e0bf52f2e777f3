"""Settings: one frozen object, read from environment variables prefixed ``SREC_``.

Every field below is one environment variable: ``SREC_`` + the field name in capitals
(``candidates`` → ``SREC_CANDIDATES``). ``KAFKA_BOOTSTRAP_SERVERS`` is accepted as well
as ``SREC_BOOTSTRAP_SERVERS``. Settings are validated when they are loaded; a bad value
raises :class:`~streaming_rec.errors.ConfigError` naming the variable.
The README's settings table is generated from the descriptions here
(``streaming-rec settings --markdown``).
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from streaming_rec.config.base import CONFIG, ENV_PREFIX, EVENTS
from streaming_rec.config.model import (
    IndexSettings,
    RankingSettings,
    TrainerSettings,
    UserStateSettings,
)
from streaming_rec.config.process import WebSettings, WorkerSettings
from streaming_rec.config.transport import EncoderSettings, KafkaSettings, StreamSettings
from streaming_rec.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "EVENTS",
    "SECTIONS",
    "EncoderSettings",
    "IndexSettings",
    "KafkaSettings",
    "RankingSettings",
    "Settings",
    "StreamSettings",
    "TrainerSettings",
    "UserStateSettings",
    "WebSettings",
    "WorkerSettings",
    "load_settings",
    "settings_table",
]


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

    model_config = CONFIG


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
