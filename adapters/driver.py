"""A unit of work's hot statements, sent straight to asyncpg on the session's own connection.

Hand-written because no library does it: SQLAlchemy's execution layer (the
ORM's load and flush, and Core's result machinery under them) costs three to
four times the driver's own CPU for the few statements every write repeats —
a locked read by id, a look-up by a few columns, an insert, a versioned
update. Here those statements are compiled once by SQLAlchemy (quoting, casts,
the order of parameters), then run on asyncpg's prepared statements through
the SQLAlchemy adapter's own cache and transaction start, so both paths share
one connection, one transaction and one error vocabulary (``DBAPIError``).

Rows become the same mapped objects an ORM load gives, in the session's
identity map; a flush writes the session's new and changed objects, and the
outbox rows of the commit, in one statement (one round trip), checks versions
with ``RETURNING``, and leaves the objects as a flush would. Whatever this path cannot do exactly
as the ORM would (relationships in use, deletes, savepoints, SQL expressions
as values, mapper events, composite keys, any driver but asyncpg) goes to the
ORM instead, so the contract suite holds on both. So does everything on an engine
whose statements someone watches through SQLAlchemy's cursor events (tracing).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Column, Connection, Select, Table, bindparam, inspect, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ColumnProperty, Mapper, Session
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import greenlet_spawn

from adapters import audit
from adapters.database import ReadOnlySession, run_to_completion

Processor = Callable[[Any], Any] | None
DriverSource = Callable[[], Awaitable["Driver | None"]]
"""Where a repository asks for the driver of its unit of work's current transaction."""

_ADAPTER_PARTS = ("_execute_mutex", "_transaction", "_start_transaction", "_prepare")
"""What this module uses of SQLAlchemy's asyncpg adapter; without any of it, the ORM's path."""


class Fetched(NamedTuple):
    rows: list[Any]
    types: tuple[int, ...]
    """The type (PostgreSQL's oid) of each column: some result processors depend on it."""


