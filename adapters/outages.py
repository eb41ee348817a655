"""Telling "the database cannot be reached right now" apart from a bug.

Every entrypoint needs this one decision. The HTTP layer answers such a
failure with a retryable 503 instead of a 500; a message consumer leaves the
message for later instead of counting the attempt towards the dead-letter
limit; the outbox relay logs one line instead of a traceback per pass. In all
three cases nothing is lost: the work was not done and will be done again.

The causes are driver-independent where possible: SQLAlchemy's "the pool
had no connection to give" and "this connection was invalidated", the
driver's connection errors, and the SQLSTATEs PostgreSQL uses while it is
starting, stopping or out of connection slots.

A bare ``OSError`` (refused, reset, timed out) counts only when the database
driver or SQLAlchemy raised it — SQLAlchemy lets socket errors from
connecting pass unwrapped. The same error from a handler's own I/O (a file,
a call to another service) is that handler's failure: treated as an outage
it would be redelivered for ever instead of reaching the dead letters. Who
raised it is read from the traceback: the innermost frame outside the
standard library's networking code.
"""

from __future__ import annotations

import traceback
from types import TracebackType

import asyncpg
from sqlalchemy import exc as sa_exc

from adapters.sql_errors import sqlstate_of

UNAVAILABLE_SQLSTATES = {
    "53300": "too many connections",
    "57P01": "server shutting down (admin shutdown)",
    "57P02": "server crashed (crash shutdown)",
    "57P03": "server starting up or shutting down (cannot connect now)",
}
"""SQLSTATEs that mean "come back later", beyond the whole connection-exception class 08."""

QUERY_CANCELED = "57014"
"""A statement cancelled by the server: ``statement_timeout``, or a cancel request."""

DRIVER_MODULES = ("asyncpg", "aiosqlite", "sqlalchemy")
"""Packages whose own ``OSError`` means the database connection failed."""

TRANSPORT_MODULES = ("asyncio", "socket", "ssl", "selectors", "concurrent", "contextlib")
"""Standard-library code a socket error passes through on its way up to whoever asked."""

ASYNCPG_CONNECTION_ERRORS = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)
"""asyncpg's own "no usable connection" errors, when they reach us unwrapped."""


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached, so retrying later may work.

    ``False`` for anything that would fail the same way again (a bug, a
    constraint violation, a syntax error), which callers must not hide.
    """
    cause: BaseException | None = exc
    while cause is not None:  # a wrapper raised `from` a connection error counts too
        if _is_connection_failure(cause):
            return True
        cause = cause.__cause__
    return False


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.TimeoutError):
        # The pool had no connection to give within pool_timeout.
        return True
    if isinstance(exc, ASYNCPG_CONNECTION_ERRORS):
        return True
    if isinstance(exc, OSError):
        # Refused, reset, unreachable, connect timeout (TimeoutError is one) —
        # but only on the database's connection, not in the caller's own I/O.
        return _raised_by_database_driver(exc.__traceback__)
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
    sqlstate = sqlstate_of(exc)
    return sqlstate is not None and (sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES)


def _raised_by_database_driver(tb: TracebackType | None) -> bool:
    """Whether the innermost frame outside the transport code is the driver's or SQLAlchemy's."""
    frames = [frame for frame, _line in traceback.walk_tb(tb)]
    for frame in reversed(frames):
        module = str(frame.f_globals.get("__name__", ""))
        if _in_package(module, TRANSPORT_MODULES):
            continue
        return _in_package(module, DRIVER_MODULES)
    return False


def _in_package(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether the server cancelled a statement (``statement_timeout``); it was rolled back.

    Kept apart from :func:`is_database_unavailable`: over HTTP both are a
    retryable 503, but a consumer must still count such a failure towards the
    dead-letter limit, or a message whose work always times out would come
    back for ever.
    """
    return sqlstate_of(exc) == QUERY_CANCELED
