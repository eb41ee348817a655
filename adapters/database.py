"""Engine and session lifecycle: ``DatabaseSessionManager`` and its FastAPI helpers.

One engine per process, created explicitly at start-up (never at import, so
that importing a module has no side effects and tests can point it anywhere),
disposed at shutdown. ``session_manager`` is the one documented module-level
object in Keel; everything else is passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session
from sqlalchemy.pool import StaticPool

from adapters import liveness

SUPPORTED_DRIVERS = ("postgresql+asyncpg", "sqlite+aiosqlite")

_T = TypeVar("_T")

logger = logging.getLogger(__name__)


async def run_to_completion(cleanup: Awaitable[_T]) -> _T:
    """Await ``cleanup`` to its end even if the caller is cancelled meanwhile.

    For the close or rollback that ends a transaction. Cut short by a second
    cancellation (a server cancelling a request task again, a task group
    tearing down), SQLAlchemy throws the connection away instead of rolling
    it back and returning it to the pool, so every such request costs a
    reconnect; and a caller that returned early would let the close go on
    behind its back, e.g. into an engine the application is disposing of.
    A cancellation received while waiting is re-raised once ``cleanup`` is
    done — even when ``cleanup`` failed: its error is logged, and the
    cancellation is what the caller gets, or a task could never be cancelled
    while its database is away. SQLAlchemy does the same for
    ``async with AsyncSession`` with a private helper, which is why this is
    written out here.
    """
    task = asyncio.ensure_future(cleanup)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            cancelled = exc
        except BaseException:
            break  # the cleanup's own error, read from the task below
    if cancelled is None:
        return task.result()
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error(
            "cleanup %r failed while its caller was being cancelled; the cancellation goes on",
            cleanup,
            exc_info=error,
        )
    raise cancelled


async def _cleanup_quietly(cleanup: Awaitable[Any], what: str) -> None:
    """Run ``cleanup`` while another error propagates: a failure of its own is logged,
    never raised in that error's place. A cancellation still propagates."""
    try:
        await run_to_completion(cleanup)
    except Exception:
        logger.exception("%s failed while another error propagated; that error goes on", what)


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base for users who prefer declarative models.

    Its ``registry`` also maps the plain domain classes imperatively, so both
    styles share one ``MetaData`` and Alembic sees every table.
    """


metadata = Base.metadata
mapper_registry = Base.registry


class DatabaseConfigurationError(ValueError):
    """The database URL or engine options are unusable. The message never holds a password."""


class SessionManagerNotInitialised(RuntimeError):
    pass


class WriteInReadOnlySession(RuntimeError):
    """Something tried to write through a session made for reads only."""


class ReadOnlySession(Session):
    """A session for reads: each statement in autocommit (PostgreSQL), and writes refused.

    Read units of work run one ``SELECT`` or a few; in PostgreSQL's READ
    COMMITTED each statement takes its own snapshot inside a transaction as
    well, so a transaction around them added two round trips (``BEGIN``,
    ``ROLLBACK``) and no guarantee. Without one, a write would be kept at
    once, so writes are refused before they reach the database: a flush of
    anything added or changed, and any ORM-level ``INSERT``/``UPDATE``/``DELETE``.
    """


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise WriteInReadOnlySession(
            "a read-only unit of work cannot write; use the context's unit of work "
            "(or bus) for changes"
        )


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_write_statements(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise WriteInReadOnlySession(
            f"a read-only unit of work cannot run {type(state.statement).__name__.upper()}; "
            "use the context's unit of work (or bus) for changes"
        )


class ReadSessions(async_sessionmaker[AsyncSession]):
    """The factory of read-only sessions (:class:`ReadOnlySession`).

    ``driver_engine`` is set where reads may skip the session altogether (autocommit on
    asyncpg): a read unit of work on the driver path then takes a connection of that
    engine straight, and makes a session, on that connection, only if asked for one.
    """

    def __init__(self, engine: AsyncEngine, *, autocommit: bool) -> None:
        bind = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
        super().__init__(
            bind, sync_session_class=ReadOnlySession, expire_on_commit=False, autoflush=False
        )
        self.driver_engine = bind if autocommit and engine.dialect.driver == "asyncpg" else None


def read_session_factory(
    engine: AsyncEngine, *, transaction_pooler: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine`` for read-only units of work: :class:`ReadOnlySession`.

    In autocommit on PostgreSQL, unless ``engine`` reaches it through a
    transaction pooler (PgBouncer): there a statement outside a transaction
    may have its prepare and its execute sent to two different servers, so
    the reads keep their ``BEGIN``. Not on SQLite, which has no round trips
    to save, and whose driver commits an open transaction when a connection
    is switched to autocommit (an in-memory database shares one connection).
    """
    autocommit = engine.dialect.name == "postgresql" and not transaction_pooler
    return ReadSessions(engine, autocommit=autocommit)


