"""Configuration from the environment (and a ``.env`` file), checked at start-up.

A malformed value stops start-up with :class:`ConfigurationError`, whose
message names the environment variable and never repeats a secret.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Self
from urllib.parse import urlsplit
from uuid import uuid4

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.database import DatabaseConfigurationError, parse_database_url
from adapters.liveness import PING_AFTER_IDLE_SECONDS

if TYPE_CHECKING:
    from adapters.retention import RetentionPolicy

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./keel.db"
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
_SCHEMES_TEXT = ", ".join(scheme + "://" for scheme in BROKER_SCHEMES)
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

    keel_contexts: str | None = None
    """Comma-separated import names of the bounded contexts that run; unset: every context
    under ``entrypoints/`` (``entrypoints.context.running_context_names``); empty: the
    kernel alone."""
    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str | None = None
    """Unset or empty: the in-process broker. ``redis://`` or ``rediss://``: Redis Streams.
    ``amqp://`` or ``amqps://``: RabbitMQ."""
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
    db_ping_after_idle_seconds: Annotated[float, Field(ge=0, le=86_400)] = PING_AFTER_IDLE_SECONDS
    """A pooled connection idle longer than this is pinged before use (one round trip);
    others are checked for free (``adapters.liveness``). ``0`` pings on every checkout."""
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
    auth_verified_cache_seconds: Annotated[float, Field(ge=0, le=300)] = 60.0
    """A verified token is answered from memory for this long (never past its ``exp``); 0: off."""
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
    def _check_contexts(cls, value: str | None) -> str | None:
        for name in _split(value or ""):
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
    def context_names(self) -> tuple[str, ...] | None:
        """``KEEL_CONTEXTS`` as a tuple of names, in order; ``None`` when it is unset."""
        return None if self.keel_contexts is None else _split(self.keel_contexts)

    db_pgbouncer: bool = False
    """``DATABASE_URL`` points at PgBouncer in transaction pooling mode: no named
    prepared statement outlives its transaction, and no setting is sent as a
    startup parameter (see :meth:`engine_options`)."""
    database_direct_url: str | None = None
    """The database itself, not the pooler: for LISTEN and migrations, which need
    a session of their own. Unset: ``DATABASE_URL``. See :attr:`direct_database_url`."""
    database_replica_urls: str | None = None
    """Comma-separated URLs of streaming replicas for read-only queries; unset: none."""
    db_replica_max_lag_seconds: Annotated[float, Field(gt=0, le=86_400)] = 5.0
    """A replica further behind the primary than this is not read from."""

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            parse_database_url(value)
        except DatabaseConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("database_direct_url")
    @classmethod
    def _check_direct_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            parse_database_url(value)
        except DatabaseConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("database_replica_urls")
    @classmethod
    def _check_replica_urls(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        for position, url in enumerate(_split_urls(value), start=1):
            try:
                parsed = parse_database_url(url)
            except DatabaseConfigurationError as exc:
                raise ValueError(f"URL {position}: {exc}") from None
            if parsed.get_backend_name() != "postgresql":
                raise ValueError(
                    f"URL {position}: replicas are PostgreSQL streaming replicas; "
                    "expected 'postgresql+asyncpg://'"
                )
        return value

    @property
    def direct_database_url(self) -> str:
        """Where LISTEN and migrations connect: ``DATABASE_DIRECT_URL``, else ``DATABASE_URL``.

        Behind PgBouncer in transaction mode a LISTEN would be lost when the
        server connection changes hands, and a migration's session state (locks,
        ``SET``) would leak to other clients; both need the database itself.
        """
        return self.database_direct_url or self.database_url

    @property
    def replica_urls(self) -> list[str]:
        """``DATABASE_REPLICA_URLS`` as a list, in the order given."""
        return _split_urls(self.database_replica_urls or "")

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
            raise ValueError(
                f"is not a valid URL; expected one of {_SCHEMES_TEXT}, e.g. redis://host:6379/0"
            ) from None
        if usable:
            return value
        if "://" in value and parts.scheme.isalnum() and parts.scheme not in BROKER_SCHEMES:
            raise ValueError(
                f"unsupported scheme {parts.scheme!r}; expected one of {_SCHEMES_TEXT}, "
                "or leave it unset for the in-process broker"
            )
        raise ValueError(
            f"must be a URL with one of {_SCHEMES_TEXT} and a host, "
            "such as redis://localhost:6379/0 or amqp://localhost:5672/, or unset"
        )

    def engine_options(self) -> dict[str, Any]:
        """Pool options for ``session_manager.init``; SQLite ignores the pool ones.

        With ``DB_PGBOUNCER``: asyncpg's statement cache and SQLAlchemy's are
        off and every prepared statement gets a unique name (a transaction
        pooler hands the server connection, and the statements prepared on it,
        to another client after each transaction); and ``statement_timeout``
        is not sent as a startup parameter — PgBouncer refuses unknown ones,
        and with ``ignore_startup_parameters`` it would drop it silently — but
        enforced by asyncpg's ``command_timeout``, which cancels a statement
        that runs longer (the pooler forwards the cancel request).

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
        connect_args: dict[str, Any] = {
            "timeout": self.db_connect_timeout,
            "server_settings": server_settings,
        }
        if self.db_pgbouncer:
            connect_args.update(pgbouncer_connect_args())
            if self.db_statement_timeout_ms:
                connect_args["command_timeout"] = self.db_statement_timeout_ms / 1000
        elif self.db_statement_timeout_ms:
            server_settings["statement_timeout"] = str(self.db_statement_timeout_ms)
        options["connect_args"] = connect_args
        return options

    # Relay, retention and stream trimming (docs/failure-modes.md, "Relay and retention").
    relay_publish_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 2.0
    """How long one publish may take before the relay counts the broker as unavailable."""
    outbox_retention_seconds: Annotated[int, Field(ge=0)] = 7 * 86_400
    """Published outbox rows older than this are purged; pending rows never are."""
    inbox_retention_seconds: Annotated[int, Field(ge=0)] = 14 * 86_400
    """Inbox rows older than this are purged: a redelivery after that would be applied
    again, so it must exceed the broker's redelivery horizon (checked below)."""
    retention_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Rows one purge transaction deletes."""
    retention_interval_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    """How often the relay purges."""
    stream_maxlen: Annotated[int, Field(ge=0)] = 1_000_000
    """Entries a Redis stream keeps, approximately (XADD MAXLEN ~); 0: never trim. Trimming
    ignores consumer groups: keep it above the longest backlog a consumer may fall behind by."""

    @model_validator(mode="after")
    def _check_inbox_outlives_redelivery(self) -> Self:
        # The inbox is what makes a redelivery harmless; a row purged while its
        # message may still come back lets that message be applied twice.
        horizon_ms = self.broker_claim_idle_ms * self.broker_max_deliveries
        if self.inbox_retention_seconds * 1000 <= horizon_ms:
            raise ValueError(
                f"INBOX_RETENTION_SECONDS ({self.inbox_retention_seconds}) must exceed the "
                "broker's redelivery horizon, BROKER_CLAIM_IDLE_MS x BROKER_MAX_DELIVERIES "
                f"({horizon_ms / 1000:g} s): a message redelivered after its inbox row "
                "is purged would be applied twice"
            )
        return self

    def retention_policy(self) -> RetentionPolicy:
        """The relay's purge policy (``create_relay(retention=...)``)."""
        from adapters.retention import RetentionPolicy  # the settings stay import-light

        return RetentionPolicy(
            outbox_age=timedelta(seconds=self.outbox_retention_seconds),
            inbox_age=timedelta(seconds=self.inbox_retention_seconds),
            batch_size=self.retention_batch_size,
            interval=self.retention_interval_seconds,
        )

    def direct_engine_options(self) -> dict[str, Any]:
        """:meth:`engine_options` for ``direct_database_url``: pooler settings only if
        that URL is the pooler's too (``DATABASE_DIRECT_URL`` unset)."""
        if self.database_direct_url is None:
            return self.engine_options()
        return self.model_copy(
            update={"database_url": self.database_direct_url, "db_pgbouncer": False}
        ).engine_options()


def _split(names: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in names.split(",") if name.strip())


def _split_urls(value: str) -> list[str]:
    return [url.strip() for url in value.split(",") if url.strip()]


def _unique_statement_name() -> str:
    return f"__keel_{uuid4().hex}__"


def pgbouncer_connect_args() -> dict[str, Any]:
    """asyncpg options that make prepared statements safe behind a transaction pooler."""
    return {
        "statement_cache_size": 0,  # asyncpg's own cache: unnamed statements
        "prepared_statement_cache_size": 0,  # SQLAlchemy's dialect cache
        "prepared_statement_name_func": _unique_statement_name,
    }


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
