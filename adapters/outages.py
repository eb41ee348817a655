"""Telling "the database cannot be reached right now" apart from a bug.

Every entrypoint needs this one decision. The HTTP layer answers such a
failure with a retryable 503 instead of a 500; a message consumer leaves the
message for later instead of counting the attempt towards the dead-letter
limit; the outbox relay logs one line instead of a traceback per pass. In all
three cases nothing is lost: the work was not done and will be done again.

The causes are driver-independent where possible: a socket error (refused,
reset, timed out — ``OSError``), SQLAlchemy's "the pool had no connection to
give" and "this connection was invalidated", and the SQLSTATEs PostgreSQL
uses while it is starting, stopping or out of connection slots.
"""

from __future__ import annotations

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


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached, so retrying later may work.

    ``False`` for anything that would fail the same way again (a bug, a
    constraint violation, a syntax error), which callers must not hide.
    """
    if isinstance(exc, OSError | sa_exc.TimeoutError):
        # OSError: refused, reset, unreachable, connect timeout (TimeoutError is one).
        # sa_exc.TimeoutError: the pool had no connection to give within pool_timeout.
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
    sqlstate = sqlstate_of(exc)
    return sqlstate is not None and (sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES)


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether the server cancelled a statement (``statement_timeout``); it was rolled back.

    Kept apart from :func:`is_database_unavailable`: over HTTP both are a
    retryable 503, but a consumer must still count such a failure towards the
    dead-letter limit, or a message whose work always times out would come
    back for ever.
    """
    return sqlstate_of(exc) == QUERY_CANCELED
