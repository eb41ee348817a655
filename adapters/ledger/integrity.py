"""Recognise which unique constraint a database refused a write on.

PostgreSQL names the constraint (SQLSTATE 23505, asyncpg's
``constraint_name``); SQLite only lists the columns in its message
("UNIQUE constraint failed: t.a, t.b"), so those are matched against the
constraints' columns.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Column, Table, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from adapters.ledger.tables import (
    IDEMPOTENCY_CONSTRAINTS,
    accounts,
    entries,
    refusals,
    transfers,
)
from adapters.sql_errors import UNIQUE_VIOLATION, is_unique_violation, sqlstate_of

_SQLITE_PREFIX = "UNIQUE constraint failed: "


def _unique_constraints(*tables: Table) -> Iterator[tuple[str, tuple[str, ...]]]:
    for table in tables:
        if isinstance(table.primary_key.name, str):
            yield (
                table.primary_key.name,
                tuple(f"{table.name}.{c.name}" for c in table.primary_key),
            )
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and isinstance(constraint.name, str):
                yield constraint.name, tuple(f"{table.name}.{c.name}" for c in constraint.columns)
        for index in table.indexes:
            if index.unique and isinstance(index.name, str):
                columns = [c for c in index.expressions if isinstance(c, Column)]
                yield index.name, tuple(f"{table.name}.{c.name}" for c in columns)


_BY_SQLITE_COLUMNS = {
    ", ".join(columns): name
    for name, columns in _unique_constraints(accounts, transfers, entries, refusals)
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    for start in (getattr(exc, "orig", None), exc):
        candidate = start
        while candidate is not None:
            yield candidate
            candidate = candidate.__cause__


def violated_unique_constraint(exc: BaseException) -> str | None:
    """The name of the unique constraint ``exc`` reports a violation of, if any."""
    if not is_unique_violation(exc):
        return None
    if sqlstate_of(exc) == UNIQUE_VIOLATION:
        for candidate in _chain(exc):
            name = getattr(candidate, "constraint_name", None)
            if isinstance(name, str):
                return name
        return None
    assert isinstance(exc, IntegrityError)
    columns = str(exc.orig).removeprefix(_SQLITE_PREFIX).strip()
    return _BY_SQLITE_COLUMNS.get(columns)


def idempotency_conflict(exc: BaseException) -> str | None:
    """The idempotency constraint a concurrent writer won on, or ``None``."""
    name = violated_unique_constraint(exc)
    return name if name in IDEMPOTENCY_CONSTRAINTS else None
