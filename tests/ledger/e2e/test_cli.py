"""The ``keel`` command: configuration errors, ``migrate``, and a real ``serve`` process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ledger.e2e.factories import MovementBody, OpenAccountBody
from tests.support.tokens import bearer_for, new_subject

pytestmark = pytest.mark.e2e

KEEL = Path(sys.executable).with_name("keel")
START_DEADLINE_SECONDS = 60.0
STOP_DEADLINE_SECONDS = 30.0
"""Generous bounds for a loaded two-core machine; they only stop a hung test, never judge speed."""


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str


def _environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "BROKER_URL", "RETRY_ATTEMPTS"}
    }
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}"
    env.update(variables)
    return env


async def _keel(tmp_path: Path, *arguments: str, **variables: str) -> Finished:
    process = await asyncio.create_subprocess_exec(
        KEEL,
        *arguments,
        cwd=tmp_path,  # no stray .env from the repository
        env=_environment(tmp_path, **variables),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), STOP_DEADLINE_SECONDS)
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())


async def test_migrate_creates_the_schema_in_an_empty_sqlite_file(tmp_path: Path) -> None:
    finished = await _keel(tmp_path, "migrate")

    assert finished.code == 0, finished.stderr
    with sqlite3.connect(tmp_path / "keel.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "alembic_version" in tables


async def test_a_malformed_database_url_stops_with_exit_2_naming_it(tmp_path: Path) -> None:
    finished = await _keel(
        tmp_path, "migrate", DATABASE_URL="postgresql+asyncpg://app:hunter2@db:99999/app"
    )

    assert finished.code == 2
    assert finished.stderr.count("\n") == 1
    assert "DATABASE_URL" in finished.stderr
    assert "hunter2" not in finished.stderr + finished.stdout
    assert "Traceback" not in finished.stderr


async def test_a_malformed_number_setting_stops_with_exit_2_naming_it(tmp_path: Path) -> None:
    finished = await _keel(tmp_path, "serve", RETRY_ATTEMPTS="many")

    assert finished.code == 2
    assert "RETRY_ATTEMPTS" in finished.stderr
    assert "Traceback" not in finished.stderr


async def test_an_unreachable_database_stops_migrate_with_exit_1_and_no_password(
    tmp_path: Path,
) -> None:
    finished = await _keel(
        tmp_path, "migrate", DATABASE_URL="postgresql+asyncpg://app:hunter2@127.0.0.1:1/app"
    )

    assert finished.code == 1
    assert finished.stderr.startswith("keel: ")
    assert finished.stderr.count("\n") == 1
    assert "hunter2" not in finished.stderr
    assert "Traceback" not in finished.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    process: asyncio.subprocess.Process
    base_url: str


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        KEEL,
        "serve",
        "--port",
        str(port),
        cwd=tmp_path,
        env=_environment(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with (
            httpx.AsyncClient(base_url=base_url, headers=bearer_for(new_subject())) as http,
            asyncio.timeout(START_DEADLINE_SECONDS),
        ):
            while True:
                assert process.returncode is None, "keel serve exited during start-up"
                try:
                    if (await http.get("/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        yield Server(process, base_url)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_keel_serve_answers_the_api_and_stops_cleanly_on_sigterm(server: Server) -> None:
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=bearer_for(new_subject())
    ) as http:
        account = (await http.post("/accounts", json=OpenAccountBody.build())).json()
        deposited = await http.post(
            f"/accounts/{account['id']}/deposits", json=MovementBody.build(amount=1234)
        )
        fetched = await http.get(f"/accounts/{account['id']}")

    server.process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(server.process.communicate(), STOP_DEADLINE_SECONDS)

    assert deposited.status_code == 201
    assert fetched.json()["balance"] == 1234
    # A stop that was asked for and carried out is a success (see entrypoints.cli).
    assert server.process.returncode == 0
    assert "Application shutdown complete" in stderr.decode()
    assert "Traceback" not in stderr.decode()
