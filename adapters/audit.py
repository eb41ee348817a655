"""Audit columns: ``created_at`` and ``updated_at``, stamped by the kernel in UTC.

Opt in per table in the mapping, not in the domain::

    Table("products", metadata, Column("id", Uuid, primary_key=True), ..., *audit_columns())

From then on every flush sets both on insert and ``updated_at`` on a real
change (a session ``before_flush`` listener), ``add_many``'s bulk path and the
in-memory fake's commit stamp them the same way, and values always come back
timezone-aware in UTC, SQLite included. No bounded context writes them itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, event, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.types import TypeDecorator

AUDIT_INFO_KEY = "keel.audit"
CREATED = "created"
UPDATED = "updated"


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back aware, on PostgreSQL and SQLite alike.

    SQLite keeps no offset: without this, values would come back naive there.
    A naive value is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime ({value.isoformat()}) cannot be stored as UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    """The stamp's clock; tests may patch it."""
    return datetime.now(UTC)


def audit_columns(
    created: str = "created_at", updated: str = "updated_at"
) -> tuple[Column[datetime], Column[datetime]]:
    """Two new columns for a ``Table``, marked so the kernel knows to stamp them."""
    _install()
    return (
        Column(created, UtcDateTime(), nullable=False, info={AUDIT_INFO_KEY: CREATED}),
        Column(updated, UtcDateTime(), nullable=False, info={AUDIT_INFO_KEY: UPDATED}),
    )


@dataclass(frozen=True)
class AuditAttributes:
    """The attribute names the audit columns are mapped to on one class."""

    created: str | None
    updated: str | None


_AUDITED: dict[type[Any], AuditAttributes | None] = {}


def audit_attributes(kind: type[Any]) -> AuditAttributes | None:
    """Which attributes of ``kind`` are audit columns; ``None`` if it has none or is unmapped."""
    if kind in _AUDITED:
        return _AUDITED[kind]
    mapper = inspect(kind, raiseerr=False)
    if mapper is None:
        return None  # not cached: the class may be mapped later
    found: dict[str, str] = {}
    for prop in mapper.column_attrs:
        for column in prop.columns:
            tag = column.info.get(AUDIT_INFO_KEY)
            if tag in (CREATED, UPDATED):
                found[tag] = prop.key
    attributes = AuditAttributes(found.get(CREATED), found.get(UPDATED)) if found else None
    _AUDITED[kind] = attributes
    return attributes


def stamp_created(aggregates: Iterable[Any], now: datetime) -> None:
    """Set both stamps of new aggregates (of audited classes; others are left alone)."""
    for aggregate in aggregates:
        attributes = audit_attributes(type(aggregate))
        if attributes is None:
            continue
        if attributes.created is not None:
            setattr(aggregate, attributes.created, now)
        if attributes.updated is not None:
            setattr(aggregate, attributes.updated, now)


def stamp_updated(aggregates: Iterable[Any], now: datetime) -> None:
    """Set ``updated_at`` of changed aggregates."""
    for aggregate in aggregates:
        attributes = audit_attributes(type(aggregate))
        if attributes is not None and attributes.updated is not None:
            setattr(aggregate, attributes.updated, now)


def stamp_on_flush(session: Session, _context: UOWTransaction, _instances: object) -> None:
    """The session `before_flush` listener: stamps what the flush is about to write."""
    now = utc_now()
    stamp_created(session.new, now)
    stamp_updated(
        (
            instance
            for instance in session.dirty
            if session.is_modified(instance, include_collections=False)
        ),
        now,
    )


def _install() -> None:
    # Once per process, for every Session (an AsyncSession's included): cheap
    # for classes without audit columns, and no session can forget it.
    if not event.contains(Session, "before_flush", stamp_on_flush):
        event.listen(Session, "before_flush", stamp_on_flush)
