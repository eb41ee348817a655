"""Driver errors become domain errors in the adapter that meets them."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from adapters.sql_errors import is_unique_violation, sqlstate_of
from adapters.unit_of_work import SqlAlchemyUnitOfWork
from domain.errors import ConcurrencyError, DuplicateKeyError

pytestmark = pytest.mark.unit


class DriverError(Exception):
    """Stands in for a driver exception that carries only a SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _translated(error: BaseException) -> Exception | None:
    uow = SqlAlchemyUnitOfWork.__new__(SqlAlchemyUnitOfWork)
    return uow.translate_error(error)


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_serialization_failures_and_deadlocks_become_conflicts(sqlstate: str) -> None:
    translated = _translated(DBAPIError("COMMIT", None, DriverError(sqlstate)))

    assert isinstance(translated, ConcurrencyError)
    assert translated.sqlstate == sqlstate


def test_a_unique_violation_becomes_a_duplicate_key_error() -> None:
    translated = _translated(IntegrityError("INSERT", None, DriverError("23505")))

    assert isinstance(translated, DuplicateKeyError)


def test_other_sqlstates_are_left_alone() -> None:
    assert _translated(DBAPIError("SELECT", None, DriverError("22001"))) is None


def test_a_wrapped_sqlstate_is_found_through_its_cause() -> None:
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = DriverError("40P01")

    assert sqlstate_of(wrapped) == "40P01"


def test_sqlites_wording_of_a_duplicate_is_a_unique_violation() -> None:
    error = IntegrityError("INSERT", None, Exception("UNIQUE constraint failed: things.id"))

    assert is_unique_violation(error)