class Driver:
    """The asyncpg connection under a session's current transaction.

    Statements run as the adapter's own cursor runs them: under its lock,
    after its lazy ``BEGIN``, through its prepared-statement cache.
    """

    def __init__(self, connection: Connection, adapter: Any) -> None:
        self._connection = connection
        self._adapter = adapter
        self.dialect = connection.dialect

    @classmethod
    async def of(cls, session: AsyncSession) -> Driver | None:
        """The driver of ``session``'s connection, or ``None`` where only the ORM path applies."""
        bind = session.bind
        if bind is None or bind.dialect.driver != "asyncpg":
            return None
        connection = await session.connection()
        return None if connection.sync_connection is None else cls.on(connection.sync_connection)

    @classmethod
    def on(cls, connection: Connection) -> Driver | None:
        """The driver under ``connection`` (one already connected: no I/O, so SQLAlchemy's
        events may ask too), or ``None`` where only the ORM path applies."""
        if connection.dialect.driver != "asyncpg":
            return None
        events = connection.dispatch
        if events.before_cursor_execute or events.after_cursor_execute:
            # Someone watches every statement (tracing's SQL spans, a test's log):
            # they would miss the driver's.
            return None
        adapter = connection.connection.dbapi_connection
        if not all(hasattr(adapter, part) for part in _ADAPTER_PARTS):
            return None
        return cls(connection, adapter)

    async def fetch(self, sql: str, args: Sequence[Any]) -> Fetched:
        """The rows of one statement, inside the session's transaction."""
        adapter = self._adapter
        async with adapter._execute_mutex:
            try:
                if adapter._transaction is None:
                    await adapter._start_transaction()
                prepared, attributes = await adapter._prepare(
                    sql,
                    self.dialect._invalidate_schema_cache_asof,  # type: ignore[attr-defined]
                )
                rows = await prepared.fetch(*args)
            except BaseException as error:
                raise await self._failed(error, sql, args) from error
        return Fetched(rows, tuple(attribute.type.oid for attribute in attributes or ()))

    async def rows(self, statement: Select[Any], values: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of a prebuilt ``SELECT`` (bound with ``values``), by column key.

        For read-side queries built once at import: compiled once per dialect.
        """
        compiled, keys, types = _compiled_select(statement, self.dialect)
        fetched = await self.fetch(compiled.sql, compiled.args(values))
        processors = _result_processors(types, fetched.types, self.dialect)
        return [
            {
                key: value if process is None else process(value)
                for key, process, value in zip(keys, processors, row, strict=True)
            }
            for row in fetched.rows
        ]

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for each of ``rows``, pipelined by asyncpg in one round trip."""
        adapter = self._adapter
        async with adapter._execute_mutex:
            try:
                if adapter._transaction is None:
                    await adapter._start_transaction()
                await adapter._connection.executemany(sql, rows)
            except BaseException as error:
                raise await self._failed(error, sql, rows) from error

    async def _failed(self, error: BaseException, sql: str, args: Any) -> BaseException:
        """``error`` as SQLAlchemy would raise it, so one translation serves both paths; and,
        as SQLAlchemy does, the connection invalidated when it can no longer be trusted.

        A cancellation can land between ``BEGIN`` reaching the server and the adapter
        noting it: only dropping the connection then makes sure no transaction outlives it.
        The drop is SQLAlchemy's own, awaited to its end, so asyncpg's cancel request for
        the interrupted statement goes out first (a bare ``terminate`` would drop it too).
        """
        if not isinstance(error, Exception):
            await run_to_completion(greenlet_spawn(self._connection.invalidate))
            return error
        try:
            self._adapter._handle_exception(error)
        except Exception as dbapi_error:
            error = dbapi_error
        disconnected = self.dialect.is_disconnect(error, self._adapter, None)  # type: ignore[arg-type]
        if disconnected:
            await run_to_completion(greenlet_spawn(self._connection.invalidate))
        return DBAPIError.instance(
            sql,
            args,
            error,
            self.dialect.loaded_dbapi.Error,
            hide_parameters=self._connection.engine.hide_parameters,
            connection_invalidated=disconnected,
            dialect=self.dialect,
        )


# -- the statements of one mapped class ------------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    """A statement compiled for asyncpg, and how to turn named values into its arguments."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    processors: tuple[Processor, ...]

    def args(self, values: dict[str, Any]) -> list[Any]:
        found = []
        for name, process in zip(self.names, self.processors, strict=True):
            value = values[name] if name in values else self.defaults[name]
            found.append(value if process is None else process(value))
        return found


@functools.lru_cache(maxsize=256)
def compile_for(statement: Any, dialect: Dialect) -> Compiled:
    """``statement`` compiled for ``dialect``, once: for statements built once (module
    constants, a plan's), as every hot-path statement is."""
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    processors = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    return Compiled(compiled.string, names, dict(compiled.params), processors)


@functools.lru_cache(maxsize=256)
def _compiled_select(
    statement: Select[Any], dialect: Dialect
) -> tuple[Compiled, tuple[str, ...], tuple[Any, ...]]:
    columns = list(statement.selected_columns)
    keys = tuple(str(column.key) for column in columns)
    return compile_for(statement, dialect), keys, tuple(column.type for column in columns)


@functools.lru_cache(maxsize=256)
def _result_processors(
    types: tuple[Any, ...], oids: tuple[int, ...], dialect: Dialect
) -> tuple[Processor, ...]:
    return tuple(
        kind.dialect_impl(dialect).result_processor(dialect, oid)
        for kind, oid in zip(types, oids, strict=True)
    )


@dataclass(frozen=True, eq=False)
class InsertPlan:
    """``INSERT`` of some columns of one table, for any number of rows."""

    table: Table
    columns: tuple[Column[Any], ...]
    keys: tuple[str, ...]
    """The key of each column's value in a row given to :meth:`bound`."""
    returning: str
    """A SQL expression each inserted row returns (``pg_notify(...)``), or nothing."""
    dialect: Dialect

    @functools.cached_property
    def binds(self) -> tuple[Processor, ...]:
        return tuple(
            column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
            for column in self.columns
        )

    @functools.cached_property
    def casts(self) -> list[str]:
        return [cast_type(column.type, self.dialect) for column in self.columns]

    def bound(self, values: dict[str, Any]) -> list[Any]:
        """One row's values, by key, as the driver takes them."""
        return [
            value if process is None else process(value)
            for process, value in zip(self.binds, (values[key] for key in self.keys), strict=True)
        ]

    @functools.lru_cache(maxsize=64)  # noqa: B019 - plans live as long as the process
    def sql(self, rows: int, start: int = 1, after: str = "") -> str:
        """``INSERT`` of ``rows`` rows, placeholders numbered from ``start``; with ``after``,
        a condition evaluated first (:func:`_in_one_statement`), every row returns."""
        preparer = self.dialect.identifier_preparer
        values = _values(self.casts, rows, start)
        names = ", ".join(preparer.quote(column.name) for column in self.columns)
        table = f"INSERT INTO {preparer.format_table(self.table)} ({names})"
        returning = self.returning or ("1" if after else "")
        tail = f" RETURNING {returning}" if returning else ""
        if after:
            return f"{table} SELECT * FROM (VALUES {values}) AS v WHERE {after}{tail}"
        return f"{table} VALUES {values}{tail}"


@dataclass(frozen=True, eq=False)
class RowPlan:
    """How the driver path reads and writes one mapped class: one table, a one-column key."""

    mapper: Mapper[Any]
    table: Table
    keys: tuple[str, ...]
    """The attribute of each of the table's columns, in the table's order."""
    identity: int
    version: int | None
    next_version: Callable[[Any], Any] | None
    relationships: tuple[str, ...]
    dialect: Dialect

    def adopt_all(self, session: Session, fetched: Fetched, *, refresh: bool) -> list[Any]:
        """The session's objects for the rows of ``fetched`` (see :meth:`adopt`)."""
        results = _result_processors(self._column_types, fetched.types, self.dialect)
        return [self.adopt(session, results, row, refresh=refresh) for row in fetched.rows]

    @functools.cached_property
    def _column_types(self) -> tuple[Any, ...]:
        return tuple(column.type for column in self.table.columns)

    def _select(self) -> Select[Any]:
        return select(*self.table.columns)

    @functools.cached_property
    def by_identity(self) -> Compiled:
        key = self.table.columns[self.identity]
        return compile_for(self._select().where(key == bindparam("pk")), self.dialect)

    @functools.cached_property
    def locked_by_identity(self) -> Compiled:
        key = self.table.columns[self.identity]
        statement = self._select().where(key == bindparam("pk")).with_for_update()
        return compile_for(statement, self.dialect)

    @functools.cached_property
    def inserting(self) -> InsertPlan:
        """``INSERT`` of every column, in the table's order (what :meth:`row_of` gives)."""
        return InsertPlan(self.table, tuple(self.table.columns), self.keys, "", self.dialect)

    @functools.lru_cache(maxsize=64)  # noqa: B019 - plans live as long as the process
    def listing(
        self, names: tuple[str, ...], order: tuple[tuple[str, bool], ...], limit: int | None
    ) -> Compiled:
        """``WHERE a = :a AND b = :b ORDER BY ... LIMIT n``: the repository's equality list."""
        statement = self._select().where(
            *(self._column(name) == bindparam(f"eq_{name}") for name in names)
        )
        for name, descending in order:
            column = self._column(name)
            statement = statement.order_by(
                column.desc().nulls_first() if descending else column.asc().nulls_last()
            )
        if limit is not None:
            statement = statement.limit(limit)
        return compile_for(statement, self.dialect)

    def _column(self, name: str) -> Column[Any]:
        if name not in self.keys:
            kind = self.mapper.class_.__name__
            raise ValueError(f"{kind}.{name} is not a mapped attribute; it cannot be queried")
        return self.table.columns[self.keys.index(name)]

    @property
    def update_width(self) -> int:
        """Values per row of :meth:`update`: the version read, then every column."""
        return 1 + len(self.table.columns)

    @functools.lru_cache(maxsize=64)  # noqa: B019 - plans live as long as the process
    def update(self, rows: int, start: int = 1, after: str = "") -> str:
        """One ``UPDATE`` of ``rows`` rows from a ``VALUES`` list, each row ``(version read,
        every column)``; version-checked, ``RETURNING`` the key of each row it matched.

        Placeholders are numbered from ``start``; ``after`` is a condition that must be
        evaluated first (:func:`_in_one_statement`)."""
        preparer = self.dialect.identifier_preparer
        columns = list(self.table.columns)
        casts = self.inserting.casts
        kinds = [casts[self.version] if self.version is not None else "INTEGER", *casts]
        values = _values(kinds, rows, start)
        names = ", ".join(["was", *(f"c{index}" for index in range(len(columns)))])
        assignments = ", ".join(
            f"{preparer.quote(column.name)} = v.c{index}"
            for index, column in enumerate(columns)
            if index != self.identity
        )
        key = preparer.quote(columns[self.identity].name)
        guard = f"t.{key} = v.c{self.identity}"
        if self.version is not None:
            guard += f" AND t.{preparer.quote(columns[self.version].name)} = v.was"
        if after:
            guard += f" AND {after}"
        return (
            f"UPDATE {preparer.format_table(self.table)} AS t SET {assignments} "
            f"FROM (VALUES {values}) AS v ({names}) WHERE {guard} RETURNING t.{key}"
        )

    # -- rows and objects ---------------------------------------------------------------

    def adopt(
        self, session: Session, results: Sequence[Processor], row: Sequence[Any], *, refresh: bool
    ) -> Any:
        """The session's object for ``row``: the one it holds (fresh values if ``refresh``),
        or a new one, persistent and unchanged, as an ORM load leaves it."""
        values = [
            value if process is None else process(value)
            for process, value in zip(results, row, strict=True)
        ]
        identity_key = self.mapper.identity_key_from_primary_key((values[self.identity],))
        held = session.identity_map.get(identity_key)
        if held is not None:
            if refresh:
                for key, value in zip(self.keys, values, strict=True):
                    set_committed_value(held, key, value)
            return held
        aggregate = self.mapper.class_manager.new_instance()
        aggregate.__dict__.update(zip(self.keys, values, strict=True))
        _loaded(session, aggregate, identity_key)
        return aggregate

    def row_of(self, aggregate: Any, *, new: bool) -> list[Any] | None:
        """The column values of ``aggregate`` as bound, or ``None`` when only the ORM can
        write it (an attribute expired or set to a SQL expression, a relationship set).

        An attribute a ``new`` aggregate never set is NULL, as the ORM inserts it.
        """
        state = aggregate.__dict__
        if any(name in state for name in self.relationships):
            return None
        row = []
        for key, process in zip(self.keys, self.inserting.binds, strict=True):
            if key not in state and not new:
                return None
            value = state.get(key)
            if isinstance(value, ClauseElement):
                return None
            row.append(value if process is None else process(value))
        return row


_MODIFIERS = re.compile(r"\(\s*\d+(?:\s*,\s*\d+)?\s*\)")
_UNLIMITED = {"CHAR": "BPCHAR", "CHARACTER": "BPCHAR", "NCHAR": "BPCHAR", "BIT": "VARBIT"}


def _values(casts: list[str], rows: int, start: int) -> str:
    """``($1::T1, $2::T2), ($3::T1, $4::T2)``: ``rows`` rows of placeholders from ``start``."""
    width = len(casts)
    return ", ".join(
        "(" + ", ".join(f"${start + row * width + i}::{kind}" for i, kind in enumerate(casts)) + ")"
        for row in range(rows)
    )


def cast_type(kind: Any, dialect: Dialect) -> str:
    """The type a ``$n::type`` placeholder names for a column of ``kind``: without its
    length or precision, since an explicit cast to ``VARCHAR(3)`` cuts a longer value
    where the column's own assignment refuses it ("value too long")."""
    name = _MODIFIERS.sub("", kind.compile(dialect=dialect))
    return _UNLIMITED.get(name.strip(), name)


_PLANS: dict[tuple[type[Any], str, str], RowPlan | None] = {}


def row_plan(kind: type[Any], dialect: Dialect) -> RowPlan | None:
    """The plan of ``kind``, or ``None`` where its mapping needs the ORM."""
    found = (kind, dialect.name, dialect.driver)
    if found in _PLANS:
        return _PLANS[found]
    mapper: Mapper[Any] = inspect(kind)
    table = mapper.local_table
    plan: RowPlan | None = None
    events = mapper.dispatch
    manager = mapper.class_manager.dispatch
    if (
        isinstance(table, Table)
        and mapper.inherits is None
        and mapper.polymorphic_on is None
        and len(mapper.primary_key) == 1
        and len(table.primary_key.columns) == 1
        and all(
            isinstance(prop, ColumnProperty) and len(prop.columns) == 1
            for prop in mapper.column_attrs
        )
        and len(mapper.column_attrs) == len(table.columns)
        and all(
            not relationship.viewonly and relationship.direction.name == "MANYTOONE"
            for relationship in mapper.relationships
        )
        and (mapper.version_id_col is None or callable(mapper.version_id_generator))
        and all(c.default is None and c.server_default is None for c in table.columns)
        and all(c.identity is None and c.computed is None for c in table.columns)
        and all(c.onupdate is None and c.server_onupdate is None for c in table.columns)
        and not (events.before_insert or events.after_insert)
        and not (events.before_update or events.after_update)
        and not (manager.load or manager.refresh)
    ):
        columns = list(table.columns)
        keys = tuple(mapper.get_property_by_column(column).key for column in columns)
        version = mapper.version_id_col
        generator = mapper.version_id_generator
        plan = RowPlan(
            mapper=mapper,
            table=table,
            keys=keys,
            identity=next(index for index, column in enumerate(columns) if column.primary_key),
            version=None if version is None else columns.index(version),
            next_version=generator if version is not None and callable(generator) else None,
            relationships=tuple(relationship.key for relationship in mapper.relationships),
            dialect=dialect,
        )
    _PLANS[found] = plan
    return plan


# -- SQLAlchemy's internals ------------------------------------------------------------------
# What an ORM load and a flush do to the session once the rows are read or written, done
# the same way: the public route (make_transient_to_detached, then Session.add) walks
# every relationship's cascade and costs more than the statement it follows.


def _loaded(session: Session, aggregate: Any, identity_key: Any) -> None:
    """Put a freshly read ``aggregate`` in ``session`` as ``loading.py`` does."""
    state = instance_state(aggregate)
    state.key = identity_key
    state.session_id = session.hash_key
    session.identity_map._add_unpresent(state, identity_key)
    state._commit_all(aggregate.__dict__, session.identity_map)
    if session.dispatch.loaded_as_persistent:
        session.dispatch.loaded_as_persistent(session, state)


# -- the flush -----------------------------------------------------------------------------


async def flush(session: AsyncSession, driver: Driver, then: Write | None = None) -> bool:
    """Write the session's new and changed objects as a flush would, then ``then`` (a
    commit hook's rows: the outbox's); ``False`` (nothing written, nothing changed) when
    some objects need the ORM, which must then flush them all before ``then`` is written.

    A flush of a few rows is one statement, one round trip (:func:`write`)."""
    sync = session.sync_session
    if sync.deleted or sync.in_nested_transaction() or isinstance(sync, ReadOnlySession):
        return False
    if not _only_keels_flush_listeners(sync):
        return False
    new = list(sync.new)
    changed = [
        aggregate
        for aggregate in sync.dirty
        if sync.is_modified(aggregate, include_collections=False)
    ]
    if not new and not changed:
        if then is not None:
            await write(driver, [then])
        return True
    plans: dict[type[Any], RowPlan] = {}
    for aggregate in (*new, *changed):
        kind = type(aggregate)
        if kind not in plans:
            plan = row_plan(kind, driver.dialect)
            if plan is None:
                return False
            plans[kind] = plan
    staged = _Staged()
    now = audit.utc_now()
    audit.stamp_created(new, now)
    audit.stamp_updated(changed, now)
    for aggregate in new:
        if not staged.insert(plans[type(aggregate)], aggregate):
            return False
    for aggregate in changed:
        if not staged.update(plans[type(aggregate)], aggregate):
            return False
    staged.set_versions()
    writes = staged.writes(_in_dependency_order(frozenset(plans.values())))
    if then is not None:
        writes.append(then)
    try:
        await write(driver, writes)
    except BaseException:
        staged.unset_versions()
        raise
    staged.written(sync)
    return True


def _only_keels_flush_listeners(session: Session) -> bool:
    """Whether the only flush listeners are the audit stamps, which the driver's flush
    applies itself; anyone else's listener expects the ORM's flush."""
    events = session.dispatch
    return (
        all(listener is audit.stamp_on_flush for listener in events.before_flush)
        and not events.after_flush
        and not events.after_flush_postexec
    )


Staged = tuple[Any, RowPlan, list[Any]]
"""An object, its plan and its row as bound."""


class _Staged:
    """The rows one driver flush writes, per table; nothing is changed until all are known."""

    def __init__(self) -> None:
        self.inserts: dict[Table, list[Staged]] = {}
        self.updates: dict[Table, list[Staged]] = {}
        self._versions: list[tuple[Any, str, Any, Any]] = []

    def insert(self, plan: RowPlan, aggregate: Any) -> bool:
        row = plan.row_of(aggregate, new=True)
        if row is None or row[plan.identity] is None:
            return False  # ... or a key the database generates: the ORM reads it back
        if plan.version is not None:
            self._version(plan, aggregate, row, was=None)
        self.inserts.setdefault(plan.table, []).append((aggregate, plan, row))
        return True

    def update(self, plan: RowPlan, aggregate: Any) -> bool:
        held = inspect(aggregate)
        ident = aggregate.__dict__.get(plan.keys[plan.identity])
        if held.identity is None or held.identity[0] != ident:
            return False  # a changed primary key: the ORM's business
        row = plan.row_of(aggregate, new=False)
        if row is None:
            return False
        was = None
        if plan.version is not None:
            if held.attrs[plan.keys[plan.version]].history.has_changes():
                return False  # a version set by hand: the ORM's business
            was = row[plan.version]
            self._version(plan, aggregate, row, was=was)
        self.updates.setdefault(plan.table, []).append((aggregate, plan, [was, *row]))
        return True

    def _version(self, plan: RowPlan, aggregate: Any, row: list[Any], *, was: Any) -> None:
        assert plan.version is not None
        assert plan.next_version is not None
        now = plan.next_version(was)
        row[plan.version] = now
        self._versions.append((aggregate, plan.keys[plan.version], was, now))

    def writes(self, tables: list[Table]) -> list[Write | Update]:
        """The statements, each table's after the tables it refers to; an ``UPDATE`` of more
        rows than one statement takes is cut in several."""
        found: list[Write | Update] = []
        for table in tables:
            inserted = self.inserts.get(table)
            if inserted:
                found.append(Write(inserted[0][1].inserting, [row for _, _, row in inserted]))
            updated = self.updates.get(table)
            if updated:
                plan = updated[0][1]
                size = MAX_ARGS // plan.update_width
                rows = [row for _, _, row in updated]
                found.extend(Update(plan, rows[i : i + size]) for i in range(0, len(rows), size))
        return found

    def set_versions(self) -> None:
        for aggregate, key, _, now in self._versions:
            aggregate.__dict__[key] = now

    def unset_versions(self) -> None:
        """A failed flush leaves each version as it was read, as the ORM's does."""
        for aggregate, key, was, _ in self._versions:
            if was is not None:
                aggregate.__dict__[key] = was

    def written(self, session: Session) -> None:
        """Leave every object as a flush does: persistent, in the identity map, unchanged."""
        states = {
            instance_state(aggregate)
            for staged in (*self.inserts.values(), *self.updates.values())
            for aggregate, _, _ in staged
        }
        session._register_persistent(states)


# -- statements ------------------------------------------------------------------------------

MAX_ARGS = 32767
"""PostgreSQL's limit of parameters in one statement."""
ONE_STATEMENT_ARGS = 2000
"""Writes of up to this many values in all go as one statement; more (a bulk insert)
go statement by statement, each insert's rows pipelined by ``executemany``."""


class Write(NamedTuple):
    """Rows for one ``INSERT``."""

    plan: InsertPlan
    rows: list[list[Any]]

    def check(self, returned: int) -> None:
        """Every row is inserted or the statement fails: nothing to check."""

    async def run(self, driver: Driver) -> None:
        if len(self.rows) == 1:
            await driver.fetch(self.plan.sql(1), self.rows[0])
        else:
            await driver.executemany(self.plan.sql(1), self.rows)


class Update(NamedTuple):
    """Rows for one versioned ``UPDATE`` (:meth:`RowPlan.update`): each must match."""

    plan: RowPlan
    rows: list[list[Any]]

    def check(self, returned: int) -> None:
        if returned != len(self.rows):
            raise StaleDataError(
                f"UPDATE of {self.plan.table.name} expected to match {len(self.rows)} row(s); "
                f"{returned} were matched"
            )

    async def run(self, driver: Driver) -> None:
        sql = self.plan.update(len(self.rows))
        matched, _ = await driver.fetch(sql, [value for row in self.rows for value in row])
        self.check(len(matched))


async def write(driver: Driver, writes: Sequence[Write | Update]) -> None:
    """Run ``writes`` in order: as one statement when they are small enough together."""
    if len(writes) > 1 and sum(len(w.rows) * len(w.rows[0]) for w in writes) <= ONE_STATEMENT_ARGS:
        shape = tuple((w.plan, len(w.rows)) for w in writes)
        fetched = await driver.fetch(
            _in_one_statement(shape), [v for w in writes for row in w.rows for v in row]
        )
        for w, returned in zip(writes, fetched.rows[0], strict=True):
            w.check(returned)
        return
    for w in writes:
        await w.run(driver)


@functools.lru_cache(maxsize=256)
def _in_one_statement(shape: tuple[tuple[InsertPlan | RowPlan, int], ...]) -> str:
    """The writes of ``shape`` (each a plan and its number of rows) as one statement.

    Each is a data-modifying ``WITH`` query that reads the one before it, so they run in
    order: PostgreSQL leaves the order of unrelated ones open, and an outbox row must take
    its id after the rows it follows have been locked. The statement returns how many
    rows each one returned, for the version checks.
    """
    parts: list[str] = []
    start = 1
    for index, (plan, rows) in enumerate(shape):
        after = f"(SELECT count(*) FROM w{index - 1}) >= 0" if index else ""
        if isinstance(plan, InsertPlan):
            sql, width = plan.sql(rows, start, after or "true"), len(plan.columns)
        else:
            sql, width = plan.update(rows, start, after), plan.update_width
        parts.append(f"w{index} AS ({sql})")
        start += rows * width
    counts = ", ".join(f"(SELECT count(*) FROM w{index})" for index in range(len(shape)))
    return f"WITH {', '.join(parts)} SELECT {counts}"


@functools.lru_cache(maxsize=256)
def _in_dependency_order(plans: frozenset[RowPlan]) -> list[Table]:
    """The tables of ``plans``, each after the tables its foreign keys point at."""
    tables = {plan.table for plan in plans}
    metadata = next(iter(tables)).metadata
    ordered = [table for table in metadata.sorted_tables if table in tables]
    return ordered + [table for table in tables if table not in ordered]
