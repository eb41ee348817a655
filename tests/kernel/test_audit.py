"""The audit helper's pieces that need no database: the UTC column type and the marker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

import tests.kernel.parts_orm  # maps Part with audit columns
import tests.kernel.things_orm  # noqa: F401 - maps Thing without them
from adapters.audit import AUDIT_INFO_KEY, UtcDateTime, audit_attributes, audit_columns
from tests.kernel.parts import Part
from tests.kernel.things import Thing

pytestmark = pytest.mark.unit

DIALECT = sqlite.dialect()


def test_a_naive_datetime_is_refused_rather_than_guessed_at() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        UtcDateTime().process_bind_param(datetime(2024, 1, 1), DIALECT)


def test_an_aware_datetime_is_stored_in_utc() -> None:
    paris = datetime(2024, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))

    stored = UtcDateTime().process_bind_param(paris, DIALECT)

    assert stored == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)


def test_a_naive_value_read_back_is_taken_as_utc() -> None:
    read = UtcDateTime().process_result_value(datetime(2024, 1, 1, 12, 0), DIALECT)

    assert read == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def test_audit_columns_are_two_marked_non_null_timestamps() -> None:
    created, updated = audit_columns()

    assert (created.name, updated.name) == ("created_at", "updated_at")
    assert (created.info[AUDIT_INFO_KEY], updated.info[AUDIT_INFO_KEY]) == ("created", "updated")
    assert not created.nullable
    assert not updated.nullable


def test_a_class_mapped_with_audit_columns_is_audited() -> None:
    attributes = audit_attributes(Part)

    assert attributes is not None
    assert (attributes.created, attributes.updated) == ("created_at", "updated_at")


def test_a_class_mapped_without_them_is_not() -> None:
    assert audit_attributes(Thing) is None
