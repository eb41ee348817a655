"""``translate_sql_error``: what the domain error says for each database error.

No database needed: the errors are built as the drivers raise them.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from adapters.unit_of_work import translate_sql_error
from domain.errors import ConcurrencyError, DuplicateKeyError

pytestmark = pytest.mark.unit


class DriverError(Exception):
    """A driver exception with a SQLSTATE and, like asyncpg's, maybe a constraint name."""

    def __init__(self, sqlstate: str, constraint_name: str | None = None) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate
        self.constraint_name = constraint_name


def test_a_stale_version_is_a_conflict_that_says_so() -> None:
    translated = translate_sql_error(StaleDataError("UPDATE matched 0 rows"))

    assert type(translated) is ConcurrencyError
    assert translated.detail == (
        "the aggregate was changed or removed by another writer since it was read"
    )


@pytest.mark.parametrize(
    ("sqlstate", "detail"), [("40001", "serialization failure"), ("40P01", "deadlock detected")]
)
def test_a_retryable_sqlstate_is_a_conflict_named_after_it(sqlstate: str, detail: str) -> None:
    translated = translate_sql_error(DBAPIError("COMMIT", None, DriverError(sqlstate)))

    assert type(translated) is ConcurrencyError
    assert (translated.detail, translated.sqlstate) == (detail, sqlstate)


def test_a_named_unique_violation_is_a_duplicate_key_that_names_the_constraint() -> None:
    error = IntegrityError("INSERT", None, DriverError("23505", "uq_things_name"))

    translated = translate_sql_error(error)

    assert isinstance(translated, DuplicateKeyError)
    assert translated.detail == "a row with the same unique key (uq_things_name) was written first"
    assert (translated.sqlstate, translated.constraint) == ("23505", "uq_things_name")


def test_an_unnamed_unique_violation_says_the_database_did_not_name_it() -> None:
    translated = translate_sql_error(IntegrityError("INSERT", None, DriverError("23505")))

    assert isinstance(translated, DuplicateKeyError)
    assert translated.detail == (
        "a row with the same unique key (not named by the database) was written first"
    )
    assert (translated.sqlstate, translated.constraint) == ("23505", None)
