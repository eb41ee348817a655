"""The repository port: a typed collection of aggregates of one type.

A repository looks like a collection of aggregates of one type. It remembers
every aggregate it handed out or was given (``seen``) so that the unit of work
can collect their events after a commit.

Queries use a small filter vocabulary (:class:`In`, :class:`Range`,
:class:`IsNull`, :class:`Prefix`; a plain value means equality) on attributes
the repository allows: those its declaration lists with ``fields=``, or by
default the aggregate's own data attributes. Never a column name or SQL from
a caller. ``page`` is keyset pagination with an opaque cursor
(``service_layer.pagination``); ``list(offset=...)`` with ``count`` serves
admin screens that need page numbers.

:class:`Repository` is the async port and :class:`SyncRepository` the
synchronous one; both share :class:`QueryRules`, so they validate and page
alike. Implementations live in ``adapters.repository``; the contract suite in
``tests/kernel/contract`` runs the same behaviours against all of them.
"""

from __future__ import annotations

import abc
import builtins
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from domain.aggregate import Aggregate
from domain.errors import DuplicateKeyError
from service_layer.pagination import CursorCodec, Page, SortKey

T = TypeVar("T", bound=Aggregate[Any])
K = TypeVar("K")

Ordering = str | Sequence[str]
"""Attribute names to order by; a leading ``-`` sorts that attribute descending."""

IDENTITY = "id"
"""Every aggregate's key attribute: always allowed, and the tiebreaker of every page."""


# -- the filter vocabulary ------------------------------------------------------------------


@dataclass(frozen=True)
class Eq:
    """Equal to ``value``; ``Eq(None)`` is ``IS NULL``. A plain value in ``where`` means this."""

    value: object

    def matches(self, actual: object) -> bool:
        return bool(actual == self.value)


@dataclass(frozen=True, init=False)
class In:
    """One of ``values``. ``In([])`` matches nothing; ``None`` is refused (use :class:`IsNull`)."""

    values: tuple[object, ...]

    def __init__(self, values: Iterable[object]) -> None:
        if isinstance(values, str | bytes):
            raise ValueError("In() takes a collection of values, not a single string")
        chosen = tuple(values)
        if any(value is None for value in chosen):
            raise ValueError("In() cannot hold None (SQL never matches it); use IsNull()")
        object.__setattr__(self, "values", chosen)

    def matches(self, actual: object) -> bool:
        return actual in self.values


@dataclass(frozen=True)
class Range:
    """Between bounds: ``gt``/``ge`` below, ``lt``/``le`` above; ``None`` never matches."""

    gt: Any = None
    ge: Any = None
    lt: Any = None
    le: Any = None

    def __post_init__(self) -> None:
        if self.gt is None and self.ge is None and self.lt is None and self.le is None:
            raise ValueError("Range() needs at least one of gt, ge, lt, le")
        if self.gt is not None and self.ge is not None:
            raise ValueError("Range() takes gt or ge, not both")
        if self.lt is not None and self.le is not None:
            raise ValueError("Range() takes lt or le, not both")

    def matches(self, actual: Any) -> bool:
        if actual is None:
            return False
        return (
            (self.gt is None or actual > self.gt)
            and (self.ge is None or actual >= self.ge)
            and (self.lt is None or actual < self.lt)
            and (self.le is None or actual <= self.le)
        )


@dataclass(frozen=True)
class IsNull:
    """``IS NULL``, or ``IS NOT NULL`` with ``IsNull(False)``."""

    null: bool = True

    def matches(self, actual: object) -> bool:
        return (actual is None) is self.null


@dataclass(frozen=True)
class Prefix:
    """Starts with ``text``, ignoring case (ASCII case on SQLite); ``%`` and ``_`` are literal."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ValueError(f"Prefix() takes a string, got {type(self.text).__name__}")

    def matches(self, actual: object) -> bool:
        return isinstance(actual, str) and actual.lower().startswith(self.text.lower())


Filter = Eq | In | Range | IsNull | Prefix
FILTERS = (Eq, In, Range, IsNull, Prefix)


def as_filter(value: object) -> Filter:
    """A filter as given, or equality for a plain value."""
    return value if isinstance(value, FILTERS) else Eq(value)


# -- what a query asks for ---------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A validated query, as the implementations receive it.

    ``after`` holds the ``order`` key values of the last item already seen
    (keyset pagination); ``None`` sorts after every value, as ``NULLS LAST``.
    """

    where: dict[str, Filter] = field(default_factory=dict)
    order: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    after: tuple[object, ...] | None = None


def data_attributes(kind: type[Any]) -> frozenset[str]:
    """The public data attributes of ``kind``: annotated, or mapped onto the class.

    The default whitelist: methods, properties and private names never qualify.
    """
    # Every unit of work's repositories ask, so the answer is kept per class, and
    # looked at again if a namespace on the way grew (mapping a class adds attributes).
    sizes = tuple(len(vars(cls)) for cls in kind.__mro__)
    known = _DATA_ATTRIBUTES.get(kind)
    if known is None or known[0] != sizes:
        known = _DATA_ATTRIBUTES[kind] = (sizes, _scan_data_attributes(kind))
    return known[1]


