"""Pooled asyncpg connections checked for life without a round trip.

SQLAlchemy's ``pool_pre_ping`` costs three round trips on every checkout with
asyncpg (``BEGIN``, an empty statement, ``ROLLBACK``): more than a
primary-key read itself. An idle asyncpg connection is still watched by the
event loop, so when the server ends it (a restart, a failover,
``pg_terminate_backend``, a pooler going away) the driver marks it closed on
its own. The checkout listener here reads that flag, which is free, and pings
only a connection that sat idle longer than ``ping_after_idle`` seconds,
where a silent drop (a firewall forgetting the connection, no FIN) could
hide. A connection found dead is reported as a ``DisconnectionError``, which
SQLAlchemy answers by replacing it and checking out another: the request
never sees it.

What remains is the race every liveness check has: a server that dies
between the checkout and the first statement. That request fails as
``database_unavailable`` (503, retryable) and nothing is kept, exactly as
with ``pool_pre_ping``.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

PING_AFTER_IDLE_SECONDS = 10.0
"""Default: ping a connection that has been idle for longer than this before handing it out."""

_IDLE_SINCE = "keel_idle_since"


def watch(engine: Engine, *, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check every connection ``engine``'s pool hands out; ``0`` pings on every checkout."""
    if ping_after_idle < 0:
        raise ValueError(f"ping_after_idle must be >= 0 seconds, got {ping_after_idle}")

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if is_closed(dbapi_connection):
            raise DisconnectionError("the server closed this pooled connection")
        # ``record.info`` is cleared when a connection is replaced: a new one is never pinged.
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < ping_after_idle:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("a pooled connection did not answer its ping") from exc
        if not alive:
            raise DisconnectionError("a pooled connection did not answer its ping")


def is_closed(dbapi_connection: Any) -> bool:
    """Whether asyncpg already knows its connection is gone (the only async PostgreSQL driver)."""
    return bool(dbapi_connection.driver_connection.is_closed())
