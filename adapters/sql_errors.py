"""Reading a database error: its SQLSTATE, and whether it is a refused duplicate key.

Error translation lives with the adapters that meet the errors; the service
layer only ever sees the domain's ``ConcurrencyError`` and ``DuplicateKeyError``.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

RETRYABLE_SQLSTATES = {
    "40001": "serialization failure",
    "40P01": "deadlock detected",
}
"""SQLSTATEs after which re-running the whole unit of work is safe and likely to succeed."""


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, whichever driver raised it."""
    for candidate in (getattr(exc, "orig", None), exc):
        while candidate is not None:
            code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(code, str):
                return code
            candidate = candidate.__cause__
    return None


UNIQUE_VIOLATION = "23505"
_SQLITE_UNIQUE_PREFIX = "UNIQUE constraint failed: "


def is_unique_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is a refused duplicate key: SQLSTATE 23505, or SQLite's wording of it."""
    return isinstance(exc, IntegrityError) and (
        sqlstate_of(exc) == UNIQUE_VIOLATION or str(exc.orig).startswith(_SQLITE_UNIQUE_PREFIX)
    )
