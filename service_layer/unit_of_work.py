"""The unit of work: one business transaction, committed explicitly or not at all.

    async with uow:
        account = await uow.accounts.get(account_id)
        account.deposit(100)
        await uow.commit()

Leaving the block without ``commit()`` rolls back; an exception inside rolls
back and propagates; repositories and ``commit`` refuse to work outside the
block. Entering the block again starts a new transaction with fresh
repositories, which is how the retry helper and the message bus re-run work. Callbacks
registered with ``on_commit`` run only after a commit succeeded.

Domain-specific units of work declare their repositories with
:class:`repository`, once, on an abstract subclass; a backend is mixed in
by the composition root::

    class LedgerUnitOfWork(AbstractUnitOfWork):
        accounts = repository(Account, UUID)

    class SqlAlchemyLedgerUnitOfWork(LedgerUnitOfWork, SqlAlchemyUnitOfWork): ...
"""

from __future__ import annotations

import abc
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar, overload
from uuid import UUID

from domain.aggregate import Aggregate, Event
from service_layer import observers
from service_layer.repository import Repository

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=Aggregate[Any])
K = TypeVar("K")

CommitCallback = Callable[[], Awaitable[None] | None]


class UnitOfWorkError(RuntimeError):
    """The unit of work was used out of order (outside its block, or twice)."""


class CommitHook(Protocol):
    """Writes inside the transaction, after the aggregates and just before it commits.

    The transactional outbox is one (``adapters.outbox``): it turns the events
    raised since the last commit into rows of the same transaction, so they are
    kept if and only if the change is. ``raised`` pairs each new event with the
    aggregate that raised it. A hook that raises aborts the commit.
    """

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None: ...


class BlockState(enum.Enum):
    """Where a unit of work is in its life: before, inside or after its block."""

    NEW = "new"
    ACTIVE = "active"
    CLOSED = "closed"


class repository(Generic[T, K]):  # noqa: N801 - reads as a declaration, like dataclasses.field
    """Declares a typed repository attribute on a unit-of-work class.

    ``uow.accounts`` is then a ``Repository[Account, UUID]`` to mypy, and the
    backend mixed into the class decides which implementation it is.
    ``fields`` whitelists the attributes callers may filter and order by
    (``id`` always may); without it, every data attribute of ``kind`` may.
    """

    def __init__(self, kind: type[T], key: type[K], *, fields: Iterable[str] | None = None) -> None:
        self.kind = kind
        self.key = key
        self.fields = None if fields is None else tuple(fields)

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> repository[T, K]: ...

    @overload
    def __get__(self, instance: AbstractUnitOfWork, owner: type[Any]) -> Repository[T, K]: ...

    def __get__(
        self, instance: AbstractUnitOfWork | None, owner: type[Any]
    ) -> repository[T, K] | Repository[T, K]:
        if instance is None:
            return self
        return instance.repository(self.kind)


_DECLARED_FIELDS: dict[tuple[type[Any], type[Any]], tuple[str, ...] | None] = {}


def declared_fields(owner: type[Any], kind: type[Any]) -> tuple[str, ...] | None:
    """The ``fields`` whitelist of the :class:`repository` declaration of ``kind`` on ``owner``."""
    if (owner, kind) not in _DECLARED_FIELDS:
        _DECLARED_FIELDS[owner, kind] = next(
            (
                value.fields
                for cls in owner.__mro__
                for value in vars(cls).values()
                if isinstance(value, repository) and value.kind is kind
            ),
            None,
        )
    return _DECLARED_FIELDS[owner, kind]


