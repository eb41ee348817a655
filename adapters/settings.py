"""Configuration from the environment (and a ``.env`` file), checked at start-up.

A malformed value stops start-up with :class:`ConfigurationError`, whose
message names the environment variable and never repeats a secret.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.database import DatabaseConfigurationError, parse_database_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./keel.db"


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Every knob Keel reads, with the default that suits a laptop."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str | None = None
    stream_prefix: str = ""

    db_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    db_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 10
    db_pool_timeout: Annotated[float, Field(gt=0, le=600)] = 5.0
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 15_000
    retry_attempts: Annotated[int, Field(ge=1, le=100)] = 5

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            parse_database_url(value)
        except DatabaseConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    def engine_options(self) -> dict[str, Any]:
        """Pool options for ``session_manager.init``; SQLite ignores the pool ones."""
        if self.database_url.startswith("sqlite"):
            return {}
        options: dict[str, Any] = {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
        }
        if self.db_statement_timeout_ms:
            options["connect_args"] = {
                "server_settings": {"statement_timeout": str(self.db_statement_timeout_ms)}
            }
        return options


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning pydantic's report into one readable message.

    The offending value is left out on purpose: it may be a URL with a password.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            variable = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            problems.append(f"{variable}: {error['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
