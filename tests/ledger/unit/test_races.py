"""Concurrent requests on the fake: lost races are retried, and only then surface.

The fake never yields to the event loop by itself, so ``asyncio.gather``
would run requests one after the other. ``HesitantUnitOfWork`` gives way just
before committing, as a database round trip does, so two requests really
overlap: both read, both decide, then both try to commit. Each test asserts
that a commit was refused (``conflicts``) and retried: without the overlap
the outcomes would look the same, but nothing would have raced.
"""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from adapters.ledger.unit_of_work import InMemoryLedgerUnitOfWork
from adapters.repository import InMemoryStore
from domain.errors import ConcurrencyError
from domain.ledger.commands import Deposit, OpenAccount, TransferFunds, Withdraw
from domain.ledger.errors import ReferenceReused
from service_layer.ledger import handlers, reads
from service_layer.retry import RetryPolicy
from tests.ledger.factories import (
    OWNER,
    MovementArgs,
    OpenAccountArgs,
    TransferArgs,
    open_funded_account,
)

pytestmark = pytest.mark.unit

QUICK = RetryPolicy(attempts=5, base_delay=0, max_delay=0)


class HesitantUnitOfWork(InMemoryLedgerUnitOfWork):
    async def _commit(self) -> None:
        await asyncio.sleep(0)
        await super()._commit()


class AlwaysLosingUnitOfWork(InMemoryLedgerUnitOfWork):
    """Every commit finds that another writer got there first."""

    attempts = 0

    async def _commit(self) -> None:
        self.attempts += 1
        raise ConcurrencyError("another writer changed the account")


async def test_twin_deposits_with_a_new_reference_create_once_and_replay_once(
    store: InMemoryStore,
) -> None:
    account = await open_funded_account(InMemoryLedgerUnitOfWork(store))
    args = MovementArgs.build(account_id=account.id)

    uows = [HesitantUnitOfWork(store) for _ in range(2)]

    outcomes = await asyncio.gather(
        *(handlers.deposit(Deposit(**args), uow, policy=QUICK) for uow in uows)
    )

    assert sum(uow.conflicts for uow in uows) == 1
    assert sorted(outcome.created for outcome in outcomes) == [False, True]
    assert outcomes[0].value == outcomes[1].value
    balance = (await reads.get_account(InMemoryLedgerUnitOfWork(store), account.id, OWNER)).balance
    assert balance == args["amount"]


async def test_twin_openings_of_one_account_id_answer_the_same_account(
    store: InMemoryStore,
) -> None:
    args = OpenAccountArgs.build(account_id=uuid4())

    uows = [HesitantUnitOfWork(store) for _ in range(2)]

    opened = await asyncio.gather(
        *(handlers.open_account(OpenAccount(**args), uow, policy=QUICK) for uow in uows)
    )

    assert sum(uow.conflicts for uow in uows) == 1
    assert opened[0] == opened[1]


async def test_a_transfer_reference_raced_to_other_targets_is_refused_as_reused(
    store: InMemoryStore,
) -> None:
    accounts = [await open_funded_account(InMemoryLedgerUnitOfWork(store), 100) for _ in range(3)]
    args = TransferArgs.build()
    uows = [HesitantUnitOfWork(store) for _ in range(2)]

    results = await asyncio.gather(
        handlers.transfer(
            TransferFunds(source_id=accounts[0].id, target_id=accounts[1].id, **args),
            uows[0],
            policy=QUICK,
        ),
        handlers.transfer(
            TransferFunds(source_id=accounts[0].id, target_id=accounts[2].id, **args),
            uows[1],
            policy=QUICK,
        ),
        return_exceptions=True,
    )

    assert sum(uow.conflicts for uow in uows) == 1
    assert sorted(type(result).__name__ for result in results) == ["Outcome", "ReferenceReused"]
    assert any(isinstance(result, ReferenceReused) for result in results)


async def test_a_conflict_that_outlasts_the_retries_surfaces_as_concurrent_update(
    store: InMemoryStore,
) -> None:
    account = await open_funded_account(InMemoryLedgerUnitOfWork(store), 100)
    loser = AlwaysLosingUnitOfWork(store)

    with pytest.raises(ConcurrencyError) as caught:
        await handlers.withdraw(
            Withdraw(account_id=account.id, **MovementArgs.build()),
            loser,
            policy=RetryPolicy(attempts=3, base_delay=0, max_delay=0),
        )

    assert (caught.value.code, loser.attempts, loser.conflicts) == ("concurrent_update", 3, 3)
    assert await reads.get_account(InMemoryLedgerUnitOfWork(store), account.id, OWNER) == account