class AbstractUnitOfWork(abc.ABC):
    """The port every service function depends on."""

    def __init__(self) -> None:
        self._state = BlockState.NEW
        self._repositories: dict[type[Any], Repository[Any, Any]] = {}
        self._callbacks: list[CommitCallback] = []
        self.hooks: list[CommitHook] = []
        self._committed_events: list[Event] = []
        self._recorded: set[UUID] = set()
        self._observed: list[tuple[observers.UnitOfWorkObserver, object]] = []

    # -- the transaction ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is BlockState.ACTIVE:
            raise UnitOfWorkError(
                "this unit of work is already active; blocks do not nest (use savepoint())"
            )
        self._state = BlockState.ACTIVE
        self._repositories = {}
        self._callbacks = []
        self._recorded = set()
        await self._begin()
        self._observed = observers.entered(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        error = exc
        try:
            try:
                # Always: work staged after a commit must not survive the block
                # either. Rolling back with nothing pending costs no round trip.
                await self._discard()
            finally:
                self._state = BlockState.CLOSED
                await self._close()
            if exc is not None and (translated := self.translate_error(exc)) is not None:
                raise translated from exc
        except BaseException as failure:
            error = failure
            raise
        finally:
            observers.exited(self, self._observed, error)

    async def commit(self) -> None:
        """Make the work durable, then run the ``on_commit`` callbacks.

        A failing commit raises and keeps nothing; a stale version, a
        serialization failure or a deadlock raises ``ConcurrencyError``.
        """
        self._require_active("commit")
        try:
            raised = self._uncommitted_events()
            for hook in self.hooks:
                await hook.before_commit(self, raised)
            await self._commit()
        except Exception as exc:
            translated = self.translate_error(exc)
            if translated is not None:
                raise translated from exc
            raise
        self._recorded.update(event.event_id for _, event in raised)
        self._committed_events.extend(event for _, event in raised)
        observers.committed(self)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            await self._run_callback(callback)

    async def rollback(self) -> None:
        """Discard everything staged so far; the block may go on with a clean slate."""
        self._require_active("rollback")
        self._callbacks = []
        await self._rollback()

    def on_commit(self, callback: CommitCallback) -> None:
        """Run ``callback`` after this unit of work commits; never after a rollback.

        A failing callback is logged, not raised: the commit already happened
        and the caller must hear that it did.
        """
        self._require_active("on_commit")
        self._callbacks.append(callback)

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: an exception inside undoes only what the block did."""
        self._require_active("savepoint")
        async with self._savepoint():
            yield

    # -- repositories and events ----------------------------------------------------------

    def repository(self, kind: type[T]) -> Repository[T, Any]:
        """The repository for aggregates of ``kind`` in this transaction."""
        self._require_active("a repository")
        found = self._repositories.get(kind)
        if found is None:
            found = self._repositories[kind] = self._make_repository(kind)
            if (fields := declared_fields(type(self), kind)) is not None:
                found.allow(fields)
        return found

    def collect_new_events(self) -> Iterator[Event]:
        """Drain the events raised by every aggregate this unit of work has seen."""
        for repo in list(self._repositories.values()):
            for aggregate in repo.seen:
                while aggregate.events:
                    yield aggregate.events.pop(0)

    def collect_committed_events(self) -> list[Event]:
        """Drain the events that a successful ``commit`` kept, across every block so far.

        Unlike :meth:`collect_new_events`, an event raised by work that was
        rolled back (or never committed) is not returned: it did not happen.
        The message bus uses this to dispatch events after the command's commit.
        """
        committed, self._committed_events = self._committed_events, []
        drained = {event.event_id for event in committed}
        for repo in self._repositories.values():
            for aggregate in repo.seen:
                aggregate.events[:] = [e for e in aggregate.events if e.event_id not in drained]
        return committed

    def _uncommitted_events(self) -> list[tuple[Aggregate[Any], Event]]:
        """Events raised in this block and not yet part of a successful commit, in order."""
        return [
            (aggregate, event)
            for repo in self._repositories.values()
            for aggregate in repo.seen
            for event in aggregate.events
            if event.event_id not in self._recorded
        ]

    # -- for subclasses --------------------------------------------------------------------

    def translate_error(self, exc: BaseException) -> Exception | None:
        """Map a backend error to a domain-level one, or ``None`` to keep it."""
        return None

    @abc.abstractmethod
    def _make_repository(self, kind: type[T]) -> Repository[T, Any]: ...

    @abc.abstractmethod
    async def _begin(self) -> None: ...

    @abc.abstractmethod
    async def _commit(self) -> None: ...

    @abc.abstractmethod
    async def _rollback(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    async def _discard(self) -> None:
        """Undo what is staged as the block ends; ``_close`` follows."""
        await self._rollback()

    @abc.abstractmethod
    def _savepoint(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    def _require_active(self, what: str) -> None:
        if self._state is not BlockState.ACTIVE:
            raise UnitOfWorkError(
                f"{what} needs an active unit of work; use it inside 'async with uow:'"
            )

    async def _run_callback(self, callback: CommitCallback) -> None:
        try:
            result = callback()
            if result is not None:
                await result
        except Exception:
            logger.exception("on_commit callback %r failed after a successful commit", callback)
