"""The unit of work's two backends: SQLAlchemy's ``AsyncSession`` and the in-memory fake.

Both implement :class:`service_layer.unit_of_work.AbstractUnitOfWork` and pass
the same contract suite (``tests/kernel/contract``), so a service tested on the
fake behaves the same on PostgreSQL and SQLite. Driver errors are translated
here, where they are met: the service layer sees only domain errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from adapters.database import ReadSessions, run_to_completion
from adapters.driver import Driver, Write, write
from adapters.driver import flush as driver_flush
from adapters.repository import (
    InMemoryCollection,
    InMemoryRepository,
    InMemoryStore,
    SqlAlchemyRepository,
)
from adapters.sql_errors import (
    RETRYABLE_SQLSTATES,
    UNIQUE_VIOLATION,
    is_unique_violation,
    sqlstate_of,
)
from domain.aggregate import Aggregate
from domain.errors import ConcurrencyError, DuplicateKeyError
from service_layer.repository import Repository
from service_layer.unit_of_work import AbstractUnitOfWork

T = TypeVar("T", bound=Aggregate[Any])

SQLITE_UNIQUE_PREFIX = "UNIQUE constraint failed: "


def translate_sql_error(exc: BaseException) -> Exception | None:
    """The domain error for a SQLAlchemy one (stale version, 40001, 40P01, 23505), or ``None``."""
    if isinstance(exc, StaleDataError):
        return ConcurrencyError(
            "the aggregate was changed or removed by another writer since it was read"
        )
    if isinstance(exc, DBAPIError):
        sqlstate = sqlstate_of(exc)
        if sqlstate in RETRYABLE_SQLSTATES:
            return ConcurrencyError(RETRYABLE_SQLSTATES[sqlstate], sqlstate=sqlstate)
        if is_unique_violation(exc):
            key = _unique_key_of(exc)
            return DuplicateKeyError(
                f"a row with the same unique key ({key or 'not named by the database'}) "
                "was written first",
                sqlstate=UNIQUE_VIOLATION,
                constraint=key,
            )
    return None


def check_fakes(fakes: Sequence[InMemoryCollection[Any]]) -> None:
    """Refuse a fake's commit as the database would: stale versions first, then duplicates."""
    duplicates = [problem for repo in fakes for problem in repo.duplicates()]
    problems = [problem for repo in fakes for problem in repo.conflicts()]
    if problems:
        raise ConcurrencyError("; ".join(problems))
    if duplicates:
        raise DuplicateKeyError("; ".join(duplicates), sqlstate=UNIQUE_VIOLATION)


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    """A unit of work over one ``AsyncSession`` from ``session_factory``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self.session_factory = session_factory
        self._session: AsyncSession | None = None
        self._connection: AsyncConnection | None = None
        """A read's connection taken without a session (``ReadSessions.driver_engine``)."""
        self._driver: Driver | None = None
        self._driver_known = False
        """Whether ``_driver`` is the current transaction's (``None`` there: the ORM's path
        only). A commit or rollback gives the connection back, so it is asked again."""

    @property
    def session(self) -> AsyncSession:
        """The session of the active block, for read-side queries that bypass aggregates."""
        self._require_active("the session")
        if self._session is None:
            # A read that began without one: on the connection it already holds, if any.
            bind = {} if self._connection is None else {"bind": self._connection}
            self._session = self.session_factory(**bind)
        return self._session

    def _make_repository(self, kind: type[T]) -> Repository[T, Any]:
        return SqlAlchemyRepository(self.session, kind, driver=self.driver)

    async def driver(self) -> Driver | None:
        """asyncpg under this block's transaction, for statements on the hot path; ``None``
        on other drivers."""
        if not self._driver_known:
            self._driver, self._driver_known = await self._find_driver(), True
        return self._driver

    async def _find_driver(self) -> Driver | None:
        engine = _sessionless_reads(self.session_factory)
        if self._session is None and engine is not None:
            # A read on the driver path needs no session: about a quarter of its CPU.
            if self._connection is None:
                self._connection = await engine.connect()
            assert self._connection.sync_connection is not None
            return Driver.on(self._connection.sync_connection)
        return await Driver.of(self.session)

    async def flush(self, then: Write | None = None) -> None:
        """Write what is staged, inside the transaction: straight on asyncpg where the
        mapping allows it (:mod:`adapters.driver`), through the ORM otherwise.

        ``then``, rows for the driver path (a commit hook's: the outbox's), are written
        after, in the same statement when the flush takes the driver path too."""
        driver = await self.driver()
        if driver is not None and await driver_flush(self.session, driver, then):
            return
        await self.session.flush()
        if then is not None:
            if driver is None:
                raise TypeError("rows for the driver path, and this unit of work has none")
            await write(driver, [then])

    def _sql_repositories(self) -> list[SqlAlchemyRepository[Any, Any]]:
        return [r for r in self._repositories.values() if isinstance(r, SqlAlchemyRepository)]

    async def _begin(self) -> None:
        self._driver_known = False
        sessionless = _sessionless_reads(self.session_factory) is not None
        self._session = None if sessionless else self.session_factory()

    async def _commit(self) -> None:
        for repo in self._sql_repositories():
            repo.before_commit()  # aggregates add_many wrote and changed since: flush them
        # On failure the kernel rolls back (``AbstractUnitOfWork.commit``): a
        # COMMIT refused by a deferred constraint leaves SQLite's transaction
        # open, and closing the session would not end it.
        await self.flush()
        self._driver_known = False
        await self.session.commit()
        for repo in self._sql_repositories():
            repo.after_commit()

    async def _rollback(self) -> None:
        self._driver_known = False
        if self._session is not None:
            await run_to_completion(self._session.rollback())
        for repo in self._sql_repositories():
            repo.after_rollback()

    async def _discard(self) -> None:
        # Nothing here: ``_close`` closes the session, which rolls the
        # transaction back *without* expiring the objects. A rollback would
        # expire them, and aggregates read in a block (the usual way to
        # return data) would then raise DetachedInstanceError after it.
        pass

    async def _close(self) -> None:
        self._driver_known = False
        if self._session is not None:
            session, self._session = self._session, None
            if session.in_transaction():
                # Shielded: a cancellation arriving now must not cut the rollback short.
                await run_to_completion(session.close())
            else:
                # After a commit: nothing to roll back and no I/O, so nothing a
                # cancellation could cut short, and no greenlet needed to run it.
                session.sync_session.close()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await run_to_completion(connection.close())

    @contextlib.asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        for repo in self._sql_repositories():
            repo.attach_all()  # the savepoint's rollback must see every aggregate
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            # Rolling back a savepoint expires what it touched; reload now, in
            # async context, or the next attribute access would need lazy I/O.
            for instance in list(self.session.identity_map.values()):
                if inspect(instance).expired_attributes:
                    await self.session.refresh(instance)
            raise

    def translate_error(self, exc: BaseException) -> Exception | None:
        return translate_sql_error(exc)


