"""What every fault scenario is made of: the leak check, and a hook that holds a commit.

:class:`LeakCheck` is what every scenario ends with: the engine's pool has
nothing checked out, PostgreSQL shows no session of the test's
``application_name`` left ``idle in transaction``, and the garbage collector
finds no connection that was never checked in. (SQLAlchemy warns about those
from inside ``__del__``, where a warning turned into an error is only
printed; the check records them and fails instead.)
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from domain.aggregate import Aggregate, Event
from service_layer.unit_of_work import AbstractUnitOfWork

SETTLE_SECONDS = 5.0
"""How long the check lets PostgreSQL catch up with a session its client just dropped."""
WAIT_SECONDS = 10.0
"""How long a test waits for the app to reach the state it set up; only a hung test waits this."""

# -- the leak check ---------------------------------------------------------------------


def unique_application_name(label: str = "fault") -> str:
    """A name for one test's connections; PostgreSQL silently cuts names after 63 bytes."""
    return f"keel-{label[:40]}-{uuid4().hex[:12]}"


def checked_out_of(engine: AsyncEngine) -> int:
    """How many connections of ``engine``'s pool are out right now."""
    pool = engine.pool
    assert isinstance(pool, QueuePool), f"no count of checked-out connections in {pool!r}"
    return pool.checkedout()


@dataclass(frozen=True)
class Watched:
    engine: AsyncEngine
    admin_dsn: str | None
    application_name: str


async def sessions_in_transaction(admin_dsn: str, application_name: str) -> list[str]:
    """``pid state: query`` of each session of ``application_name`` holding a transaction open."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        rows = await connection.fetch(
            "SELECT pid, state, left(query, 80) AS query FROM pg_stat_activity"
            " WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
            application_name,
        )
    finally:
        await connection.close()
    return [f"{row['pid']} {row['state']}: {row['query']}" for row in rows]


class LeakCheck:
    """Asserts that the watched engines left nothing behind.

    ``watch()`` an engine whose connections carry a unique
    ``application_name``, and ``await verify()`` before disposing of it: a
    disposed pool counts nothing. The ``leak_check`` fixture verifies again
    when the test ends.
    """

    def __init__(self) -> None:
        self.watched: list[Watched] = []

    def watch(self, engine: AsyncEngine, *, admin_dsn: str | None, application_name: str) -> None:
        """Check ``engine`` from now on; ``admin_dsn`` reaches the server it connects to
        (``None`` when there is none to ask, e.g. the test made it unreachable)."""
        self.watched.append(Watched(engine, admin_dsn, application_name))

    async def verify(self) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        assert [str(warning.message) for warning in caught] == [], "garbage left behind"
        for watched in self.watched:
            checked_out = checked_out_of(watched.engine)
            assert checked_out == 0, (
                f"{checked_out} connection(s) of {watched.application_name} still checked out"
            )
            if watched.admin_dsn is not None:
                left = await self._settled(watched.admin_dsn, watched.application_name)
                assert left == [], f"sessions left in a transaction: {left}"

    async def _settled(self, admin_dsn: str, application_name: str) -> list[str]:
        # A session rolled back by its client is idle at once; one whose client
        # gave up on the connection is ended by the server within moments.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        while True:
            left = await sessions_in_transaction(admin_dsn, application_name)
            if not left or loop.time() > deadline:
                return left
            await asyncio.sleep(0.05)


# -- holding a commit --------------------------------------------------------------------


class HoldBeforeCommit:
    """A commit hook that, once armed, holds the next transaction open just before COMMIT.

    The transaction has done its reads and writes (the outbox hook before it
    flushed them); the test does something to the server, then lets it go on.
    """

    def __init__(self) -> None:
        self.armed = False
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        if not self.armed:
            return
        self.armed = False
        self.reached.set()
        await self.release.wait()
