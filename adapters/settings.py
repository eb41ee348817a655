"""Configuration from the environment (and a ``.env`` file), checked at start-up.

A malformed value stops start-up with :class:`ConfigurationError`, whose
message names the environment variable and never repeats a secret.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.database import DatabaseConfigurationError, parse_database_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./keel.db"
DEFAULT_CONTEXTS = "ledger"
"""The example context; drop it here (or in ``KEEL_CONTEXTS``) together with its folders."""
BROKER_SCHEMES = ("redis", "rediss")
DEFAULT_DEV_KEY_FILE = "./keel-dev-key.pem"
"""Where ``keel serve`` and ``keel token`` keep the development signing key (gitignored)."""
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""What ``AUTH_ALGORITHMS`` may list: never ``none``, never an HMAC algorithm."""
MAX_CLOCK_SKEW_SECONDS = 5


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
    db_log_parameters: bool = False
    """Whether SQL bind parameters (owners, references) may appear in errors and logs."""

    auth_public_key: SecretStr | None = None
    """PEM text of the tokens' public key, or the path of a file holding it."""
    auth_jwks_url: str | None = None
    """A JWKS document to take the keys from, cached and fetched again on an unknown ``kid``."""
    auth_jwks_cache_seconds: Annotated[int, Field(ge=1, le=86_400)] = 300
    auth_issuer: Annotated[str, Field(min_length=1)] = "keel"
    auth_audience: Annotated[str, Field(min_length=1)] = "keel"
    auth_algorithms: str = "ES256,RS256,PS256,EdDSA"
    """The signature algorithms a token may use: asymmetric ones only."""
    auth_leeway_seconds: Annotated[int, Field(ge=0, le=MAX_CLOCK_SKEW_SECONDS)] = 5
    """Clock skew allowed on ``exp`` and ``nbf``."""
    auth_dev_key_file: str = DEFAULT_DEV_KEY_FILE
    """With neither a public key nor a JWKS URL: the development key pair, made on first use."""
    command_signing_key: SecretStr | None = None
    """The HMAC-SHA256 key of the ``sig`` field of commands on a real broker."""
    rate_limit: str | None = None
    """Writes allowed per principal, e.g. ``50/second``; unset: no limit."""
    trusted_hosts: str = "*"
    """Comma-separated ``Host`` names answered (``*.example.com`` allowed); ``*``: any."""
    cors_origins: str = ""
    """Comma-separated origins allowed to call the API from a browser; empty: none (no CORS)."""
    docs_enabled: bool = True
    """Whether ``/docs`` and ``/openapi.json`` are served."""

    @field_validator("keel_contexts")
    @classmethod
    def _check_contexts(cls, value: str) -> str:
        for name in _split(value):
            if not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(
                    f"{name!r} is not an import name; expected e.g. 'orders' or 'orders,catalog'"
                )
        return value

    @field_validator("auth_algorithms")
    @classmethod
    def _check_algorithms(cls, value: str) -> str:
        names = _split(value)
        if not names:
            raise ValueError("must name at least one algorithm, e.g. ES256")
        refused = [name for name in names if name not in ASYMMETRIC_ALGORITHMS]
        if refused:
            allowed = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
            raise ValueError(
                f"{', '.join(refused)} not allowed: only asymmetric algorithms ({allowed})"
            )
        return value

    @field_validator("auth_jwks_url")
    @classmethod
    def _check_jwks_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if urlsplit(value).scheme not in ("https", "http") or not urlsplit(value).hostname:
            raise ValueError("must be an http(s):// URL of a JWKS document")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str | None) -> str | None:
        if not value:
            return None
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate; expected e.g. '50/second' or '1000/minute'"
            ) from None
        return value

    @property
    def algorithms(self) -> tuple[str, ...]:
        """``AUTH_ALGORITHMS`` as a tuple."""
        return _split(self.auth_algorithms)

    @property
    def trusted_host_names(self) -> tuple[str, ...]:
        """``TRUSTED_HOSTS`` as a tuple; ``("*",)`` accepts any host."""
        return _split(self.trusted_hosts) or ("*",)

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return _split(self.cors_origins)

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
        """Engine options for ``session_manager.init``; SQLite ignores the pool ones.

        Bind parameters are hidden from SQLAlchemy's error messages unless
        ``DB_LOG_PARAMETERS`` is on: they hold owners and references.
        """
        hidden: dict[str, Any] = {"hide_parameters": not self.db_log_parameters}
        if self.database_url.startswith("sqlite"):
            return hidden
        options: dict[str, Any] = {
            **hidden,
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