_DATA_ATTRIBUTES: weakref.WeakKeyDictionary[type[Any], tuple[tuple[int, ...], frozenset[str]]] = (
    weakref.WeakKeyDictionary()
)


def _scan_data_attributes(kind: type[Any]) -> frozenset[str]:
    names: set[str] = set()
    for cls in kind.__mro__:
        if cls is object:
            continue
        for name, annotation in vars(cls).get("__annotations__", {}).items():
            if not name.startswith("_") and "ClassVar" not in str(annotation):
                names.add(name)
        for name, value in vars(cls).items():
            if name.startswith("_") or callable(value):
                continue
            if not isinstance(value, property | classmethod | staticmethod):
                names.add(name)
    return frozenset(names)


class QueryRules(Generic[T]):
    """What both ports share: the whitelist, validation, tracking and paging logic."""

    cursors: ClassVar[CursorCodec] = CursorCodec()
    """Encodes page cursors; set a signing one at start-up (see ``service_layer.pagination``)."""

    def __init__(self, kind: type[T]) -> None:
        self.kind = kind
        self.seen: list[T] = []
        self._seen_ids: set[int] = set()
        self._fields: frozenset[str] | None = None

    @property
    def fields(self) -> frozenset[str]:
        """The attributes a caller may filter and order by."""
        if self._fields is None:
            self._fields = data_attributes(self.kind) | {IDENTITY}
        return self._fields

    def allow(self, fields: Iterable[str]) -> None:
        """Restrict filtering and ordering to ``fields`` (``id`` is always allowed)."""
        chosen = frozenset(fields)
        known = data_attributes(self.kind) | {IDENTITY}
        if unknown := sorted(chosen - known):
            raise ValueError(
                f"{self.kind.__name__} has no attribute {unknown[0]!r} to allow; "
                f"it has: {', '.join(sorted(known))}"
            )
        self._fields = chosen | {IDENTITY}

    def _track(self, aggregate: T) -> T:
        if id(aggregate) not in self._seen_ids:
            self._seen_ids.add(id(aggregate))
            self.seen.append(aggregate)
        return aggregate

    def _check(self, name: str) -> str:
        if name not in self.fields:
            raise ValueError(
                f"{self.kind.__name__} cannot be filtered or ordered by {name!r}; "
                f"allowed: {', '.join(sorted(self.fields))}"
            )
        return name

    def _where(self, where: Mapping[str, object] | None) -> dict[str, Filter]:
        return {self._check(name): as_filter(value) for name, value in (where or {}).items()}

    def _order(self, order_by: Ordering, *, tiebreak: bool) -> tuple[SortKey, ...]:
        keys = [order_by] if isinstance(order_by, str) else list(order_by)
        order = tuple((self._check(key.removeprefix("-")), key.startswith("-")) for key in keys)
        if tiebreak and IDENTITY not in {name for name, _ in order}:
            # The identity makes the order total: pages neither repeat nor skip rows.
            order += ((IDENTITY, False),)
        return order

    def _list_query(
        self,
        where: Mapping[str, object] | None,
        order_by: Ordering,
        limit: int | None,
        offset: int,
    ) -> Query:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        # A tiebreaker only where an order is asked for or pages are cut by offset:
        # an unordered lookup (``limit=1`` by a unique attribute) stays as cheap as before.
        order = self._order(order_by, tiebreak=bool(order_by) or offset > 0)
        return Query(where=self._where(where), order=order, limit=limit, offset=offset)

    def _page_query(
        self,
        where: Mapping[str, object] | None,
        order_by: Ordering,
        after: str | None,
        limit: int,
    ) -> Query:
        if limit < 1:
            raise ValueError(f"a page needs limit >= 1, got {limit}")
        order = self._order(order_by, tiebreak=True)
        values = None if after is None else self.cursors.decode(after, order)
        # One more than asked: whether it exists says if there is a next page.
        return Query(where=self._where(where), order=order, limit=limit + 1, after=values)

    def _page(self, query: Query, found: builtins.list[T]) -> Page[T]:
        assert query.limit is not None
        items = [self._track(aggregate) for aggregate in found[: query.limit - 1]]
        if len(found) < query.limit:
            return Page(items=items, next=None)
        last = items[-1]
        values = [getattr(last, name) for name, _ in query.order]
        return Page(items=items, next=self.cursors.encode(query.order, values))

    def _batch(self, aggregates: Iterable[T]) -> builtins.list[T]:
        """The aggregates as a list; one id twice is refused as the database would."""
        batch = list(aggregates)
        idents: set[object] = set()
        for aggregate in batch:
            if aggregate.id in idents:
                raise DuplicateKeyError(
                    f"{self.kind.__name__} {aggregate.id!r} is twice in one add_many"
                )
            idents.add(aggregate.id)
        return batch