def safe_url(url: str | URL) -> str:
    """Render a URL for logs and errors with the password replaced by ``***``."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def parse_database_url(url: str) -> URL:
    """Parse and check a database URL, naming exactly what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise DatabaseConfigurationError(
            "database URL is empty; expected e.g. 'postgresql+asyncpg://user@host/db'"
        )
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseConfigurationError(
            "database URL is malformed; expected 'dialect+driver://user:password@host:port/db', "
            "e.g. 'postgresql+asyncpg://app@localhost/app' or 'sqlite+aiosqlite:///./keel.db'"
        ) from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        hint = ""
        if parsed.get_backend_name() == "postgresql":
            hint = (
                " (use 'postgresql+asyncpg://'; synchronous drivers cannot serve an async engine)"
            )
        elif parsed.get_backend_name() == "sqlite":
            hint = " (use 'sqlite+aiosqlite://')"
        raise DatabaseConfigurationError(
            f"unsupported database driver {parsed.drivername!r} in {safe_url(parsed)}{hint}; "
            f"supported: {', '.join(SUPPORTED_DRIVERS)}"
        )
    if parsed.get_backend_name() == "postgresql":
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise DatabaseConfigurationError(f"port out of range in {safe_url(parsed)}")
        if not parsed.database:
            raise DatabaseConfigurationError(f"no database name in {safe_url(parsed)}")
    return parsed


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def engine_options_for(url: URL, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults that suit each backend, with the caller's options on top."""
    options: dict[str, Any]
    if url.get_backend_name() == "sqlite":
        options = {}
        if _is_memory_sqlite(url):
            # One shared connection, or every session would see its own empty database.
            options["poolclass"] = StaticPool
            options["connect_args"] = {"check_same_thread": False}
    else:
        options = {"pool_recycle": 3600}
    options.update(overrides)
    return options


def _enable_sqlite_foreign_keys(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _begin_before_sqlite_savepoints(engine: AsyncEngine) -> None:
    """Make a SAVEPOINT nest inside a transaction, as it does on PostgreSQL.

    The sqlite3 driver's legacy mode sends no BEGIN before SELECT or
    SAVEPOINT, so a savepoint opened before any write became the outermost
    transaction and its RELEASE committed for good, whatever the unit of work
    decided after. SQLAlchemy's documented recipe (BEGIN on every transaction)
    would also fix this, but makes every read hold a lock until the
    transaction ends; this sends BEGIN only when a savepoint needs one.
    """

    @event.listens_for(engine.sync_engine, "savepoint")
    def _on_savepoint(connection: Any, _name: str | None) -> None:
        if not connection.connection.driver_connection.in_transaction:
            connection.exec_driver_sql("BEGIN")


ENGINE_CREATION_ERRORS = (TypeError, ArgumentError, NoSuchModuleError)
"""What SQLAlchemy raises for options or a driver it cannot use."""


def engine_creation_error(url: URL, exc: Exception) -> DatabaseConfigurationError:
    """The error for an engine that could not be made, naming the URL with its password masked."""
    message = str(exc).replace(str(url.password or "\0"), "***")
    return DatabaseConfigurationError(f"cannot create an engine for {safe_url(url)}: {message}")


def create_engine_for(
    url: str,
    engine_options: dict[str, Any],
    *,
    ping_after_idle: float = liveness.PING_AFTER_IDLE_SECONDS,
) -> AsyncEngine:
    """An engine with Keel's defaults: the one way the async engines are made.

    On PostgreSQL, pooled connections are checked by :mod:`adapters.liveness`
    (no round trip unless idle longer than ``ping_after_idle`` seconds) unless
    the caller asks for SQLAlchemy's ``pool_pre_ping`` itself.
    """
    parsed = parse_database_url(url)
    options = engine_options_for(parsed, engine_options)
    try:
        engine = create_async_engine(parsed, **options)
    except ENGINE_CREATION_ERRORS as exc:
        raise engine_creation_error(parsed, exc) from None
    if parsed.get_backend_name() == "sqlite":
        _enable_sqlite_foreign_keys(engine)
        _begin_before_sqlite_savepoints(engine)
    elif not options.get("pool_pre_ping"):
        liveness.watch(engine.sync_engine, ping_after_idle=ping_after_idle)
    return engine


class DatabaseSessionManager:
    """Owns the process's engine and session factory.

    ``init`` and ``close`` bracket the application's life (FastAPI lifespan,
    a CLI command, a test fixture). ``session()`` is the building block that
    everything else — ``get_db``, the unit of work — uses.
    """

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._direct_engine: AsyncEngine | None = None
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._read_sessionmaker: async_sessionmaker[AsyncSession] | None = None

    def init(
        self,
        url: str,
        *,
        direct_url: str | None = None,
        direct_options: dict[str, Any] | None = None,
        ping_after_idle: float = liveness.PING_AFTER_IDLE_SECONDS,
        transaction_pooler: bool = False,
        **engine_options: Any,
    ) -> None:
        """Create the engine. Options pass through to ``create_async_engine``.

        Defaults: on PostgreSQL ``pool_recycle=3600`` and pooled connections
        checked without a round trip (:mod:`adapters.liveness`; pinged only
        after ``ping_after_idle`` idle seconds); foreign keys enforced on
        SQLite; ``expire_on_commit=False``
        on sessions so objects stay readable after commit without lazy I/O.
        ``direct_url``: the database itself when ``url`` is a transaction
        pooler (PgBouncer), for what needs a session of its own: LISTEN and
        the relay's key locks (:attr:`direct_engine`); ``transaction_pooler``
        says that it is one, which the read sessions must know
        (:func:`read_session_factory`).
        """
        if self._engine is not None:
            raise RuntimeError(
                "DatabaseSessionManager.init() called twice; call 'await close()' first"
            )
        engine = create_engine_for(url, engine_options, ping_after_idle=ping_after_idle)
        if direct_url is not None:
            self._direct_engine = create_engine_for(
                direct_url, direct_options or {}, ping_after_idle=ping_after_idle
            )
        self._engine = engine
        self._sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self._read_sessionmaker = read_session_factory(
            engine, transaction_pooler=transaction_pooler
        )

    @property
    def direct_engine(self) -> AsyncEngine:
        """The engine on the database itself: the ``direct_url`` one, else :attr:`engine`."""
        return self._direct_engine if self._direct_engine is not None else self.engine

    @property
    def is_initialised(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise SessionManagerNotInitialised(
                "DatabaseSessionManager is not initialised; call session_manager.init(url) "
                "at start-up (for example in the FastAPI lifespan)"
            )
        return self._engine

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        self.engine  # noqa: B018 - raises the explanatory error when not initialised
        assert self._sessionmaker is not None
        return self._sessionmaker

    @property
    def read_session_factory(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for read-only units of work: no transaction around them, writes refused."""
        self.engine  # noqa: B018 - raises the explanatory error when not initialised
        assert self._read_sessionmaker is not None
        return self._read_sessionmaker

    async def close(self) -> None:
        """Dispose of the engines. Calling it again, or before ``init``, does nothing."""
        if self._engine is None:
            return
        engine, self._engine, self._sessionmaker = self._engine, None, None
        self._read_sessionmaker = None
        direct, self._direct_engine = self._direct_engine, None
        await engine.dispose()
        if direct is not None:
            await direct.dispose()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside a transaction: committed on success, rolled back on error."""
        async with self.engine.begin() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that is rolled back on any exception and always closed.

        It does not commit: the caller decides, because only the caller knows
        when the work is complete.
        """
        session = self.session_factory()
        try:
            yield session
        except BaseException:
            # The caller's error (a cancellation above all) is the one to report.
            try:
                await _cleanup_quietly(session.rollback(), "rolling back the session")
            finally:
                await _cleanup_quietly(session.close(), "closing the session")
            raise
        await run_to_completion(session.close())


session_manager = DatabaseSessionManager()
"""The process-wide manager. Initialise it at start-up with ``session_manager.init(url)``."""


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI's one session dependency: a session per request, committed before the response.

    The session comes from the app's container (``app.state.container``, see
    ``adapters.container``) when it has one, else from :data:`session_manager`.
    Use it through :data:`AsyncSessionDep`, which declares it with
    ``scope="function"``: FastAPI then runs the code after ``yield`` — the
    commit — when the endpoint returns and *before* the response is sent. With
    the default request scope the commit would run after the client had
    already been told "success", and a failing commit would be invisible.
    """
    container = getattr(request.app.state, "container", None)
    manager = session_manager if container is None else container.session_manager
    async with manager.session() as session:
        yield session
        await session.commit()


@contextlib.asynccontextmanager
async def get_db_context() -> AsyncIterator[AsyncSession]:
    """For scripts and background jobs: commit on success, roll back on error."""
    async with session_manager.session() as session:
        yield session
        await session.commit()


AsyncSessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
