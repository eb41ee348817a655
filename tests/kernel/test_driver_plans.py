"""Which mappings the driver path writes itself, and which it leaves to the ORM."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Computed, Identity, Integer, MetaData, String, Table, Uuid, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import registry

from adapters.driver import row_plan

pytestmark = pytest.mark.unit

POSTGRESQL: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]


def mapped(*columns: Column[Any]) -> type[Any]:
    """A class of its own, mapped onto a table of its own (no shared metadata)."""
    kind = type("Row", (), {})
    table = Table("rows", MetaData(), *columns)
    registry().map_imperatively(kind, table)
    return kind


def test_a_table_whose_every_value_the_object_holds_is_written_by_the_driver() -> None:
    kind = mapped(Column("id", Uuid, primary_key=True), Column("name", String(10)))

    assert row_plan(kind, POSTGRESQL) is not None


@pytest.mark.parametrize(
    "column",
    [
        Column("number", Integer, Identity()),
        Column("twice", Integer, Computed("1 + 1")),
        Column("name", String(10), server_default=text("'x'")),
        Column("name", String(10), default="x"),
        Column("name", String(10), onupdate="x"),
    ],
    ids=["identity", "computed", "server default", "default", "onupdate"],
)
def test_a_column_the_database_or_a_default_fills_leaves_the_table_to_the_orm(
    column: Column[Any],
) -> None:
    kind = mapped(Column("id", Uuid, primary_key=True), column)

    assert row_plan(kind, POSTGRESQL) is None


def test_a_composite_key_leaves_the_table_to_the_orm() -> None:
    kind = mapped(Column("a", Uuid, primary_key=True), Column("b", Uuid, primary_key=True))

    assert row_plan(kind, POSTGRESQL) is None
