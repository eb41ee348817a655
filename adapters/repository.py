"""The repository ports' implementations: SQLAlchemy sessions and the in-memory fake.

Async (:class:`SqlAlchemyRepository`, :class:`InMemoryRepository`) and sync
(:class:`SqlAlchemySyncRepository`, :class:`InMemorySyncRepository`) share
their query building and their fake's bookkeeping, so the four behave alike;
the contract suite in ``tests/kernel/contract`` runs the same behaviours
against all of them. A behaviour added to one must be added to the others.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    false,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import QueryableAttribute, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from adapters import audit
from adapters.driver import Driver, DriverSource, RowPlan, row_plan
from adapters.sql_errors import (
    RETRYABLE_SQLSTATES,
    UNIQUE_VIOLATION,
    is_unique_violation,
    sqlstate_of,
)
from domain.aggregate import Aggregate
from domain.errors import ConcurrencyError, DuplicateKeyError
from service_layer.pagination import SortKey
from service_layer.repository import (
    IDENTITY,
    Eq,
    Filter,
    In,
    IsNull,
    Prefix,
    Query,
    Range,
    Repository,
    SyncRepository,
)

T = TypeVar("T", bound=Aggregate[Any])
K = TypeVar("K")


# -- SQL: statements -----------------------------------------------------------------------


def _attribute(kind: type[Any], name: str) -> QueryableAttribute[Any]:
    attribute = getattr(kind, name, None)
    if not isinstance(attribute, QueryableAttribute):
        raise ValueError(f"{kind.__name__}.{name} is not a mapped attribute; it cannot be queried")
    return attribute


def _condition(column: QueryableAttribute[Any], condition: Filter) -> ColumnElement[bool]:
    if isinstance(condition, Eq):
        return column.is_(None) if condition.value is None else column == condition.value
    if isinstance(condition, In):
        return column.in_(condition.values)
    if isinstance(condition, IsNull):
        return column.is_(None) if condition.null else column.is_not(None)
    if isinstance(condition, Prefix):
        return column.istartswith(condition.text, autoescape=True)
    assert isinstance(condition, Range)
    bounds = [
        column > condition.gt if condition.gt is not None else None,
        column >= condition.ge if condition.ge is not None else None,
        column < condition.lt if condition.lt is not None else None,
        column <= condition.le if condition.le is not None else None,
    ]
    return and_(*(bound for bound in bounds if bound is not None))


def _equal(column: QueryableAttribute[Any], value: object) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _beyond(
    column: QueryableAttribute[Any], descending: bool, value: object
) -> ColumnElement[bool] | None:
    """Rows strictly after ``value`` in this key's order, NULL sorting last ascending."""
    if not descending:
        return None if value is None else or_(column > value, column.is_(None))
    return column.is_not(None) if value is None else column < value


def _after(
    kind: type[Any], order: Sequence[SortKey], values: Sequence[object]
) -> ColumnElement[bool]:
    """The keyset condition: (k1, k2, ...) after (v1, v2, ...), each key in its direction."""
    columns = [(_attribute(kind, name), descending) for name, descending in order]
    alternatives = []
    for index, ((column, descending), value) in enumerate(zip(columns, values, strict=True)):
        beyond = _beyond(column, descending, value)
        if beyond is not None:
            ties = [_equal(c, v) for (c, _), v in zip(columns[:index], values[:index], strict=True)]
            alternatives.append(and_(*ties, beyond))
    return or_(*alternatives) if alternatives else false()


def _conditions(kind: type[Any], where: dict[str, Filter]) -> list[ColumnElement[bool]]:
    return [_condition(_attribute(kind, name), condition) for name, condition in where.items()]


def equality_shape(query: Query) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """The attribute names and bind values of a query that only asks for equal values
    (none of them ``None``), with no keyset or offset; ``None`` for any other query."""
    if query.after or query.offset:
        return None
    values: dict[str, Any] = {}
    for name, condition in query.where.items():
        if not isinstance(condition, Eq) or condition.value is None:
            return None
        values[f"eq_{name}"] = condition.value
    return tuple(query.where), values


