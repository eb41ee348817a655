"""More units of work than connections: the extra one is refused in time, not hung.

With ``DB_POOL_SIZE=2`` and ``DB_MAX_OVERFLOW=0``, two deposits hold both
connections (a commit hook parks them until the test lets go); a third
waits ``DB_POOL_TIMEOUT`` for a connection, then gets a 503 problem with a
``Retry-After``. Once the two finish, nothing is left checked out and the
next request is served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from domain.aggregate import Aggregate, Event
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.faults.harness import checked_out_of
from tests.ledger.e2e.api import assert_problem
from tests.ledger.faults.conftest import MakeLedger
from tests.ledger.faults.harness import FaultDatabase

pytestmark = pytest.mark.e2e

POOL_SIZE = 2
POOL_TIMEOUT_SECONDS = 0.5


class Turnstile:
    """A commit hook that parks units of work, connection in hand, until released."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.parked = 0
        self.all_parked = asyncio.Event()
        self.released = asyncio.Event()

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        self.parked += 1
        if self.parked == self.expected:
            self.all_parked.set()
        async with asyncio.timeout(10):
            await self.released.wait()


async def test_a_unit_of_work_beyond_the_pool_answers_503_with_retry_after(
    make_ledger: MakeLedger, faults: FaultDatabase
) -> None:
    ledger = await make_ledger(
        db_pool_size=POOL_SIZE, db_max_overflow=0, db_pool_timeout=POOL_TIMEOUT_SECONDS
    )
    accounts = [await ledger.open_account() for _ in range(POOL_SIZE + 1)]
    turnstile = Turnstile(expected=POOL_SIZE)
    ledger.hooks.append(turnstile)
    holders = [
        asyncio.create_task(ledger.deposit(account, amount=10, reference=f"held-{account}"))
        for account in accounts[:POOL_SIZE]
    ]
    async with asyncio.timeout(10):
        await turnstile.all_parked.wait()

    extra = await ledger.deposit(accounts[-1], amount=10, reference=f"extra-{accounts[-1]}")

    assert_problem(extra, 503, "database_unavailable")
    assert extra.headers["Retry-After"].isdigit()
    assert await faults.entries_with(f"extra-{accounts[-1]}") == 0
    turnstile.released.set()
    assert [(await holder).status_code for holder in holders] == [201] * POOL_SIZE


async def test_after_the_pool_ran_dry_nothing_is_left_checked_out_and_requests_are_served(
    make_ledger: MakeLedger,
) -> None:
    ledger = await make_ledger(
        db_pool_size=POOL_SIZE, db_max_overflow=0, db_pool_timeout=POOL_TIMEOUT_SECONDS
    )
    accounts = [await ledger.open_account() for _ in range(POOL_SIZE + 1)]
    turnstile = Turnstile(expected=POOL_SIZE)
    ledger.hooks.append(turnstile)
    holders = [
        asyncio.create_task(ledger.deposit(account, amount=10)) for account in accounts[:POOL_SIZE]
    ]
    async with asyncio.timeout(10):
        await turnstile.all_parked.wait()
    refused = await ledger.deposit(accounts[-1], amount=10)
    assert refused.status_code == 503
    turnstile.released.set()
    await asyncio.gather(*holders)

    assert checked_out_of(ledger.engine) == 0
    served = await asyncio.gather(*(ledger.deposit(account, amount=1) for account in accounts))
    assert [response.status_code for response in served] == [201] * len(accounts)
    assert [await ledger.balance(account) for account in accounts] == [11, 11, 1]
