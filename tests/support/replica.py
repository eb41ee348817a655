"""A throwaway primary with a streaming replica, for the read-replica tests.

The primary is a :class:`~tests.support.postgres.ThrowawayCluster`; the
replica is a copy taken with ``pg_basebackup -R`` (which writes the
``primary_conninfo`` and ``standby.signal`` that make it follow the primary)
and started on a port of its own. ``initdb --auth trust`` already allows
replication connections from 127.0.0.1, and PostgreSQL's defaults
(``wal_level=replica``, ``hot_standby=on``) do the rest: a few seconds in all.
Both run as the ``postgres`` user when the tests run as root.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tests.support.postgres import ThrowawayCluster, start_throwaway_cluster


@dataclass
class StandbyCluster(ThrowawayCluster):
    """A replica of ``primary``: a base backup of it, started in standby mode."""

    primary_port: int = 0

    @classmethod
    def of(cls, primary: ThrowawayCluster) -> StandbyCluster:
        prepared = ThrowawayCluster.prepare(primary.binaries)
        return cls(
            binaries=prepared.binaries,
            directory=prepared.directory,
            port=prepared.port,
            run_as=prepared.run_as,
            primary_port=primary.port,
        )

    async def start(self) -> None:
        await self._run(
            "pg_basebackup",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.primary_port),
            "--username",
            "postgres",
            "--pgdata",
            str(self.data),
            "--write-recovery-conf",
            "--wal-method",
            "stream",
            "--checkpoint",
            "fast",
            "--no-sync",
        )
        await self.resume()

    async def resume(self) -> None:
        """Start (again) the server on its data directory."""
        await self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data),
            "--wait",
            "--timeout",
            "60",
            "--log",
            str(self.directory / "server.log"),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.directory}",
        )

    async def halt(self) -> None:
        """Stop the server as a crash would (``immediate``); the data stays for :meth:`resume`."""
        await self._run("pg_ctl", "stop", "--pgdata", str(self.data), "--mode", "immediate")


@dataclass(frozen=True)
class Pair:
    primary: ThrowawayCluster
    replica: StandbyCluster


@contextlib.asynccontextmanager
async def primary_with_replica() -> AsyncIterator[Pair]:
    """A started primary and its started replica; both stopped and removed afterwards."""
    primary = await start_throwaway_cluster()
    try:
        replica = StandbyCluster.of(primary)
        try:
            await replica.start()
            yield Pair(primary, replica)
        finally:
            await replica.stop()
    finally:
        await primary.stop()