def _sessionless_reads(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine | None:
    """The engine a read unit of work takes its connection from without a session, if any."""
    return sessions.driver_engine if isinstance(sessions, ReadSessions) else None


def _unique_key_of(exc: DBAPIError) -> str | None:
    """The refused key: PostgreSQL's constraint name, or SQLite's list of columns."""
    candidate: BaseException | None = exc.orig
    while candidate is not None:
        # asyncpg names it on the error; psycopg in its diagnostics.
        name = getattr(candidate, "constraint_name", None) or getattr(
            getattr(candidate, "diag", None), "constraint_name", None
        )
        if isinstance(name, str):
            return name
        candidate = candidate.__cause__
    message = str(exc.orig)
    return message.partition(SQLITE_UNIQUE_PREFIX)[2].strip() or None


class InMemoryUnitOfWork(AbstractUnitOfWork):
    """The fake: real unit-of-work semantics over an :class:`InMemoryStore`.

    It detects stale versions and duplicate ids like the database would, keeps
    nothing that was not committed, and counts for assertions: ``commits``
    (successful ones), ``rollbacks`` (transactions that ended without a
    commit: an explicit rollback, a failed commit, a block left with no
    commit after its last work — whatever was staged), and ``accessed`` (the
    aggregate type of every repository reached, in order).
    """

    _open: bool
    """A transaction is open: begun, or used since its last commit or rollback."""

    def __init__(self, store: InMemoryStore | None = None) -> None:
        super().__init__()
        self.store = store if store is not None else InMemoryStore()
        self.commits = 0
        self.rollbacks = 0
        self.accessed: list[type[Any]] = []

    def repository(self, kind: type[T]) -> Repository[T, Any]:
        self.accessed.append(kind)
        found = super().repository(kind)
        self._open = True
        return found

    def _make_repository(self, kind: type[T]) -> Repository[T, Any]:
        return InMemoryRepository(self.store, kind)

    def _fakes(self) -> list[InMemoryRepository[Any, Any]]:
        return [r for r in self._repositories.values() if isinstance(r, InMemoryRepository)]

    async def _begin(self) -> None:
        self._open = True

    async def _commit(self) -> None:
        check_fakes(self._fakes())
        for repo in self._fakes():
            repo.flush()
        self.commits += 1
        self._open = False

    @property
    def committed(self) -> bool:
        return self.commits > 0

    async def _rollback(self) -> None:
        # The staged work lives in the repositories, which the kernel drops
        # (or the next block replaces); here the rollback is only counted.
        if self._open:
            self.rollbacks += 1
        self._open = False

    async def _close(self) -> None:
        pass

    @contextlib.asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        captured = {
            kind: repo.capture()
            for kind, repo in self._repositories.items()
            if isinstance(repo, InMemoryRepository)
        }
        try:
            yield
        except BaseException:
            for kind in list(self._repositories):
                repo = self._repositories[kind]
                if kind in captured and isinstance(repo, InMemoryRepository):
                    repo.restore(captured[kind])
                else:
                    del self._repositories[kind]
                    self.repository(kind)
            raise