class Repository(QueryRules[T], abc.ABC, Generic[T, K]):
    """The async port: a collection of aggregates of type ``T`` keyed by ``K``."""

    def add(self, aggregate: T) -> None:
        """Stage a new aggregate; it is written when the unit of work commits."""
        self._add(aggregate)
        self._track(aggregate)

    async def add_many(self, aggregates: Iterable[T]) -> None:
        """Add many new aggregates at once: thousands per unit of work.

        Versions and events behave as with :meth:`add`. A SQL implementation
        may write the rows straight away (a refused duplicate then raises
        here rather than at commit); nothing is kept unless the unit of work
        commits.
        """
        batch = self._batch(aggregates)
        await self._add_many(batch)
        for aggregate in batch:
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
        where: Mapping[str, object] | None = None,
        order_by: Ordering = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[T]:
        """Aggregates matching ``where``, ordered, skipping ``offset``, at most ``limit``."""
        query = self._list_query(where, order_by, limit, offset)
        return [self._track(found) for found in await self._list(query)]

    async def count(self, *, where: Mapping[str, object] | None = None) -> int:
        """How many aggregates match ``where``."""
        return await self._count(self._where(where))

    async def page(
        self,
        *,
        where: Mapping[str, object] | None = None,
        order_by: Ordering = (),
        after: str | None = None,
        limit: int,
    ) -> Page[T]:
        """The ``limit`` aggregates after cursor ``after`` (from the start without one).

        The order is ``order_by`` then the id, so concurrent inserts never make
        a page repeat or skip an aggregate that was there before. Pass the same
        ``where`` and ``order_by`` with every cursor; a cursor made for another
        ordering, or altered, raises ``InvalidCursor``.
        """
        query = self._page_query(where, order_by, after, limit)
        return self._page(query, await self._list(query))

    async def remove(self, aggregate: T) -> None:
        """Delete the aggregate when the unit of work commits."""
        await self._remove(aggregate)

    @abc.abstractmethod
    def _add(self, aggregate: T) -> None: ...

    async def _add_many(self, aggregates: builtins.list[T]) -> None:
        for aggregate in aggregates:
            self._add(aggregate)

    @abc.abstractmethod
    async def _get(self, ident: K, *, for_update: bool) -> T | None: ...

    @abc.abstractmethod
    async def _list(self, query: Query) -> builtins.list[T]: ...

    @abc.abstractmethod
    async def _count(self, where: dict[str, Filter]) -> int: ...

    @abc.abstractmethod
    async def _remove(self, aggregate: T) -> None: ...


class SyncRepository(QueryRules[T], abc.ABC, Generic[T, K]):
    """The synchronous port: :class:`Repository`'s surface for scripts, tasks and ``def`` routes."""

    def add(self, aggregate: T) -> None:
        """Stage a new aggregate; it is written when the unit of work commits."""
        self._add(aggregate)
        self._track(aggregate)

    def add_many(self, aggregates: Iterable[T]) -> None:
        """Add many new aggregates at once; see :meth:`Repository.add_many`."""
        batch = self._batch(aggregates)
        self._add_many(batch)
        for aggregate in batch:
            self._track(aggregate)

    def get(self, ident: K) -> T | None:
        """The aggregate with this id, or ``None``."""
        found = self._get(ident, for_update=False)
        return None if found is None else self._track(found)

    def get_for_update(self, ident: K) -> T | None:
        """Like :meth:`get`, but locks the row until the unit of work ends."""
        found = self._get(ident, for_update=True)
        return None if found is None else self._track(found)

    def list(
        self,
        *,
        where: Mapping[str, object] | None = None,
        order_by: Ordering = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[T]:
        """Aggregates matching ``where``, ordered, skipping ``offset``, at most ``limit``."""
        query = self._list_query(where, order_by, limit, offset)
        return [self._track(found) for found in self._list(query)]

    def count(self, *, where: Mapping[str, object] | None = None) -> int:
        """How many aggregates match ``where``."""
        return self._count(self._where(where))

    def page(
        self,
        *,
        where: Mapping[str, object] | None = None,
        order_by: Ordering = (),
        after: str | None = None,
        limit: int,
    ) -> Page[T]:
        """The ``limit`` aggregates after cursor ``after``; see :meth:`Repository.page`."""
        query = self._page_query(where, order_by, after, limit)
        return self._page(query, self._list(query))

    def remove(self, aggregate: T) -> None:
        """Delete the aggregate when the unit of work commits."""
        self._remove(aggregate)

    @abc.abstractmethod
    def _add(self, aggregate: T) -> None: ...

    def _add_many(self, aggregates: builtins.list[T]) -> None:
        for aggregate in aggregates:
            self._add(aggregate)

    @abc.abstractmethod
    def _get(self, ident: K, *, for_update: bool) -> T | None: ...

    @abc.abstractmethod
    def _list(self, query: Query) -> builtins.list[T]: ...

    @abc.abstractmethod
    def _count(self, where: dict[str, Filter]) -> int: ...

    @abc.abstractmethod
    def _remove(self, aggregate: T) -> None: ...