def list_statement(kind: type[T], query: Query) -> tuple[Select[T], dict[str, Any]]:
    """The statement and bind values of a validated query.

    The common query — equality on a few attributes, an order, a limit — is
    built once per shape and then only bound: composing a statement and its
    cache key cost more than the ORM's compiled cache saves (a third of a
    lookup by reference on asyncpg). Others are built each time.
    """
    shape = equality_shape(query)
    if shape is None:
        return select_for(kind, query), {}

    def template() -> Select[T]:
        bound: dict[str, Filter] = {name: Eq(bindparam(f"eq_{name}")) for name in query.where}
        return select_for(kind, Query(where=bound, order=query.order, limit=query.limit))

    names, bindings = shape
    return _built_once(("list", kind, names, query.order, query.limit), template), bindings


def locking_get(kind: type[T]) -> Select[T]:
    """``SELECT ... WHERE id = :pk FOR UPDATE``, refreshing the identity map, built once per kind.

    What ``session.get(with_for_update=True, populate_existing=True)`` sends,
    without composing the statement on every call.
    """
    return _built_once(
        ("lock", kind),
        lambda: (
            select(kind)
            .where(_attribute(kind, IDENTITY) == bindparam("pk"))
            .with_for_update()
            .execution_options(populate_existing=True)
        ),
    )


MAX_STATEMENTS = 1024
"""Statement shapes remembered; a program has a handful, so the bound only stops a runaway."""
_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _built_once(shape: tuple[Any, ...], build: Callable[[], Select[T]]) -> Select[T]:
    """The statement of ``shape``, built by ``build`` the first time it is asked for."""
    statement: Select[T] | None = _STATEMENTS.get(shape)
    if statement is None:
        statement = build()
        if len(_STATEMENTS) < MAX_STATEMENTS:
            _STATEMENTS[shape] = statement
    return statement


def select_for(kind: type[T], query: Query) -> Select[T]:
    """The ``SELECT`` for a validated query; NULLs sort last ascending, first descending."""
    statement = select(kind).where(*_conditions(kind, query.where))
    if query.after is not None:
        statement = statement.where(_after(kind, query.order, query.after))
    for name, descending in query.order:
        column = _attribute(kind, name)
        statement = statement.order_by(
            column.desc().nulls_first() if descending else column.asc().nulls_last()
        )
    if query.offset:
        statement = statement.offset(query.offset)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    return statement


def count_for(kind: type[Any], where: dict[str, Filter]) -> Select[int]:
    statement: Select[int] = select(func.count()).select_from(kind)
    return statement.where(*_conditions(kind, where))


# -- SQL: bulk inserts -----------------------------------------------------------------------


