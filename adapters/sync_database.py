"""The synchronous side: engine, ``SessionLocal`` and a session-per-request ``get_db``.

The seed's pattern (one engine and one ``sessionmaker`` per process, a session
per request, business code handed a session), with the async side's safety:

- no engine at import: ``sync_session_manager.init(url)`` at start-up binds
  ``SessionLocal``; before that, ``get_db`` says so instead of failing later;
- ``get_db`` commits *before* the response when declared through
  :data:`SyncSessionDep` (``scope="function"``), rolls back on any error,
  always closes;
- URLs are checked up front (``postgresql+psycopg://`` or ``sqlite://``), and
  no error or log line ever shows the password.

For scripts, Celery-style tasks and ``def`` routes. Code that is async end to
end uses ``adapters.database`` instead; both may share one database and one
set of mappings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from adapters.database import (
    ENGINE_CREATION_ERRORS,
    DatabaseConfigurationError,
    SessionManagerNotInitialised,
    engine_creation_error,
    engine_options_for,
    safe_url,
)

SUPPORTED_SYNC_DRIVERS = ("postgresql+psycopg", "sqlite", "sqlite+pysqlite")


def parse_sync_database_url(url: str) -> URL:
    """Parse and check a URL for a synchronous engine, naming exactly what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise DatabaseConfigurationError(
            "database URL is empty; expected e.g. 'postgresql+psycopg://user@host/db'"
        )
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseConfigurationError(
            "database URL is malformed; expected 'dialect+driver://user:password@host:port/db', "
            "e.g. 'postgresql+psycopg://app@localhost/app' or 'sqlite:///./keel.db'"
        ) from None
    if parsed.drivername not in SUPPORTED_SYNC_DRIVERS:
        hint = ""
        if parsed.get_backend_name() == "postgresql":
            hint = " (use 'postgresql+psycopg://': psycopg 3 is the synchronous driver Keel ships)"
        elif parsed.get_backend_name() == "sqlite":
            hint = " (use 'sqlite://': the standard library's sqlite3)"
        raise DatabaseConfigurationError(
            f"unsupported synchronous database driver {parsed.drivername!r} in "
            f"{safe_url(parsed)}{hint}; supported: {', '.join(SUPPORTED_SYNC_DRIVERS)}"
        )
    if parsed.get_backend_name() == "postgresql":
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise DatabaseConfigurationError(f"port out of range in {safe_url(parsed)}")
        if not parsed.database:
            raise DatabaseConfigurationError(f"no database name in {safe_url(parsed)}")
    return parsed


def create_sync_engine(url: str, **engine_options: Any) -> Engine:
    """An ``Engine`` with pre-ping, hourly recycling and SQLite's foreign keys on."""
    parsed = parse_sync_database_url(url)
    options = engine_options_for(parsed, engine_options)
    if parsed.get_backend_name() != "sqlite":
        # A blocking driver learns that the server closed a connection only by
        # using it, so the async side's free check (adapters.liveness) cannot work here.
        options.setdefault("pool_pre_ping", True)
    try:
        engine = create_engine(parsed, **options)
    except ENGINE_CREATION_ERRORS as exc:
        raise engine_creation_error(parsed, exc) from None
    if parsed.get_backend_name() == "sqlite":
        _enable_sqlite_foreign_keys(engine)
        _begin_before_sqlite_savepoints(engine)
    return engine


def _enable_sqlite_foreign_keys(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _begin_before_sqlite_savepoints(engine: Engine) -> None:
    """A SAVEPOINT nests inside a transaction, as on PostgreSQL (see ``adapters.database``).

    sqlite3's legacy mode sends no BEGIN before SELECT or SAVEPOINT, so a
    savepoint opened before any write would become the outer transaction and
    its RELEASE would commit for good.
    """

    @event.listens_for(engine, "savepoint")
    def _on_savepoint(connection: Any, _name: str | None) -> None:
        if not connection.connection.driver_connection.in_transaction:
            connection.exec_driver_sql("BEGIN")


SessionLocal: sessionmaker[Session] = sessionmaker(autoflush=True, expire_on_commit=False)
"""The process's session factory, as the seed names it; bound by ``sync_session_manager.init``.

Unlike the seed, ``autoflush`` is on (a query sees what the same unit of work
staged, as on the async side) and ``expire_on_commit`` off (objects stay
readable after commit without another query).
"""


class SyncDatabaseSessionManager:
    """Owns the process's synchronous engine and binds ``SessionLocal`` to it."""

    def __init__(self, factory: sessionmaker[Session] | None = None) -> None:
        self._engine: Engine | None = None
        self._factory = (
            factory if factory is not None else sessionmaker(autoflush=True, expire_on_commit=False)
        )

    def init(self, url: str, **engine_options: Any) -> None:
        """Create the engine; options pass through to ``create_engine``."""
        if self._engine is not None:
            raise RuntimeError("SyncDatabaseSessionManager.init() called twice; call close() first")
        self._engine = create_sync_engine(url, **engine_options)
        self._factory.configure(bind=self._engine)

    @property
    def is_initialised(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise SessionManagerNotInitialised(
                "the synchronous database is not initialised; call "
                "sync_session_manager.init(url) at start-up"
            )
        return self._engine

    @property
    def session_factory(self) -> sessionmaker[Session]:
        self.engine  # noqa: B018 - raises the explanatory error when not initialised
        return self._factory

    def close(self) -> None:
        """Dispose of the engine. Calling it again, or before ``init``, does nothing."""
        if self._engine is None:
            return
        engine, self._engine = self._engine, None
        self._factory.configure(bind=None)
        engine.dispose()

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session rolled back on any exception and always closed; the caller commits."""
        session = self.session_factory()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


sync_session_manager = SyncDatabaseSessionManager(SessionLocal)
"""The process-wide manager behind ``SessionLocal`` and ``get_db``."""


def get_db() -> Iterator[Session]:
    """FastAPI dependency: one session per request, committed before the response.

    Declare it through :data:`SyncSessionDep` (``scope="function"``): FastAPI
    then runs the commit when the endpoint returns and before the response is
    sent, so a failing commit is an error status, never a 2xx that lied.
    """
    with sync_session_manager.session() as session:
        yield session
        session.commit()


@contextlib.contextmanager
def get_db_context() -> Iterator[Session]:
    """For scripts and background tasks: commit on success, roll back on error."""
    with sync_session_manager.session() as session:
        yield session
        session.commit()


SyncSessionDep = Annotated[Session, Depends(get_db, scope="function")]
