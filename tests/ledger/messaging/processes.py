"""Real ``keel consume`` / ``keel relay`` processes for the crash and shutdown tests.

Each runs with the test's settings in the environment, its output in a log
file (a pipe nobody reads would fill up and stall it), and is killed on the
way out of :func:`keel` if it is still running, whatever the test did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import asyncpg

from adapters.settings import Settings

KEEL = Path(sys.executable).with_name("keel")
STOP_DEADLINE_SECONDS = 30.0
"""Only stops a hung test; never a judgement on speed."""
PROCESS_CLAIM_IDLE_MS = 1000
"""Longer than any handler run on a loaded machine, short enough for a quick restart."""

_numbers = count(1)


@dataclass
class Keel:
    process: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait(self) -> int:
        async with asyncio.timeout(STOP_DEADLINE_SECONDS):
            return await self.process.wait()


def environment(settings: Settings) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DATABASE_", "DB_", "BROKER_", "STREAM_", "RELAY_", "SERVE_"))
    }
    assert settings.broker_url is not None
    env.update(
        DATABASE_URL=settings.database_url,
        BROKER_URL=settings.broker_url,
        STREAM_PREFIX=settings.stream_prefix,
        BROKER_CLAIM_IDLE_MS=str(PROCESS_CLAIM_IDLE_MS),
        BROKER_MAX_DELIVERIES=str(settings.broker_max_deliveries),
    )
    return env


@contextlib.asynccontextmanager
async def keel(
    command: str, settings: Settings, directory: Path, *arguments: str
) -> AsyncIterator[Keel]:
    """``keel <command> <arguments>`` running while inside the block; SIGKILLed on the way out
    if alive (a worker's children with it: it leads a process group of its own)."""
    log = directory / f"keel-{command}-{next(_numbers)}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            KEEL,
            command,
            *arguments,
            cwd=directory,  # no stray .env from the repository
            env=environment(settings),
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield Keel(process, log)
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


async def backends_waiting_for_a_lock(dsn: str) -> int:
    """Sessions of this database blocked on a lock: a process stopped mid-transaction."""
    connection = await asyncpg.connect(dsn)
    try:
        waiting: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    finally:
        await connection.close()
    return waiting


@contextlib.asynccontextmanager
async def holding(dsn: str, statement: str, *arguments: object) -> AsyncIterator[None]:
    """Run ``statement`` (a lock) in a transaction that stays open while inside the block."""
    connection = await asyncpg.connect(dsn)
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute(statement, *arguments)
        yield
    finally:
        await transaction.rollback()
        await connection.close()