@dataclass(frozen=True)
class BulkPlan:
    """How ``add_many`` writes a mapped class without the ORM: one table, every column set.

    ``None`` from :func:`bulk_plan` (relationships, inheritance, column
    defaults, insert events, server-side versions) means ``session.add_all``.
    """

    table: Table
    keys: tuple[str, ...]
    version_key: str | None
    first_version: object
    identity_positions: tuple[int, ...]

    @functools.cached_property
    def _getter(self) -> Callable[[dict[str, Any]], Any]:
        return operator.itemgetter(*self.keys)

    def values(self, aggregate: Any) -> tuple[Any, ...]:
        """The aggregate's column values, read from its ``__dict__`` as the ORM does.

        A plain dictionary read: ten times cheaper than ten thousand
        instrumented ``getattr`` calls. An attribute never set reads as ``None``.
        """
        state = aggregate.__dict__
        try:
            found = self._getter(state)
        except KeyError:
            found = tuple(state.get(key) for key in self.keys)
        return found if len(self.keys) > 1 else (found,)

    def rows(self, aggregates: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """Column values per aggregate, versions set; ``None`` if an identity is missing.

        The aggregates are transient (never in a session), so writing the
        version into ``__dict__`` is what the instrumented setter would do
        minus history that attaching resets anyway.
        """
        if self.version_key is not None:
            for aggregate in aggregates:
                aggregate.__dict__[self.version_key] = self.first_version
        rows = [self.values(aggregate) for aggregate in aggregates]
        if any(row[position] is None for row in rows for position in self.identity_positions):
            return None
        return rows


_PLANS: dict[type[Any], BulkPlan | None] = {}


def bulk_plan(kind: type[Any]) -> BulkPlan | None:
    if kind in _PLANS:
        return _PLANS[kind]
    mapper = inspect(kind)
    plan: BulkPlan | None = None
    table = mapper.local_table
    if (
        not mapper.relationships
        and mapper.inherits is None
        and mapper.polymorphic_on is None
        and isinstance(table, Table)
        and mapper.version_id_generator is not False
        and not mapper.dispatch.before_insert
        and not mapper.dispatch.after_insert
        and all(c.default is None and c.server_default is None for c in table.columns)
    ):
        keys = tuple(mapper.get_property_by_column(column).key for column in table.columns)
        version = mapper.version_id_col
        version_key = None if version is None else mapper.get_property_by_column(version).key
        generator = mapper.version_id_generator
        plan = BulkPlan(
            table=table,
            keys=keys,
            version_key=version_key,
            first_version=None if version is None or not callable(generator) else generator(None),
            identity_positions=tuple(
                index for index, column in enumerate(table.columns) if column.primary_key
            ),
        )
    _PLANS[kind] = plan
    return plan


def _bulk_error(exc: BaseException) -> Exception | None:
    """The domain error for a refused bulk write, from SQLAlchemy or straight from asyncpg."""
    if is_unique_violation(exc) or (
        not isinstance(exc, DBAPIError) and sqlstate_of(exc) == UNIQUE_VIOLATION
    ):
        return DuplicateKeyError(
            "add_many: a row with the same unique key exists", sqlstate=UNIQUE_VIOLATION
        )
    sqlstate = sqlstate_of(exc)
    if sqlstate in RETRYABLE_SQLSTATES:
        return ConcurrencyError(RETRYABLE_SQLSTATES[sqlstate], sqlstate=sqlstate)
    return None


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        translated = _bulk_error(exc)
        if translated is not None:
            raise translated from exc
        raise


def _parameters(plan: BulkPlan, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    names = [column.key for column in plan.table.columns]
    return [dict(zip(names, row, strict=True)) for row in rows]


async def _copy_rows(
    connection: AsyncConnection, plan: BulkPlan, rows: list[tuple[Any, ...]]
) -> None:
    """``COPY`` through the session's own asyncpg connection, inside its transaction."""
    dialect = connection.dialect
    processors = [
        column.type.dialect_impl(dialect).bind_processor(dialect) for column in plan.table.columns
    ]
    if any(processors):
        rows = [
            tuple(
                value if p is None else p(value) for p, value in zip(processors, row, strict=True)
            )
            for row in rows
        ]
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter begins lazily, on the first statement.
        await connection.exec_driver_sql("SELECT 1")
    await driver.copy_records_to_table(
        plan.table.name,
        schema_name=plan.table.schema,
        columns=[column.name for column in plan.table.columns],
        records=rows,
    )


class BulkWritten(Generic[T]):
    """Aggregates ``add_many`` wrote without the ORM, and their attachment to the session.

    Attaching ten thousand objects costs more than writing their rows, so it
    waits until needed: before a query or a savepoint (all of them), for a
    ``get`` or ``remove`` (that one), and at commit (only those changed since
    they were written, which the flush then updates under the version check).
    """

    def __init__(self, plan: BulkPlan, attach: Callable[[Any], None]) -> None:
        self.plan = plan
        self._attach_to_session = attach
        self._uncommitted: dict[Any, tuple[T, tuple[Any, ...]]] = {}
        self._committed: dict[Any, tuple[T, tuple[Any, ...]]] = {}

    def __bool__(self) -> bool:
        return bool(self._uncommitted or self._committed)

    def record(self, aggregates: Sequence[T], rows: list[tuple[Any, ...]]) -> None:
        self._uncommitted.update(
            (aggregate.id, (aggregate, row))
            for aggregate, row in zip(aggregates, rows, strict=True)
        )

    def attach(self, ident: object) -> T | None:
        entry = self._uncommitted.pop(ident, None) or self._committed.pop(ident, None)
        if entry is None:
            return None
        aggregate, written = entry
        current = self.plan.values(aggregate)
        make_transient_to_detached(aggregate)
        self._attach_to_session(aggregate)
        for key, before, now in zip(self.plan.keys, written, current, strict=True):
            if before != now:
                # Written as ``before``, changed since: the flush must update it.
                set_committed_value(aggregate, key, before)
                setattr(aggregate, key, now)
        return aggregate

    def attach_all(self) -> None:
        for ident in [*self._uncommitted, *self._committed]:
            self.attach(ident)

    def attach_changed(self) -> None:
        for pending in (self._uncommitted, self._committed):
            changed = [
                ident
                for ident, (aggregate, written) in pending.items()
                if self.plan.values(aggregate) != written
            ]
            for ident in changed:
                self.attach(ident)

    def committed(self) -> None:
        self._committed.update(self._uncommitted)
        self._uncommitted.clear()

    def rolled_back(self) -> None:
        self._uncommitted.clear()


def _prepare_bulk(
    kind: type[T], aggregates: list[T]
) -> tuple[BulkPlan, list[tuple[Any, ...]]] | None:
    plan = bulk_plan(kind)
    if plan is None or not aggregates:
        return None
    if audit.audit_attributes(kind) is not None:
        audit.stamp_created(aggregates, audit.utc_now())
    rows = plan.rows(aggregates)
    return None if rows is None else (plan, rows)


# -- SQL: the repositories -----------------------------------------------------------------


class SqlAlchemyRepository(Repository[T, K]):
    """Repository over an ``AsyncSession``; ``kind`` is any mapped class.

    With ``driver`` (its unit of work's), locked reads by id and equality
    lists of a plain mapping run on asyncpg straight (:mod:`adapters.driver`);
    everything else, and everything on other drivers, through the ORM.
    """

    def __init__(
        self, session: AsyncSession, kind: type[T], *, driver: DriverSource | None = None
    ) -> None:
        super().__init__(kind)
        self.session = session
        self._bulk: BulkWritten[T] | None = None
        self._driver_source = driver

    async def _driven(self) -> tuple[Driver, RowPlan] | None:
        """The driver and this kind's plan, when a read may take the driver's path now."""
        if self._driver_source is None:
            return None
        sync = self.session.sync_session
        if sync.in_nested_transaction():
            return None  # a savepoint's rollback must know what was loaded inside it
        driver = await self._driver_source()
        if driver is None:
            return None
        plan = row_plan(self.kind, driver.dialect)
        if plan is None:
            return None
        if sync.autoflush and (sync.new or sync.dirty or sync.deleted):
            await self.session.flush()  # as the ORM's autoflush before a query
        return driver, plan

    def _add(self, aggregate: T) -> None:
        self.session.add(aggregate)

    async def _add_many(self, aggregates: list[T]) -> None:
        prepared = (
            None if self.session.in_nested_transaction() else _prepare_bulk(self.kind, aggregates)
        )
        if prepared is None:
            # The ORM's path (insertmanyvalues): also right inside a savepoint,
            # whose rollback must forget these objects as the session does.
            self.session.add_all(aggregates)
            return
        plan, rows = prepared
        await self.session.flush()  # what was staged before goes first (foreign keys)
        connection = await self.session.connection()
        with _translated():
            if connection.dialect.driver == "asyncpg":
                await _copy_rows(connection, plan, rows)
            else:
                await connection.execute(plan.table.insert(), _parameters(plan, rows))
        if self._bulk is None:
            self._bulk = BulkWritten(plan, self.session.add)
        self._bulk.record(aggregates, rows)

    async def _get(self, ident: K, *, for_update: bool) -> T | None:
        if self._bulk and (written := self._bulk.attach(ident)) is not None:
            return written
        found: T | None
        if (for_update or not self._holds(ident)) and (driven := await self._driven()):
            # populate_existing on a locking read: the row may have changed since
            # this session last saw it, and the lock is only worth having with
            # the current values.
            driver, plan = driven
            compiled = plan.locked_by_identity if for_update else plan.by_identity
            fetched = await driver.fetch(compiled.sql, compiled.args({"pk": ident}))
            adopted = plan.adopt_all(self.session.sync_session, fetched, refresh=for_update)
            found = adopted[0] if adopted else None
        elif for_update:
            found = (await self.session.scalars(locking_get(self.kind), {"pk": ident})).first()
        else:
            found = await self.session.get(self.kind, ident)
        # A removed aggregate stays in the identity map until the next flush,
        # and get() answers from that map without flushing.
        return None if found is None or found in self.session.deleted else found

    def _holds(self, ident: K) -> bool:
        """Whether the session holds ``ident``: ``get`` then answers from its map, as the
        ORM's ``Session.get`` does (refreshing it if a rollback expired it)."""
        if self._driver_source is None:
            return True  # the ORM's path either way
        key = inspect(self.kind).identity_key_from_primary_key((ident,))
        return key in self.session.sync_session.identity_map

    async def _list(self, query: Query) -> list[T]:
        self.attach_all()
        shape = equality_shape(query)
        if shape is not None and (driven := await self._driven()) is not None:
            driver, plan = driven
            names, values = shape
            compiled = plan.listing(names, query.order, query.limit)
            fetched = await driver.fetch(compiled.sql, compiled.args(values))
            return plan.adopt_all(self.session.sync_session, fetched, refresh=False)
        statement, values = list_statement(self.kind, query)
        return list((await self.session.scalars(statement, values)).all())

    async def _count(self, where: dict[str, Any]) -> int:
        self.attach_all()
        return (await self.session.scalars(count_for(self.kind, where))).one()

    async def _remove(self, aggregate: T) -> None:
        if self._bulk:
            self._bulk.attach(aggregate.id)
        await self.session.delete(aggregate)

    # -- used by SqlAlchemyUnitOfWork ---------------------------------------------------

    def attach_all(self) -> None:
        if self._bulk:
            self._bulk.attach_all()

    def before_commit(self) -> None:
        if self._bulk:
            self._bulk.attach_changed()

    def after_commit(self) -> None:
        if self._bulk is not None:
            self._bulk.committed()

    def after_rollback(self) -> None:
        if self._bulk is not None:
            self._bulk.rolled_back()


class SqlAlchemySyncRepository(SyncRepository[T, K]):
    """Repository over a synchronous ``Session``; same behaviour as :class:`SqlAlchemyRepository`.

    Its bulk path is a Core ``executemany`` (psycopg 3 batches it with
    insertmanyvalues); ``COPY`` is only worth its code on the async hot path.
    """

    def __init__(self, session: Session, kind: type[T]) -> None:
        super().__init__(kind)
        self.session = session
        self._bulk: BulkWritten[T] | None = None

    def _add(self, aggregate: T) -> None:
        self.session.add(aggregate)

    def _add_many(self, aggregates: list[T]) -> None:
        prepared = (
            None if self.session.in_nested_transaction() else _prepare_bulk(self.kind, aggregates)
        )
        if prepared is None:
            self.session.add_all(aggregates)
            return
        plan, rows = prepared
        self.session.flush()
        connection: Connection = self.session.connection()
        with _translated():
            connection.execute(plan.table.insert(), _parameters(plan, rows))
        if self._bulk is None:
            self._bulk = BulkWritten(plan, self.session.add)
        self._bulk.record(aggregates, rows)

    def _get(self, ident: K, *, for_update: bool) -> T | None:
        if self._bulk and (written := self._bulk.attach(ident)) is not None:
            return written
        if for_update:
            found = self.session.scalars(locking_get(self.kind), {"pk": ident}).first()
        else:
            found = self.session.get(self.kind, ident)
        return None if found is None or found in self.session.deleted else found

    def _list(self, query: Query) -> list[T]:
        self.attach_all()
        statement, values = list_statement(self.kind, query)
        return list(self.session.scalars(statement, values).all())

    def _count(self, where: dict[str, Any]) -> int:
        self.attach_all()
        return self.session.scalars(count_for(self.kind, where)).one()

    def _remove(self, aggregate: T) -> None:
        if self._bulk:
            self._bulk.attach(aggregate.id)
        self.session.delete(aggregate)

    # -- used by SqlAlchemySyncUnitOfWork ------------------------------------------------

    def attach_all(self) -> None:
        if self._bulk:
            self._bulk.attach_all()

    def before_commit(self) -> None:
        if self._bulk:
            self._bulk.attach_changed()

    def after_commit(self) -> None:
        if self._bulk is not None:
            self._bulk.committed()

    def after_rollback(self) -> None:
        if self._bulk is not None:
            self._bulk.rolled_back()


# -- the in-memory fake ------------------------------------------------------------------------


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


def _sort_key(value: Any) -> tuple[int, Any]:
    # NULL after every value, as the SQL side orders it (NULLS LAST ascending).
    return (1, 0) if value is None else (0, value)


def _is_after(aggregate: Any, order: Sequence[SortKey], values: Sequence[object]) -> bool:
    for (name, descending), value in zip(order, values, strict=True):
        mine, theirs = _sort_key(getattr(aggregate, name)), _sort_key(value)
        if mine != theirs:
            return (mine > theirs) != descending
    return False


class InMemoryCollection(Generic[T]):
    """The fake's bookkeeping, without I/O, shared by its async and sync repositories.

    It keeps an identity map of working copies; ``flush`` (called by the
    unit of work's commit) checks versions and writes the copies back.
    """

    kind: type[T]

    def __init__(self, store: InMemoryStore, kind: type[T]) -> None:
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

    def _stage(self, aggregate: T) -> None:
        self._removed.discard(aggregate.id)
        self._working[aggregate.id] = aggregate
        self._new.add(aggregate.id)

    def _matching(self, where: dict[str, Filter]) -> list[T]:
        idents = list(dict.fromkeys([*self._committed(), *self._working]))
        return [
            aggregate
            for ident in idents
            if (aggregate := self._load(ident)) is not None
            and all(
                condition.matches(getattr(aggregate, name)) for name, condition in where.items()
            )
        ]

    def _select(self, query: Query) -> list[T]:
        found = self._matching(query.where)
        for name, descending in reversed(query.order):
            found.sort(
                key=lambda aggregate: _sort_key(getattr(aggregate, name)), reverse=descending
            )
        if query.after is not None:
            after = query.after
            found = [aggregate for aggregate in found if _is_after(aggregate, query.order, after)]
        found = found[query.offset :]
        return found if query.limit is None else found[: query.limit]

    def _unstage(self, aggregate: T) -> None:
        self._working.pop(aggregate.id, None)
        self._new.discard(aggregate.id)
        self._removed.add(aggregate.id)

    # -- used by the in-memory units of work -------------------------------------------

    def has_pending(self) -> bool:
        """Whether anything is staged that a commit would write (the sync fake counts
        a rollback only then)."""
        return bool(self._new or self._removed) or any(
            _state(aggregate) != _state(self._loaded[ident])
            for ident, aggregate in self._working.items()
            if ident in self._loaded
        )

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
        """Write the working copies back; bumps versions and audit stamps as SQL does."""
        committed = self._committed()
        now = audit.utc_now()
        for ident in self._removed:
            committed.pop(ident, None)
        for ident, aggregate in self._working.items():
            if ident in self._new:
                audit.stamp_created([aggregate], now)
                aggregate.version = 1
            elif _state(aggregate) != _state(self._loaded[ident]):
                audit.stamp_updated([aggregate], now)
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


class InMemoryRepository(InMemoryCollection[T], Repository[T, K]):
    """The async fake: same behaviour as :class:`SqlAlchemyRepository`, no I/O."""

    def __init__(self, store: InMemoryStore, kind: type[T]) -> None:
        Repository.__init__(self, kind)
        InMemoryCollection.__init__(self, store, kind)

    def _add(self, aggregate: T) -> None:
        self._stage(aggregate)

    async def _get(self, ident: K, *, for_update: bool) -> T | None:
        return self._load(ident)

    async def _list(self, query: Query) -> list[T]:
        return self._select(query)

    async def _count(self, where: dict[str, Filter]) -> int:
        return len(self._matching(where))

    async def _remove(self, aggregate: T) -> None:
        self._unstage(aggregate)


class InMemorySyncRepository(InMemoryCollection[T], SyncRepository[T, K]):
    """The sync fake: same behaviour as :class:`SqlAlchemySyncRepository`, no I/O."""

    def __init__(self, store: InMemoryStore, kind: type[T]) -> None:
        SyncRepository.__init__(self, kind)
        InMemoryCollection.__init__(self, store, kind)

    def _add(self, aggregate: T) -> None:
        self._stage(aggregate)

    def _get(self, ident: K, *, for_update: bool) -> T | None:
        return self._load(ident)

    def _list(self, query: Query) -> list[T]:
        return self._select(query)

    def _count(self, where: dict[str, Filter]) -> int:
        return len(self._matching(where))

    def _remove(self, aggregate: T) -> None:
        self._unstage(aggregate)
