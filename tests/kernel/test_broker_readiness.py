"""An unreachable broker is noticed at start and by ``/ready``, never silently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters.database import DatabaseSessionManager
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.cli import EXIT_DATABASE, main
from entrypoints.http.app import create_app

pytestmark = pytest.mark.integration

NOBODY = "redis://:hunter2@127.0.0.1:1/0"
"""A broker URL nothing answers at, with a password that must never be shown."""


@pytest.mark.parametrize("command", ["serve", "consume", "relay"])
def test_a_process_whose_broker_does_not_answer_stops_naming_it(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEEL_CONTEXTS", "")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}")
    monkeypatch.setenv("BROKER_URL", NOBODY)

    assert main([command]) == EXIT_DATABASE

    error = capsys.readouterr().err
    assert "127.0.0.1:1" in error
    assert "hunter2" not in error


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    manager = DatabaseSessionManager()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", broker_url=NOBODY)
    try:
        yield bootstrap(settings, [], manager=manager)
    finally:
        await manager.close()


async def test_ready_answers_503_while_the_broker_does_not_answer(container: Container) -> None:
    transport = httpx.ASGITransport(app=create_app(container=container))
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
        response = await client.get("/ready")

    assert response.status_code == 503
    assert response.json()["code"] == "broker_unavailable"
    assert "Retry-After" in response.headers
