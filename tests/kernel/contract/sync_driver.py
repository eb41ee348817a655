"""Drives a synchronous unit of work through the async contract scenarios.

The contract tests are written once, as coroutines. For the ``sync`` flavour
each awaited call is forwarded, on the spot, to the same call of an
:class:`AbstractSyncUnitOfWork` and its :class:`SyncRepository`: the state
machine, the events, the savepoints and the SQL under test are the sync
ones; only the ``await`` is the harness's. The one translation: an ``async``
``on_commit`` callback (sync units of work take plain functions) is awaited
after the sync commit returned, which is when the sync port would have run it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from domain.aggregate import Aggregate, Event
from service_layer.pagination import Page
from service_layer.repository import Ordering, SyncRepository
from service_layer.sync_unit_of_work import AbstractSyncUnitOfWork
from service_layer.unit_of_work import CommitCallback
from tests.kernel.parts import Part
from tests.kernel.parts_uow import SyncPartUnitOfWork
from tests.kernel.things import Thing
from tests.kernel.things_uow import SyncThingUnitOfWork

T = TypeVar("T", bound=Aggregate[Any])
K = TypeVar("K")
K_contra = TypeVar("K_contra", contravariant=True)
U = TypeVar("U", bound=AbstractSyncUnitOfWork)

logger = logging.getLogger(__name__)


class RepositoryLike(Protocol[T, K_contra]):
    """What the scenarios use of a repository: ``Repository`` has exactly this surface."""

    @property
    def seen(self) -> list[T]: ...

    def add(self, aggregate: T) -> None: ...

    async def add_many(self, aggregates: Iterable[T]) -> None: ...

    async def get(self, ident: K_contra) -> T | None: ...

    async def get_for_update(self, ident: K_contra) -> T | None: ...

    async def list(
        self,
        *,
        where: Mapping[str, object] | None = None,
        order_by: Ordering = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[T]: ...

    async def count(self, *, where: Mapping[str, object] | None = None) -> int: ...

    async def page(
        self,
        *,
        where: Mapping[str, object] | None = None,
        order_by: Ordering = (),
        after: str | None = None,
        limit: int,
    ) -> Page[T]: ...

    async def remove(self, aggregate: T) -> None: ...


class UnitOfWorkLike(Protocol):
    """What the scenarios use of a unit of work: ``AbstractUnitOfWork`` has this surface."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    def on_commit(self, callback: CommitCallback) -> None: ...

    def savepoint(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    def collect_new_events(self) -> Iterator[Event]: ...


class ThingsUnitOfWork(UnitOfWorkLike, Protocol):
    @property
    def things(self) -> RepositoryLike[Thing, Any]: ...


class PartsUnitOfWork(UnitOfWorkLike, Protocol):
    @property
    def parts(self) -> RepositoryLike[Part, Any]: ...


class AsyncRepositoryDriver(Generic[T, K]):
    """Forwards each call to a :class:`SyncRepository`."""

    def __init__(self, repository: SyncRepository[T, K]) -> None:
        self.repository = repository

    @property
    def seen(self) -> list[T]:
        return self.repository.seen

    def add(self, aggregate: T) -> None:
        self.repository.add(aggregate)

    async def add_many(self, aggregates: Iterable[T]) -> None:
        self.repository.add_many(aggregates)

    async def get(self, ident: K) -> T | None:
        return self.repository.get(ident)

    async def get_for_update(self, ident: K) -> T | None:
        return self.repository.get_for_update(ident)

    async def list(
        self,
        *,
        where: Mapping[str, object] | None = None,
        order_by: Ordering = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[T]:
        return self.repository.list(where=where, order_by=order_by, limit=limit, offset=offset)

    async def count(self, *, where: Mapping[str, object] | None = None) -> int:
        return self.repository.count(where=where)

    async def page(
        self,
        *,
        where: Mapping[str, object] | None = None,
        order_by: Ordering = (),
        after: str | None = None,
        limit: int,
    ) -> Page[T]:
        return self.repository.page(where=where, order_by=order_by, after=after, limit=limit)

    async def remove(self, aggregate: T) -> None:
        self.repository.remove(aggregate)


class AsyncUnitOfWorkDriver(Generic[U]):
    """Forwards each call to an :class:`AbstractSyncUnitOfWork`."""

    def __init__(self, uow: U) -> None:
        self.uow = uow
        self._awaiting: list[Awaitable[Any]] = []

    async def __aenter__(self) -> Self:
        self.uow.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uow.__exit__(exc_type, exc, tb)

    async def commit(self) -> None:
        self.uow.commit()
        awaiting, self._awaiting = self._awaiting, []
        for pending in awaiting:
            try:
                await pending
            except Exception:
                logger.exception("on_commit callback failed after a successful commit")

    async def rollback(self) -> None:
        self.uow.rollback()

    def on_commit(self, callback: CommitCallback) -> None:
        def run() -> None:
            result = callback()
            if inspect.isawaitable(result):
                self._awaiting.append(result)

        self.uow.on_commit(run)

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        with self.uow.savepoint():
            yield

    def collect_new_events(self) -> Iterator[Event]:
        return self.uow.collect_new_events()


class SyncThingsDriver(AsyncUnitOfWorkDriver[SyncThingUnitOfWork]):
    @property
    def things(self) -> AsyncRepositoryDriver[Thing, Any]:
        return AsyncRepositoryDriver(self.uow.things)


class SyncPartsDriver(AsyncUnitOfWorkDriver[SyncPartUnitOfWork]):
    @property
    def parts(self) -> AsyncRepositoryDriver[Part, Any]:
        return AsyncRepositoryDriver(self.uow.parts)
