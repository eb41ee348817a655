"""The synchronous unit of work's two backends: SQLAlchemy's ``Session`` and the fake.

They mirror ``adapters.unit_of_work`` line for line where they can (the same
error translation, the same fake bookkeeping) and pass the same contract
suite, so a task written against :class:`AbstractSyncUnitOfWork` behaves on
PostgreSQL, SQLite and in memory as its async twin does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm import Session, sessionmaker

from adapters.repository import InMemoryStore, InMemorySyncRepository, SqlAlchemySyncRepository
from adapters.unit_of_work import check_fakes, translate_sql_error
from domain.aggregate import Aggregate
from domain.errors import ConcurrencyError
from service_layer.repository import SyncRepository
from service_layer.sync_unit_of_work import AbstractSyncUnitOfWork

T = TypeVar("T", bound=Aggregate[Any])


class SqlAlchemySyncUnitOfWork(AbstractSyncUnitOfWork):
    """A unit of work over one ``Session`` from ``session_factory`` (e.g. ``SessionLocal``)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        super().__init__()
        self.session_factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The session of the active block, for read-side queries that bypass aggregates."""
        self._require_active("the session")
        assert self._session is not None
        return self._session

    def _make_repository(self, kind: type[T]) -> SyncRepository[T, Any]:
        return SqlAlchemySyncRepository(self.session, kind)

    def _sql_repositories(self) -> list[SqlAlchemySyncRepository[Any, Any]]:
        return [r for r in self._repositories.values() if isinstance(r, SqlAlchemySyncRepository)]

    def _begin(self) -> None:
        self._session = self.session_factory()

    def _commit(self) -> None:
        for repo in self._sql_repositories():
            repo.before_commit()
        try:
            self.session.commit()
            for repo in self._sql_repositories():
                repo.after_commit()
        except Exception:
            # As on the async side: SQLite keeps a transaction open after a
            # refused COMMIT; end it, and report the commit's error.
            with contextlib.suppress(Exception):
                self._rollback()
            raise

    def _rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
        for repo in self._sql_repositories():
            repo.after_rollback()

    def _discard(self) -> None:
        # Closing rolls back without expiring: aggregates read in the block
        # stay readable after it, as on the async side.
        pass

    def _close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.close()

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[None]:
        for repo in self._sql_repositories():
            repo.attach_all()
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            # A rolled-back savepoint expires what it touched; reload it now,
            # so that aggregates stay readable after the block as they do on
            # the async side (an expired one would raise once detached).
            for instance in list(self.session.identity_map.values()):
                if inspect(instance).expired_attributes:
                    self.session.refresh(instance)
            raise

    def translate_error(self, exc: BaseException) -> Exception | None:
        return translate_sql_error(exc)


class InMemorySyncUnitOfWork(AbstractSyncUnitOfWork):
    """The sync fake over an :class:`InMemoryStore`; shares the async fake's store format.

    Counts ``commits`` and ``rollbacks`` for assertions.
    """

    def __init__(self, store: InMemoryStore | None = None) -> None:
        super().__init__()
        self.store = store if store is not None else InMemoryStore()
        self.commits = 0
        self.rollbacks = 0

    def _make_repository(self, kind: type[T]) -> SyncRepository[T, Any]:
        return InMemorySyncRepository(self.store, kind)

    def _fakes(self) -> list[InMemorySyncRepository[Any, Any]]:
        return [r for r in self._repositories.values() if isinstance(r, InMemorySyncRepository)]

    def _begin(self) -> None:
        pass

    def _commit(self) -> None:
        try:
            check_fakes(self._fakes())
        except ConcurrencyError:
            self._rollback()
            raise
        for repo in self._fakes():
            repo.flush()
        self.commits += 1

    def _rollback(self) -> None:
        if not any(repo.has_pending() for repo in self._fakes()):
            return
        for kind in list(self._repositories):
            repo = self._repositories.pop(kind)
            self.repository(kind).seen.extend(repo.seen)
        self.rollbacks += 1

    def _close(self) -> None:
        pass

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[None]:
        captured = {
            kind: repo.capture()
            for kind, repo in self._repositories.items()
            if isinstance(repo, InMemorySyncRepository)
        }
        try:
            yield
        except BaseException:
            for kind in list(self._repositories):
                repo = self._repositories[kind]
                if kind in captured and isinstance(repo, InMemorySyncRepository):
                    repo.restore(captured[kind])
                else:
                    del self._repositories[kind]
                    self.repository(kind)
            raise
