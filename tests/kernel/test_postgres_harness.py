"""The test harness's PostgreSQL fallback: a throwaway cluster when no server answers."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest

from tests.support import postgres

pytestmark = pytest.mark.integration

CLOSED_PORT_DSN = "postgresql://postgres:hidden-pw@127.0.0.1:1/postgres"


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TEST_POSTGRES_URL", CLOSED_PORT_DSN)
    monkeypatch.delenv(postgres.CLUSTER_FLAG, raising=False)


@pytest.fixture
def binaries() -> Path:
    """The installed PostgreSQL binaries; without them these tests skip — except under CI."""
    found = postgres.find_binaries()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL binaries on this machine (CI never skips these tests)")
        pytest.skip("no PostgreSQL binaries on this machine")
    return found


async def fsync_setting(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        setting: str = await connection.fetchval("select current_setting('fsync')")
        return setting
    finally:
        await connection.close()


@pytest.mark.usefixtures("no_server", "binaries")
async def test_a_throwaway_cluster_serves_when_no_server_answers() -> None:
    async with postgres.admin_server() as dsn:
        # fsync=off is how the throwaway cluster is started; no shared server runs so.
        assert await fsync_setting(dsn) == "off"


@pytest.mark.usefixtures("binaries")
async def test_a_stopped_throwaway_cluster_leaves_nothing_behind() -> None:
    cluster = await postgres.start_throwaway_cluster()
    assert await postgres.server_answers(cluster.dsn)

    await cluster.stop()

    assert not cluster.directory.exists()
    assert not await postgres.server_answers(cluster.dsn)


@pytest.mark.usefixtures("no_server")
async def test_without_server_or_binaries_the_error_names_the_dsn_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "find_binaries", lambda: None)

    with pytest.raises(postgres.PostgresUnavailable) as raised:
        async with postgres.admin_server():
            pass

    message = str(raised.value)
    assert (
        "no PostgreSQL server answers at postgresql://postgres:***@127.0.0.1:1/postgres" in message
    )
    assert "no PostgreSQL binaries found" in message
    assert "hidden-pw" not in message
