"""The version check is what stops a lost update; a child's change bumps its root's version.

Two units of work read the same account at READ COMMITTED (no lock), both
add to its balance and commit. Mapped without ``version_id_col``, the second
UPDATE overwrites the first: one credit is lost. Mapped with it, the second
UPDATE finds a newer version, the unit of work raises ``ConcurrencyError``,
and the retry applies it on fresh data: nothing is lost. The two mappings
are twins of the ledger's ``Account`` made here, on the ledger's own table.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.orm import registry

from adapters.ledger.tables import accounts
from adapters.unit_of_work import SqlAlchemyUnitOfWork
from domain.aggregate import Aggregate
from service_layer.retry import RetryPolicy, retrying
from tests.ledger.faults.harness import FaultDatabase, LedgerApp

pytestmark = pytest.mark.integration

POLICY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)
CREDITS = (10, 20)


class BalanceRow(Aggregate[UUID]):
    """An account seen as just a balance: what a careless read-modify-write touches."""

    balance: int

    def credit(self, amount: int) -> None:
        self.balance += amount


class UnversionedBalance(BalanceRow):
    """Mapped without ``version_id_col``: UPDATE ... WHERE id = ?."""


class VersionedBalance(BalanceRow):
    """Mapped like ``Account``: UPDATE ... WHERE id = ? AND version = ?."""


def map_twins() -> None:
    if inspect(VersionedBalance, raiseerr=False) is not None:
        return
    twins = registry()
    twins.map_imperatively(UnversionedBalance, accounts)
    twins.map_imperatively(VersionedBalance, accounts, version_id_col=accounts.c.version)


class Race:
    """Credits that all read the balance before any of them writes (first attempts only)."""

    def __init__(self, ledger: LedgerApp, kind: type[BalanceRow]) -> None:
        self.ledger = ledger
        self.kind = kind
        self.barrier = asyncio.Barrier(len(CREDITS))
        self.attempts = 0

    async def credit(self, account_id: str, amount: int) -> None:
        first = True

        async def once() -> None:
            nonlocal first
            self.attempts += 1
            async with SqlAlchemyUnitOfWork(self.ledger.container.db_session_factory) as uow:
                row = await uow.repository(self.kind).get(UUID(account_id))
                assert row is not None
                if first:
                    first = False
                    await asyncio.wait_for(self.barrier.wait(), 10)
                row.credit(amount)
                await uow.commit()

        await retrying(once, POLICY)

    async def run(self, account_id: str) -> None:
        await asyncio.gather(*(self.credit(account_id, amount) for amount in CREDITS))


@pytest.fixture(scope="module", autouse=True)
def _twins() -> None:
    map_twins()


async def test_the_isolation_level_under_test_is_read_committed(ledger: LedgerApp) -> None:
    async with ledger.container.db_session_factory() as session:
        level = (await session.execute(text("SHOW transaction_isolation"))).scalar_one()

    assert level == "read committed"


async def test_without_the_version_check_a_concurrent_credit_is_lost(
    ledger: LedgerApp, faults: FaultDatabase
) -> None:
    account_id = await ledger.open_account()

    await Race(ledger, UnversionedBalance).run(account_id)

    assert (await faults.account(account_id)).balance in CREDITS, "one credit overwrote the other"


async def test_with_the_version_check_no_credit_is_lost(
    ledger: LedgerApp, faults: FaultDatabase
) -> None:
    account_id = await ledger.open_account()
    before = await faults.account(account_id)
    race = Race(ledger, VersionedBalance)

    await race.run(account_id)

    after = await faults.account(account_id)
    assert after.balance == sum(CREDITS)
    assert after.version == before.version + len(CREDITS)
    assert race.attempts == len(CREDITS) + 1, "the stale writer ran once more"


async def test_a_deposit_adds_an_entry_and_bumps_the_account_version(
    ledger: LedgerApp, faults: FaultDatabase
) -> None:
    account_id = await ledger.open_account()
    before = await faults.account(account_id)

    response = await ledger.deposit(account_id, amount=25)

    assert response.status_code == 201, response.text
    after = await faults.account(account_id)
    assert after.entry_count == before.entry_count + 1
    assert after.version == before.version + 1
    read = await ledger.client.get(f"/accounts/{account_id}")
    assert read.json()["version"] == after.version
