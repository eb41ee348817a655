"""SIGTERM to a real ``keel serve`` under load (issue 5, scenario 12).

A ``keel serve`` process on PostgreSQL serves deposits and transfers from
several clients at once, each over connections of its own, and gets SIGTERM
in the middle. Requests in flight then finish, and the others fail cleanly:
the connection is refused or closed without an answer. What must hold:

- no 2xx for work that was not committed: every answered deposit and
  transfer is in the database;
- nothing half-applied: each transfer has both its entries, and every
  balance equals the sum of its account's entries;
- the process exits 0, and the engine was disposed: PostgreSQL shows no
  session of the process's ``application_name`` left over.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.faults.harness import unique_application_name
from tests.ledger.e2e.factories import MovementBody, OpenAccountBody, TransferBody
from tests.ledger.faults.ledger_under_test import sessions_of
from tests.messaging.support import wait_until
from tests.support import postgres
from tests.support.tokens import bearer_for, new_subject

CLIENT = new_subject()
"""The one principal behind every request of this file: it opens the accounts it moves."""

pytestmark = pytest.mark.e2e

KEEL = Path(sys.executable).with_name("keel")
START_DEADLINE = 60.0
STOP_DEADLINE = 30.0
"""Generous bounds for a loaded two-core machine; they only stop a hung test."""
CLIENTS = 6
ACCOUNTS = 4
OPENING_BALANCE = 10_000
ANSWERS_BEFORE_SIGTERM = 40
SIGNED = {"deposit": 1, "transfer_in": 1, "withdrawal": -1, "transfer_out": -1}


@dataclass
class Server:
    process: asyncio.subprocess.Process
    base_url: str
    dsn: str
    """Where the test reads the database directly, past the server."""
    application_name: str
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def server(postgres_admin_dsn: str, tmp_path: Path) -> AsyncIterator[Server]:
    database = await postgres.create_database(postgres_admin_dsn, prefix="keel_fault_sigterm")
    name = unique_application_name("sigterm")
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "DB_", "BROKER_", "STREAM_", "SERVE_"))
    }
    env |= {
        "DATABASE_URL": postgres.sqlalchemy_url(postgres_admin_dsn, database),
        "DB_APPLICATION_NAME": name,
    }
    log = tmp_path / "keel.log"
    with log.open("wb") as output:  # a file, not a pipe nobody drains while the load runs
        process = await asyncio.create_subprocess_exec(
            KEEL, "serve", "--port", str(port), cwd=tmp_path, env=env, stdout=output, stderr=output
        )
    base_url = f"http://127.0.0.1:{port}"
    dsn = make_url(postgres_admin_dsn).set(database=database).render_as_string(False)
    try:
        async with (
            httpx.AsyncClient(base_url=base_url, headers=bearer_for(CLIENT)) as http,
            asyncio.timeout(START_DEADLINE),
        ):
            while True:
                assert process.returncode is None, log.read_text()
                try:
                    if (await http.get("/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        yield Server(process, base_url, dsn, name, log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await postgres.drop_database(postgres_admin_dsn, database)


@dataclass(frozen=True)
class Answer:
    path: str
    body: dict[str, Any]
    status: int | None
    """``None``: no answer at all (refused, or closed before the response)."""


async def open_funded_accounts(base_url: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, headers=bearer_for(CLIENT)) as http:
        accounts = []
        for _ in range(ACCOUNTS):
            opened = await http.post("/accounts", json=OpenAccountBody.build())
            account_id = opened.json()["id"]
            funded = await http.post(
                f"/accounts/{account_id}/deposits", json=MovementBody.build(amount=OPENING_BALANCE)
            )
            assert funded.status_code == 201, funded.text
            accounts.append(account_id)
        return accounts


async def client(base_url: str, accounts: list[str], seed: int, answers: list[Answer]) -> None:
    """Deposit and transfer until the server stops answering; keep every outcome."""
    rng = random.Random(seed)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=STOP_DEADLINE, headers=bearer_for(CLIENT)
    ) as http:
        while True:
            if rng.random() < 0.3:
                path = f"/accounts/{rng.choice(accounts)}/deposits"
                body = MovementBody.build(amount=rng.randint(1, 100))
            else:
                source, target = rng.sample(accounts, 2)
                path = "/transfers"
                body = TransferBody.build(
                    source_id=source, target_id=target, amount=rng.randint(1, 300)
                )
            try:
                response = await http.post(path, json=body)
            except httpx.TransportError:
                answers.append(Answer(path, body, None))
                return
            answers.append(Answer(path, body, response.status_code))


async def test_sigterm_under_load_finishes_cleanly_and_keeps_every_2xx(server: Server) -> None:
    accounts = await open_funded_accounts(server.base_url)
    answers: list[Answer] = []
    clients = [
        asyncio.create_task(client(server.base_url, accounts, seed, answers))
        for seed in range(CLIENTS)
    ]
    try:
        await wait_until(lambda: len(answers) >= ANSWERS_BEFORE_SIGTERM, "answers under load")
        server.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*clients), STOP_DEADLINE)
        await asyncio.wait_for(server.process.wait(), STOP_DEADLINE)
    finally:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)

    log = server.log.read_text(errors="replace")
    assert server.process.returncode == 0, log[-3000:]
    assert "Traceback" not in log
    assert "Application shutdown complete" in log  # the lifespan closed the engine
    assert {answer.status for answer in answers} <= {200, 201, 409, None}, log[-3000:]
    await wait_until(
        lambda: no_sessions(server), "the server's connections gone from pg_stat_activity"
    )
    await assert_every_2xx_kept_and_nothing_half_applied(server.dsn, answers)


async def no_sessions(server: Server) -> bool:
    admin = make_url(server.dsn).set(database="postgres").render_as_string(False)
    return await sessions_of(admin, server.application_name) == []


async def assert_every_2xx_kept_and_nothing_half_applied(dsn: str, answers: list[Answer]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        entries = await connection.fetch(
            "SELECT account_id, kind::text AS kind, amount, reference, transfer_id"
            " FROM ledger_entries"
        )
        transfers = await connection.fetch("SELECT id, reference FROM ledger_transfers")
        balances = await connection.fetch("SELECT id, balance, entry_count FROM ledger_accounts")
    finally:
        await connection.close()
    kept_references = {row["reference"] for row in entries} | {
        row["reference"] for row in transfers
    }
    answered = {str(a.body["reference"]) for a in answers if a.status in {200, 201}}
    assert answered <= kept_references
    legs: dict[UUID, int] = {}
    for row in entries:
        if row["transfer_id"] is not None:
            legs[row["transfer_id"]] = legs.get(row["transfer_id"], 0) + 1
    assert all(legs.get(row["id"]) == 2 for row in transfers)
    assert set(legs) <= {row["id"] for row in transfers}
    for account in balances:
        own = [row for row in entries if row["account_id"] == account["id"]]
        assert account["balance"] == sum(SIGNED[row["kind"]] * row["amount"] for row in own)
        assert account["entry_count"] == len(own)
