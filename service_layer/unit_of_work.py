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

Undone work leaves nothing behind: a ``rollback()``, a failed ``commit()``
and a savepoint whose body raised each drop the events raised and the
callbacks registered by the work they undo, so no hook, outbox or bus ever
sees them. After a rollback or a failed commit the block starts over with
fresh repositories: the aggregates read before it are no longer tracked
(SQLAlchemy has expired them; touching them would need I/O).

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
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar, overload
from uuid import UUID

from domain.aggregate import Aggregate, Event
from domain.errors import ConcurrencyError
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


class _SeesAggregates(Protocol):
    @property
    def seen(self) -> list[Any]: ...


class EventsOfSeenAggregates:
    """The event bookkeeping the async and the sync unit of work share.

    Both keep their block's repositories (each remembers the aggregates it
    handed out) and the events their commits kept; draining either is the same.
    """

    _repositories: Mapping[type[Any], _SeesAggregates]
    _committed_events: list[Event]

    def collect_new_events(self) -> Iterator[Event]:
        """Drain the events raised by every aggregate this unit of work has seen."""
        for aggregate in list(self._seen()):
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
        for aggregate in self._seen():
            aggregate.events[:] = [e for e in aggregate.events if e.event_id not in drained]
        return committed

    def _seen(self) -> Iterator[Aggregate[Any]]:
        for repo in self._repositories.values():
            yield from repo.seen


class AbstractUnitOfWork(EventsOfSeenAggregates, abc.ABC):
    """The port every service function depends on."""

    _callbacks: list[CommitCallback]
    _recorded: set[UUID]
    """Ids of the events a successful commit of this block kept."""

    def __init__(self) -> None:
        # Per block (set by __aenter__): _callbacks, _recorded, _repositories.
        self._state = BlockState.NEW
        self._repositories: dict[type[Any], Repository[Any, Any]] = {}
        self.hooks: list[CommitHook] = []
        self._committed_events: list[Event] = []
        self._observed: list[tuple[observers.UnitOfWorkObserver, object]] = []
        self.conflicts = 0
        """Commits (and blocks) refused as a lost race: each ``ConcurrencyError`` raised.

        Race tests assert on it, so that a test that stops racing fails."""

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
                try:
                    # Always: work staged after a commit must not survive the block
                    # either. Rolling back with nothing pending costs no round trip.
                    await self._discard()
                finally:
                    self._state = BlockState.CLOSED
                    await self._close()
            except Exception:
                if exc is None:
                    raise
                # The block's own error (a cancellation above all) is the one to
                # report; a cleanup failing on top of it must not replace it.
                logger.exception("ending the unit of work failed while %r propagated", exc)
            if exc is not None and (translated := self._translate(exc)) is not None:
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
        raised = self._uncommitted_events()
        try:
            for hook in self.hooks:
                await hook.before_commit(self, raised)
            await self._commit()
        except BaseException as exc:
            # Whatever failed — a hook, a flush, the COMMIT, a cancellation —
            # the transaction is over and kept nothing; so are its events and
            # callbacks. (A COMMIT refused by a deferred constraint leaves
            # SQLite's transaction open: the rollback is what ends it.)
            await self._abandon(quietly=True)
            translated = self._translate(exc)
            if translated is not None:
                raise translated from exc
            if isinstance(exc, ConcurrencyError):  # raised as such by the backend
                self.conflicts += 1
            raise
        self._recorded.update(event.event_id for _, event in raised)
        self._committed_events.extend(event for _, event in raised)
        observers.committed(self)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            await self._run_callback(callback)

    async def rollback(self) -> None:
        """Discard everything staged so far; the block may go on with a clean slate.

        The events and ``on_commit`` callbacks of the discarded work go too, and
        aggregates read before are no longer tracked: read them again.
        """
        self._require_active("rollback")
        await self._abandon(quietly=False)

    def on_commit(self, callback: CommitCallback) -> None:
        """Run ``callback`` after this unit of work commits; never after a rollback.

        A failing callback is logged, not raised: the commit already happened
        and the caller must hear that it did.
        """
        self._require_active("on_commit")
        self._callbacks.append(callback)

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: an exception inside undoes only what the block did.

        That includes the events raised and the ``on_commit`` callbacks
        registered inside it; those of a body that completed are kept.
        """
        self._require_active("savepoint")
        before = self._event_ids_by_aggregate()
        callbacks = len(self._callbacks)
        try:
            async with self._savepoint():
                yield
        except BaseException:
            self._drop_events(keep=before)
            del self._callbacks[callbacks:]
            raise

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

    def _event_ids_by_aggregate(self) -> dict[int, set[UUID]]:
        return {id(aggregate): {e.event_id for e in aggregate.events} for aggregate in self._seen()}

    def _drop_events(self, keep: dict[int, set[UUID]]) -> None:
        """Forget every uncommitted event that is not in ``keep`` (by aggregate)."""
        for aggregate in self._seen():
            kept = keep.get(id(aggregate), set()) | self._recorded
            aggregate.events[:] = [e for e in aggregate.events if e.event_id in kept]

    async def _abandon(self, *, quietly: bool) -> None:
        """End the transaction without a commit, and forget what it did.

        ``quietly``: another error is on its way out, and a failing rollback
        is logged rather than raised in its place.
        """
        self._callbacks = []
        self._drop_events(keep={})
        try:
            await self._rollback()
        except Exception:
            if not quietly:
                raise
            logger.exception("rolling back after a failed commit failed as well")
        finally:
            self._repositories = {}

    def _translate(self, exc: BaseException) -> Exception | None:
        """``translate_error``, counting the lost races it reports."""
        translated = self.translate_error(exc)
        if isinstance(translated, ConcurrencyError):
            self.conflicts += 1
        return translated

    def _uncommitted_events(self) -> list[tuple[Aggregate[Any], Event]]:
        """Events raised in this block and not yet part of a successful commit, in order."""
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
