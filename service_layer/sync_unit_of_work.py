"""The synchronous unit of work: :class:`AbstractUnitOfWork`'s contract with ``with``.

    with uow:
        part = uow.parts.get(part_id)
        part.restock(5)
        uow.commit()

For code that is not async: scripts, Celery-style tasks, ``def`` routes. The
rules are the async port's, and the same contract suite proves them: leaving
the block without ``commit()`` rolls back, an exception rolls back and
propagates, ``on_commit`` callbacks run only after a commit, blocks do not
nest, ``savepoint()`` undoes only its own work. Declare repositories with
:class:`sync_repository`::

    class SyncPartUnitOfWork(AbstractSyncUnitOfWork):
        parts = sync_repository(Part, UUID)
"""

from __future__ import annotations

import abc
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar, overload
from uuid import UUID

from domain.aggregate import Aggregate, Event
from service_layer.repository import SyncRepository
from service_layer.unit_of_work import BlockState, EventsOfSeenAggregates, UnitOfWorkError

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=Aggregate[Any])
K = TypeVar("K")

SyncCommitCallback = Callable[[], object]


class SyncCommitHook(Protocol):
    """Writes in the transaction just before it commits; see ``CommitHook``."""

    def before_commit(
        self, uow: AbstractSyncUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None: ...


class sync_repository(Generic[T, K]):  # noqa: N801 - reads as a declaration, like repository
    """Declares a typed :class:`SyncRepository` attribute on a sync unit-of-work class."""

    def __init__(self, kind: type[T], key: type[K], *, fields: Iterable[str] | None = None) -> None:
        self.kind = kind
        self.key = key
        self.fields = None if fields is None else tuple(fields)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> sync_repository[T, K]: ...

    @overload
    def __get__(
        self, instance: AbstractSyncUnitOfWork, owner: type[Any]
    ) -> SyncRepository[T, K]: ...

    def __get__(
        self, instance: AbstractSyncUnitOfWork | None, owner: type[Any]
    ) -> sync_repository[T, K] | SyncRepository[T, K]:
        if instance is None:
            return self
        return instance.repository(self.kind)


def _declared_fields(owner: type[Any], kind: type[Any]) -> tuple[str, ...] | None:
    for cls in owner.__mro__:
        for value in vars(cls).values():
            if isinstance(value, sync_repository) and value.kind is kind:
                return value.fields
    return None


class AbstractSyncUnitOfWork(EventsOfSeenAggregates, abc.ABC):
    """The port every synchronous service function depends on."""

    def __init__(self) -> None:
        self._state = BlockState.NEW
        self._repositories: dict[type[Any], SyncRepository[Any, Any]] = {}
        self._callbacks: list[SyncCommitCallback] = []
        self.hooks: list[SyncCommitHook] = []
        self._committed_events: list[Event] = []
        self._recorded: set[UUID] = set()

    # -- the transaction ---------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._state is BlockState.ACTIVE:
            raise UnitOfWorkError(
                "this unit of work is already active; blocks do not nest (use savepoint())"
            )
        self._state = BlockState.ACTIVE
        self._repositories = {}
        self._callbacks = []
        self._recorded = set()
        self._begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._discard()
        finally:
            self._state = BlockState.CLOSED
            self._close()
        if exc is not None and (translated := self.translate_error(exc)) is not None:
            raise translated from exc

    def commit(self) -> None:
        """Make the work durable, then run the ``on_commit`` callbacks.

        A failing commit raises and keeps nothing; a stale version, a
        serialization failure or a deadlock raises ``ConcurrencyError``.
        """
        self._require_active("commit")
        try:
            raised = self._uncommitted_events()
            for hook in self.hooks:
                hook.before_commit(self, raised)
            self._commit()
        except Exception as exc:
            translated = self.translate_error(exc)
            if translated is not None:
                raise translated from exc
            raise
        self._recorded.update(event.event_id for _, event in raised)
        self._committed_events.extend(event for _, event in raised)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logger.exception("on_commit callback %r failed after a successful commit", callback)

    def rollback(self) -> None:
        """Discard everything staged so far; the block may go on with a clean slate."""
        self._require_active("rollback")
        self._callbacks = []
        self._rollback()

    def on_commit(self, callback: SyncCommitCallback) -> None:
        """Run ``callback`` after this unit of work commits; never after a rollback."""
        self._require_active("on_commit")
        self._callbacks.append(callback)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside undoes only what the block did."""
        self._require_active("savepoint")
        with self._savepoint():
            yield

    # -- repositories and events ----------------------------------------------------------

    def repository(self, kind: type[T]) -> SyncRepository[T, Any]:
        """The repository for aggregates of ``kind`` in this transaction."""
        self._require_active("a repository")
        found = self._repositories.get(kind)
        if found is None:
            found = self._repositories[kind] = self._make_repository(kind)
            if (fields := _declared_fields(type(self), kind)) is not None:
                found.allow(fields)
        return found

    def _uncommitted_events(self) -> list[tuple[Aggregate[Any], Event]]:
        return [
            (aggregate, event)
            for aggregate in self._seen()
            for event in aggregate.events
            if event.event_id not in self._recorded
        ]

    # -- for subclasses --------------------------------------------------------------------

    def translate_error(self, exc: BaseException) -> Exception | None:
        """Map a backend error to a domain-level one, or ``None`` to keep it."""
        return None

    @abc.abstractmethod
    def _make_repository(self, kind: type[T]) -> SyncRepository[T, Any]: ...

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    def _discard(self) -> None:
        """Undo what is staged as the block ends; ``_close`` follows."""
        self._rollback()

    @abc.abstractmethod
    def _savepoint(self) -> contextlib.AbstractContextManager[None]: ...

    def _require_active(self, what: str) -> None:
        if self._state is not BlockState.ACTIVE:
            raise UnitOfWorkError(f"{what} needs an active unit of work; use it inside 'with uow:'")
