"""Several ``keel migrate`` at once on a fresh database: they take turns, and all succeed.

Separate processes, as in production: Alembic's ``context`` and ``op`` are
process-wide, so upgrades inside one process could not interleave anyway.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.support import postgres

pytestmark = pytest.mark.integration

CONCURRENT_UPGRADES = 3
DEADLINE_SECONDS = 90.0
"""Only stops a hung test; three upgrades take a few seconds on a loaded machine."""

UPGRADE = "import sys; from adapters.migrate import upgrade_to_head; upgrade_to_head(sys.argv[1])"


async def upgrade_in_a_process(url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        UPGRADE,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_concurrent_upgrades_of_a_fresh_database_all_succeed(
    postgres_admin_dsn: str,
) -> None:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_migrate_race")
    url = postgres.sqlalchemy_url(postgres_admin_dsn, name)
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            outcomes = await asyncio.gather(
                *(upgrade_in_a_process(url) for _ in range(CONCURRENT_UPGRADES))
            )
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)

    failures = [output for code, output in outcomes if code != 0]
    assert failures == []
