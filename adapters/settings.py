"""Configuration from the environment (and a ``.env`` file), checked at start-up.

A malformed value stops start-up with :class:`ConfigurationError`, whose
message names the environment variable and never repeats a secret.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.database import DatabaseConfigurationError, parse_database_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./keel.db"
DEFAULT_CONTEXTS = "ledger"
"""The example context; drop it here (or in ``KEEL_CONTEXTS``) together with its folders."""
BROKER_SCHEMES = ("redis", "rediss")


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Every knob Keel reads, with the default that suits a laptop."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    keel_contexts: str = DEFAULT_CONTEXTS
    """Comma-separated import names of the bounded contexts that run (empty: the kernel alone)."""
    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str | None = None
    """Unset or empty: the in-process broker. ``redis://`` or ``rediss://``: Redis Streams."""
    stream_prefix: str = ""
    broker_max_deliveries: Annotated[int, Field(ge=1, le=1000)] = 5
    """Failed attempts before a message goes to ``<stream>.dead``."""
    broker_claim_idle_ms: Annotated[int, Field(ge=10, le=86_400_000)] = 30_000
    """How long an unacknowledged Redis entry waits before another consumer takes it over."""
    relay_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    serve_relay: bool = True
    """Whether ``keel serve`` runs an outbox relay in its own process."""
    serve_consumer: bool | None = None
    """Whether ``keel serve`` consumes the contexts' streams; unset: on the in-process broker."""

    db_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    db_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 10
    db_pool_timeout: Annotated[float, Field(gt=0, le=600)] = 5.0
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 15_000
    db_connect_timeout: Annotated[float, Field(gt=0, le=600)] = 5.0
    """Seconds to open a connection. asyncpg's own default is 60 s, and while the
    database is unreachable every request would hang that long before its 503."""
    db_application_name: Annotated[str, Field(min_length=1, max_length=63)] = "keel"
    """How Keel's connections are named in ``pg_stat_activity``, for the operator."""
    retry_attempts: Annotated[int, Field(ge=1, le=100)] = 5

    metrics_enabled: bool = True
    """Whether Keel serves Prometheus metrics: ``GET /metrics``, and the workers' port."""
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """The port ``keel consume`` and ``keel relay`` serve ``/metrics`` on; unset: none."""
    metrics_host: Annotated[str, Field(min_length=1, max_length=255)] = "127.0.0.1"
    """The interface of the workers' metrics port (``0.0.0.0`` to be scraped from elsewhere)."""
    metrics_interval: Annotated[float, Field(gt=0, le=3600)] = 10.0
    """Seconds between two samples of the outbox backlog and the dead letters (gauges)."""

    @field_validator("keel_contexts")
    @classmethod
    def _check_contexts(cls, value: str) -> str:
        for name in _split(value):
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(
                    f"{name!r} is not an import name; expected e.g. 'orders' or 'orders,catalog'"
                )
        return value

    @property
    def context_names(self) -> tuple[str, ...]:
        """``KEEL_CONTEXTS`` as a tuple of names, in order."""
        return _split(self.keel_contexts)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            parse_database_url(value)
        except DatabaseConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str | None) -> str | None:
        # Only the scheme is ever repeated back: the rest may hold a password.
        if not value:
            return None
        try:
            parts = urlsplit(value)
            usable = parts.scheme in BROKER_SCHEMES and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError when out of range
        except ValueError:
            raise ValueError("is not a valid URL; expected redis://host:6379/0") from None
        if usable:
            return value
        if "://" in value and parts.scheme.isalnum() and parts.scheme not in BROKER_SCHEMES:
            raise ValueError(
                f"unsupported scheme {parts.scheme!r}; expected redis:// or rediss://, "
                "or leave it unset for the in-process broker"
            )
        raise ValueError("must be a URL such as redis://localhost:6379/0, or unset")

    def engine_options(self) -> dict[str, Any]:
        """Pool options for ``session_manager.init``; SQLite ignores the pool ones."""
        if self.database_url.startswith("sqlite"):
            return {}
        options: dict[str, Any] = {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout,
        }
        server_settings = {"application_name": self.db_application_name}
        if self.db_statement_timeout_ms:
            server_settings["statement_timeout"] = str(self.db_statement_timeout_ms)
        options["connect_args"] = {
            "timeout": self.db_connect_timeout,
            "server_settings": server_settings,
        }
        return options


def _split(names: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in names.split(",") if name.strip())


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
            # pydantic words a validator's ValueError "Value error, <message>".
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{variable}: {message}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None
