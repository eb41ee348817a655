"""The types the driver path casts its placeholders to: never one that cuts a value."""

from __future__ import annotations

import pytest
from sqlalchemy import ARRAY, CHAR, Numeric, String, Uuid
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TIMESTAMP, TypeEngine

from adapters.driver import cast_type

pytestmark = pytest.mark.unit

POSTGRESQL: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("kind", "cast"),
    [
        (String(100), "VARCHAR"),
        (CHAR(3), "BPCHAR"),
        (Numeric(10, 2), "NUMERIC"),
        (TIMESTAMP(timezone=True), "TIMESTAMP WITH TIME ZONE"),
        (postgresql.TIMESTAMP(timezone=True, precision=3), "TIMESTAMP WITH TIME ZONE"),
        (ARRAY(String(10)), "VARCHAR[]"),
        (postgresql.BIT(4), "VARBIT"),
        (Uuid(), "UUID"),
    ],
)
def test_a_placeholder_is_cast_to_its_columns_type_without_a_length_that_would_cut(
    kind: TypeEngine[object], cast: str
) -> None:
    assert cast_type(kind, POSTGRESQL) == cast
