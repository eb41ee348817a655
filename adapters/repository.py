"""The repository port's implementations: SQLAlchemy's session and the in-memory fake.

The contract suite in ``tests/kernel/contract`` runs the same behaviours against
both; a behaviour added to one must be added to the other.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.aggregate import Aggregate
from service_layer.repository import Repository

T = TypeVar("T", bound=Aggregate[Any])
K = TypeVar("K")


class SqlAlchemyRepository(Repository[T, K]):
    """Repository over an ``AsyncSession``; ``kind`` is any mapped class."""

    def __init__(self, session: AsyncSession, kind: type[T]) -> None:
        super().__init__(kind)
        self.session = session

    def _add(self, aggregate: T) -> None:
        self.session.add(aggregate)

    async def _get(self, ident: K, *, for_update: bool) -> T | None:
        # populate_existing on a locking read: the row may have changed since
        # this session last saw it, and the lock is only worth having with
        # the current values.
        found = await self.session.get(
            self.kind, ident, with_for_update=for_update, populate_existing=for_update
        )
        # A removed aggregate stays in the identity map until the next flush,
        # and get() answers from that map without flushing.
        return None if found is None or found in self.session.deleted else found

    async def _list(self, where: dict[str, Any], order_by: list[str], limit: int | None) -> list[T]:
        statement: Select[tuple[T]] = select(self.kind).filter_by(**where)
        for key in order_by:
            column = getattr(self.kind, key.removeprefix("-"))
            statement = statement.order_by(column.desc() if key.startswith("-") else column.asc())
        if limit is not None:
            statement = statement.limit(limit)
        return list((await self.session.scalars(statement)).all())

    async def _remove(self, aggregate: T) -> None:
        await self.session.delete(aggregate)


class InMemoryStore:
    """The fake's "database": committed copies of aggregates, keyed by type and id.

    Share one store between several ``InMemoryUnitOfWork`` instances to get
    the isolation of a real database: each unit of work works on copies and
    only ``commit`` writes them back.
    """

    def __init__(self) -> None:
        self.rows: dict[type[Any], dict[Any, Any]] = {}

    def table(self, kind: type[Any]) -> dict[Any, Any]:
        return self.rows.setdefault(kind, {})

    def all(self, kind: type[T]) -> Iterable[T]:
        return self.table(kind).values()


def _snapshot(aggregate: Any) -> Any:
    # A deep copy keeps the fake honest: nothing a caller mutates reaches the
    # store until commit, just as with a database.
    return copy.deepcopy(aggregate)


def _state(aggregate: Any) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(aggregate).items()
        if not key.startswith("_") and key != "version"
    }


class InMemoryRepository(Repository[T, K]):
    """The fake: same behaviour as :class:`SqlAlchemyRepository`, no I/O.

    It keeps an identity map of working copies; ``flush`` (called by the
    unit of work's commit) checks versions and writes the copies back.
    """

    def __init__(self, store: InMemoryStore, kind: type[T]) -> None:
        super().__init__(kind)
        self.store = store
        self._working: dict[Any, T] = {}
        self._loaded: dict[Any, T] = {}
        self._new: set[Any] = set()
        self._removed: set[Any] = set()

    def _committed(self) -> dict[Any, T]:
        return self.store.table(self.kind)

    def _load(self, ident: Any) -> T | None:
        if ident in self._removed:
            return None
        if ident in self._working:
            return self._working[ident]
        committed = self._committed().get(ident)
        if committed is None:
            return None
        self._loaded[ident] = committed
        working: T = _snapshot(committed)
        self._working[ident] = working
        return working

    def _add(self, aggregate: T) -> None:
        self._removed.discard(aggregate.id)
        self._working[aggregate.id] = aggregate
        self._new.add(aggregate.id)

    async def _get(self, ident: K, *, for_update: bool) -> T | None:
        return self._load(ident)

    async def _list(self, where: dict[str, Any], order_by: list[str], limit: int | None) -> list[T]:
        idents = list(dict.fromkeys([*self._committed(), *self._working]))
        found = [
            aggregate
            for ident in idents
            if (aggregate := self._load(ident)) is not None
            and all(getattr(aggregate, name) == value for name, value in where.items())
        ]
        for key in reversed(order_by):
            found.sort(key=operator.attrgetter(key.removeprefix("-")), reverse=key.startswith("-"))
        return found if limit is None else found[:limit]

    async def _remove(self, aggregate: T) -> None:
        self._working.pop(aggregate.id, None)
        self._new.discard(aggregate.id)
        self._removed.add(aggregate.id)

    # -- used by InMemoryUnitOfWork -------------------------------------------------

    def duplicates(self) -> list[str]:
        """New aggregates whose id is already taken: a flush would violate the key."""
        committed = self._committed()
        return [
            f"{self.kind.__name__} {ident!r} already exists"
            for ident in self._new
            if ident in self._working and ident in committed
        ]

    def conflicts(self) -> list[str]:
        """Stale versions that would make a flush fail. Empty when it would not."""
        committed = self._committed()
        problems = []
        for ident, aggregate in self._working.items():
            current = committed.get(ident)
            if ident in self._new:
                continue
            if current is not self._loaded.get(ident) and _state(aggregate) != _state(
                self._loaded[ident]
            ):
                problems.append(f"{self.kind.__name__} {ident!r} was changed by another writer")
        for ident in self._removed:
            if ident in self._loaded and committed.get(ident) is not self._loaded[ident]:
                problems.append(f"{self.kind.__name__} {ident!r} was changed by another writer")
        return problems

    def flush(self) -> None:
        """Write the working copies back; bumps versions the way the mapper does."""
        committed = self._committed()
        for ident in self._removed:
            committed.pop(ident, None)
        for ident, aggregate in self._working.items():
            if ident in self._new:
                aggregate.version = 1
            elif _state(aggregate) != _state(self._loaded[ident]):
                aggregate.version = self._loaded[ident].version + 1
            else:
                continue
            stored = _snapshot(aggregate)
            committed[ident] = stored
            self._loaded[ident] = stored
        self._new.clear()
        self._removed.clear()

    def capture(self) -> Any:
        """A savepoint: enough state to undo everything staged after it."""
        return (
            {
                ident: (aggregate, _snapshot(aggregate))
                for ident, aggregate in self._working.items()
            },
            dict(self._loaded),
            set(self._new),
            set(self._removed),
        )

    def restore(self, captured: Any) -> None:
        # The objects handed out before the savepoint stay the ones in use (a
        # remove inside it is undone on the same object), with their old values.
        working, loaded, new, removed = captured
        for live, saved in working.values():
            vars(live).update({k: v for k, v in vars(saved).items() if not k.startswith("_sa")})
        self._working = {ident: live for ident, (live, _) in working.items()}
        self._loaded, self._new, self._removed = loaded, new, removed
