"""Read replicas: read-only queries go to a healthy streaming replica, else to the primary.

    router = ReplicaRouter.from_urls(
        session_manager.engine, settings.replica_urls, settings.engine_options(),
        max_lag=settings.db_replica_max_lag_seconds,
    )
    async with router:  # health checks every check_interval seconds
        async with SqlAlchemyThingUnitOfWork(router.session_factory) as uow:
            ...  # reads only

A replica is healthy when its health check (bounded by ``check_timeout``)
answers, it is in recovery (a promoted replica is no longer a copy of the
primary), and it is not too far behind: its replay position has reached the
primary's current WAL position, or else the last transaction it replayed
committed at most ``max_lag`` seconds ago (``now() - pg_last_xact_replay_timestamp()``,
measured on the replica's clock against the primary's commit time). Comparing
positions first keeps an idle primary's replica healthy: with nothing to
replay, the age of its last transaction says nothing.

:attr:`ReplicaRouter.session_factory` picks among the healthy replicas in
turn, and returns the primary's factory when there is none. A state change —
unhealthy, and why; healthy again — is logged once, not on every check.
Reads between a replica's failure and the next check fail like any query on
a lost connection; the caller's retry then gets the primary.

Read-your-writes is not promised on a replica: a request that must see its
own write reads from the primary (``session_manager.session_factory``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters import liveness
from adapters.database import create_engine_for, read_session_factory, safe_url

logger = logging.getLogger(__name__)

REPLICA_STATE = text(
    """
    SELECT pg_is_in_recovery() AS in_recovery,
           pg_last_wal_replay_lsn() AS replayed,
           EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) AS since_last_replay
    """
)
PRIMARY_POSITION = text("SELECT pg_current_wal_lsn()")


def _lsn(value: object) -> int:
    """A WAL position as a number: asyncpg decodes ``pg_lsn`` to one; text is ``16/B374D848``."""
    if isinstance(value, int):
        return value
    high, low = str(value).split("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass
class Replica:
    """One replica: its engine, session factory and the outcome of its last check."""

    name: str
    """Its URL without the password, for logs."""
    engine: AsyncEngine
    transaction_pooler: bool = False
    """Reached through PgBouncer: its reads keep their transaction (``read_session_factory``)."""
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    healthy: bool = False
    reason: str = "not checked yet"
    lag_seconds: float | None = None
    checked: bool = False

    def __post_init__(self) -> None:
        self.sessions = read_session_factory(
            self.engine, transaction_pooler=self.transaction_pooler
        )


class ReplicaRouter:
    """Hands out a session factory for read-only work: a healthy replica's, or the primary's."""

    def __init__(
        self,
        primary: AsyncEngine,
        replicas: Sequence[Replica],
        *,
        max_lag: float = 5.0,
        check_interval: float = 1.0,
        check_timeout: float = 1.0,
        transaction_pooler: bool = False,
    ) -> None:
        self.primary = primary
        self.primary_sessions = read_session_factory(primary, transaction_pooler=transaction_pooler)
        self.replicas = list(replicas)
        self.max_lag = max_lag
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self._turn = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_urls(
        cls,
        primary: AsyncEngine,
        urls: Sequence[str],
        engine_options: dict[str, Any] | None = None,
        *,
        ping_after_idle: float = liveness.PING_AFTER_IDLE_SECONDS,
        transaction_pooler: bool = False,
        **options: Any,
    ) -> ReplicaRouter:
        """A router with one engine per replica URL, made with ``engine_options``."""
        replicas = [
            Replica(
                safe_url(url),
                create_engine_for(url, engine_options or {}, ping_after_idle=ping_after_idle),
                transaction_pooler=transaction_pooler,
            )
            for url in urls
        ]
        return cls(primary, replicas, transaction_pooler=transaction_pooler, **options)

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        """The factory for the next read-only unit of work; the primary's when no replica is fit."""
        healthy = [replica for replica in self.replicas if replica.healthy]
        if not healthy:
            return self.primary_sessions
        self._turn = (self._turn + 1) % len(healthy)
        return healthy[self._turn].sessions

    async def check(self) -> None:
        """Check every replica now, and log each one whose state changed."""
        position = await self._primary_position()
        await asyncio.gather(*(self._check(replica, position) for replica in self.replicas))

    async def _primary_position(self) -> int | None:
        try:
            async with asyncio.timeout(self.check_timeout), self.primary.connect() as connection:
                value = (await connection.execute(PRIMARY_POSITION)).scalar_one()
        except Exception as exc:
            # Positions cannot be compared; replicas are then judged by time alone.
            logger.debug("primary WAL position unavailable", extra={"cause": type(exc).__name__})
            return None
        return _lsn(value)

    async def _check(self, replica: Replica, primary_position: int | None) -> None:
        try:
            async with asyncio.timeout(self.check_timeout), replica.engine.connect() as connection:
                row = (await connection.execute(REPLICA_STATE)).one()
        except Exception as exc:
            # The type only: driver messages can name hosts and users.
            self._set(replica, False, f"unreachable ({type(exc).__name__})", None)
            return
        if not row.in_recovery:
            self._set(replica, False, "not in recovery (promoted, or not a replica)", None)
            return
        caught_up = (
            primary_position is not None
            and row.replayed is not None
            and _lsn(row.replayed) >= primary_position
        )
        if caught_up:
            lag = 0.0
        elif row.since_last_replay is None:
            self._set(replica, False, "behind the primary, no transaction replayed yet", None)
            return
        else:
            lag = float(row.since_last_replay)
        if lag > self.max_lag:
            self._set(replica, False, f"{lag:.1f} s behind (bound {self.max_lag:g} s)", lag)
        else:
            self._set(replica, True, "healthy", lag)

    def _set(self, replica: Replica, healthy: bool, reason: str, lag: float | None) -> None:
        changed = not replica.checked or healthy != replica.healthy
        replica.healthy, replica.reason, replica.lag_seconds = healthy, reason, lag
        replica.checked = True
        if not changed:
            return
        if healthy:
            logger.info("replica healthy; reading from it", extra={"replica": replica.name})
        else:
            logger.warning(
                "replica not used; reading from the primary instead",
                extra={"replica": replica.name, "reason": reason},
            )

    async def run(self) -> None:
        """Check every ``check_interval`` seconds until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self.check_interval)

    async def start(self) -> None:
        """First check now (so reads go to replicas from the start), then in the background."""
        if self._task is not None:
            return
        await self.check()
        self._task = asyncio.create_task(self.run())

    async def close(self) -> None:
        """Stop checking and dispose of the replica engines (the primary's is not ours)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for replica in self.replicas:
            await replica.engine.dispose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
