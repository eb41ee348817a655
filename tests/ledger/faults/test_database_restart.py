"""PostgreSQL restarted under a running Keel (issue 5, scenario 3).

The server is a throwaway cluster of this module's own, restarted with
``pg_ctl restart --mode fast`` as an operator (or a failover) would: every
session is ended, the data stays. Keel itself is never restarted.

- Between requests: the pool's connections are all dead, and the next
  request must not notice (``adapters.liveness`` replaces them at checkout).
- In the middle of a unit of work: that request cannot succeed. It must get
  a retryable 503 problem with ``Retry-After``, keep nothing, and leave no
  broken session behind (no ``PendingRollbackError`` for anyone later).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.faults.harness import HoldBeforeCommit, LeakCheck, unique_application_name
from tests.ledger.e2e.api import assert_problem, balance_of, deposit, open_account
from tests.ledger.e2e.factories import MovementBody
from tests.ledger.faults.ledger_under_test import (
    Ledger,
    migrated_database,
    running_ledger,
    sessions_of,
)
from tests.messaging.support import wait_until
from tests.support import postgres

pytestmark = pytest.mark.e2e

DEADLINE = 15.0
"""How long a step may take before the test is declared hung; never a judgement on speed."""


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[postgres.ThrowawayCluster]:
    try:
        started = await postgres.start_throwaway_cluster()
    except postgres.PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI never skips PostgreSQL tests)")
        pytest.skip(str(exc))
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
def hold() -> HoldBeforeCommit:
    return HoldBeforeCommit()


@pytest.fixture
async def ledger(
    cluster: postgres.ThrowawayCluster, hold: HoldBeforeCommit, leak_check: LeakCheck
) -> AsyncIterator[Ledger]:
    name = unique_application_name("restart")
    async with migrated_database(cluster.dsn, "keel_fault_restart") as database:
        url = postgres.sqlalchemy_url(cluster.dsn, database)
        async with running_ledger(url, name, hooks=[hold]) as running:
            leak_check.watch(running.engine, admin_dsn=cluster.dsn, application_name=name)
            yield running
            await leak_check.verify()
        assert await sessions_of(cluster.dsn, name) == []  # the engine was disposed


async def test_the_first_request_after_a_restart_succeeds(
    ledger: Ledger, cluster: postgres.ThrowawayCluster
) -> None:
    account = await open_account(ledger.http)

    await cluster.restart()
    response = await deposit(ledger.http, account["id"], amount=250)

    assert response.status_code == 201, response.text
    assert await balance_of(ledger.http, account["id"]) == 250


async def test_a_restart_inside_a_unit_of_work_answers_a_retryable_503(
    ledger: Ledger, cluster: postgres.ThrowawayCluster, hold: HoldBeforeCommit
) -> None:
    account = await open_account(ledger.http)
    hold.armed = True
    body = MovementBody.build(amount=700)
    request = asyncio.create_task(
        ledger.http.post(f"/accounts/{account['id']}/deposits", json=body)
    )
    await asyncio.wait_for(hold.reached.wait(), DEADLINE)

    await cluster.restart()
    hold.release.set()
    response = await asyncio.wait_for(request, DEADLINE)

    assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"].isdigit()


async def test_a_request_cut_off_by_a_restart_keeps_nothing_and_can_be_sent_again(
    ledger: Ledger, cluster: postgres.ThrowawayCluster, hold: HoldBeforeCommit
) -> None:
    account = await open_account(ledger.http)
    hold.armed = True
    body = MovementBody.build(amount=700)
    request = asyncio.create_task(
        ledger.http.post(f"/accounts/{account['id']}/deposits", json=body)
    )
    await asyncio.wait_for(hold.reached.wait(), DEADLINE)
    await cluster.restart()
    hold.release.set()
    assert (await asyncio.wait_for(request, DEADLINE)).status_code == 503
    assert await balance_of(ledger.http, account["id"]) == 0

    again = await ledger.http.post(f"/accounts/{account['id']}/deposits", json=body)

    assert again.status_code == 201, again.text
    assert await balance_of(ledger.http, account["id"]) == 700


async def test_requests_racing_a_restart_get_a_2xx_or_a_503_and_every_2xx_was_kept(
    ledger: Ledger, cluster: postgres.ThrowawayCluster
) -> None:
    account = await open_account(ledger.http)
    path = f"/accounts/{account['id']}/deposits"
    answered: list[tuple[dict[str, Any], httpx.Response]] = []
    restarted = asyncio.Event()
    after_restart: list[int] = []
    done = asyncio.Event()

    async def keep_depositing() -> None:
        while not done.is_set():
            body = MovementBody.build()
            response = await ledger.http.post(path, json=body)
            answered.append((body, response))
            if restarted.is_set() and response.status_code == 201:
                after_restart.append(response.status_code)
            await asyncio.sleep(0.01)

    senders = [asyncio.create_task(keep_depositing()) for _ in range(4)]
    try:
        await wait_until(lambda: len(answered) >= 8, "deposits before the restart")
        await cluster.restart()
        restarted.set()
        await wait_until(lambda: len(after_restart) >= 8, "deposits after the restart")
    finally:
        done.set()
        await asyncio.gather(*senders)

    assert {response.status_code for _, response in answered} <= {201, 503}, [
        response.text for _, response in answered if response.status_code not in {201, 503}
    ]
    confirmed = {
        str(body["reference"]) for body, response in answered if response.status_code == 201
    }
    entries = await ledger.http.get(path.replace("deposits", "entries"), params={"limit": 500})
    kept = entries.json()["items"]
    assert confirmed <= {entry["reference"] for entry in kept}
    assert await balance_of(ledger.http, account["id"]) == sum(entry["amount"] for entry in kept)
