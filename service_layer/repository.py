"""The repository port: a typed collection of aggregates of one type.

A repository looks like a collection of aggregates of one type. It remembers
every aggregate it handed out or was given (``seen``) so that the unit of work
can collect their events after a commit.

Its implementations live in ``adapters.repository`` (SQLAlchemy and the
in-memory fake); the contract suite in ``tests/kernel/contract`` runs the same
behaviours against both, so a behaviour added to one must be added to the other.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from domain.aggregate import Aggregate

T = TypeVar("T", bound=Aggregate[Any])
K = TypeVar("K")

Ordering = str | Sequence[str]
"""Attribute names to order by; a leading ``-`` sorts that attribute descending."""


class Repository(abc.ABC, Generic[T, K]):
    """The port: a collection of aggregates of type ``T`` keyed by ``K``."""

    def __init__(self, kind: type[T]) -> None:
        self.kind = kind
        self.seen: list[T] = []
        self._seen_ids: set[int] = set()

    def _track(self, aggregate: T) -> T:
        if id(aggregate) not in self._seen_ids:
            self._seen_ids.add(id(aggregate))
            self.seen.append(aggregate)
        return aggregate

    def add(self, aggregate: T) -> None:
        """Stage a new aggregate; it is written when the unit of work commits."""
        self._add(aggregate)
        self._track(aggregate)

    async def get(self, ident: K) -> T | None:
        """The aggregate with this id, or ``None``."""
        found = await self._get(ident, for_update=False)
        return None if found is None else self._track(found)

    async def get_for_update(self, ident: K) -> T | None:
        """Like :meth:`get`, but locks the row until the unit of work ends.

        Use it for read-modify-write on hot rows: concurrent writers queue
        instead of failing their version check. Order your locks (e.g. by id)
        when you take several.
        """
        found = await self._get(ident, for_update=True)
        return None if found is None else self._track(found)

    async def list(
        self,
        *,
        where: Mapping[str, Any] | None = None,
        order_by: Ordering = (),
        limit: int | None = None,
    ) -> builtins.list[T]:
        """Aggregates whose attributes equal ``where``, ordered, at most ``limit``."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        keys = [order_by] if isinstance(order_by, str) else list(order_by)
        for name in [*(where or {}), *(key.removeprefix("-") for key in keys)]:
            # Annotations count too: an unmapped class (the fake's) may only
            # declare attributes that __init__ sets.
            declared = any(
                name in vars(cls).get("__annotations__", {}) for cls in self.kind.__mro__
            )
            if not (hasattr(self.kind, name) or declared):
                raise ValueError(f"{self.kind.__name__} has no attribute {name!r}")
        return [self._track(found) for found in await self._list(dict(where or {}), keys, limit)]

    async def remove(self, aggregate: T) -> None:
        """Delete the aggregate when the unit of work commits."""
        await self._remove(aggregate)

    @abc.abstractmethod
    def _add(self, aggregate: T) -> None: ...

    @abc.abstractmethod
    async def _get(self, ident: K, *, for_update: bool) -> T | None: ...

    @abc.abstractmethod
    async def _list(
        self, where: dict[str, Any], order_by: builtins.list[str], limit: int | None
    ) -> builtins.list[T]: ...

    @abc.abstractmethod
    async def _remove(self, aggregate: T) -> None: ...
