"""What every settings section shares: the environment prefix and the pydantic config."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

EVENTS = ("click", "add_to_cart", "purchase", "skip", "dislike")
ENV_PREFIX = "SREC_"
CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX, frozen=True, extra="ignore", populate_by_name=True
)
