"""Deposits and withdrawals, their replays and refusals, on the in-memory unit of work."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from adapters.ledger.unit_of_work import InMemoryLedgerUnitOfWork
from adapters.repository import InMemoryRepository
from domain.ledger.commands import Deposit, Withdraw
from domain.ledger.errors import (
    AccountNotFound,
    InsufficientFunds,
    InvalidAmount,
    InvalidReference,
    ReferenceReused,
)
from domain.ledger.events import Deposited, Withdrawn
from domain.ledger.refusal import Refusal
from service_layer.ledger import handlers, reads
from tests.ledger.factories import OWNER, MovementArgs, open_funded_account

pytestmark = pytest.mark.unit


async def test_a_deposit_credits_the_account(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow)

    outcome = await handlers.deposit(
        Deposit(account_id=account.id, **MovementArgs.build(amount=250)), uow
    )

    assert outcome.created
    assert (outcome.value.kind, outcome.value.amount, outcome.value.balance_after) == (
        "deposit",
        250,
        250,
    )
    assert (outcome.value.account_id, outcome.value.transfer_id) == (account.id, None)
    assert (await reads.get_account(uow, account.id, OWNER)).balance == 250


async def test_a_deposit_never_looks_for_an_earlier_refusal(
    uow: InMemoryLedgerUnitOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await open_funded_account(uow)
    listed: list[type[Any]] = []
    original = InMemoryRepository.list

    async def recorded(self: InMemoryRepository[Any, Any], *args: Any, **kwargs: Any) -> Any:
        listed.append(self.kind)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(InMemoryRepository, "list", recorded)

    await handlers.deposit(Deposit(account_id=account.id, **MovementArgs.build()), uow)

    # Only want of funds is kept, and a deposit never wants funds: a lookup is a wasted statement.
    assert Refusal not in listed


async def test_a_deposit_bumps_the_account_version(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow)

    await handlers.deposit(Deposit(account_id=account.id, **MovementArgs.build()), uow)

    assert (await reads.get_account(uow, account.id, OWNER)).version == account.version + 1


async def test_a_deposit_raises_deposited(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow)

    outcome = await handlers.deposit(Deposit(account_id=account.id, **MovementArgs.build()), uow)

    events = list(uow.collect_new_events())
    assert [type(event) for event in events] == [Deposited]
    assert isinstance(events[0], Deposited)
    assert events[0].entry_id == outcome.value.id


async def test_a_replayed_deposit_answers_the_first_entry_and_changes_nothing(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    account = await open_funded_account(uow)
    args = MovementArgs.build()
    first = await handlers.deposit(Deposit(account_id=account.id, **args), uow)
    before = await reads.get_account(uow, account.id, OWNER)

    replay = await handlers.deposit(Deposit(account_id=account.id, **args), uow)

    assert (replay.value, replay.created) == (first.value, False)
    assert await reads.get_account(uow, account.id, OWNER) == before


async def test_a_deposit_reusing_a_reference_with_another_amount_is_refused(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    account = await open_funded_account(uow)
    args = MovementArgs.build(amount=10)
    await handlers.deposit(Deposit(account_id=account.id, **args), uow)

    with pytest.raises(ReferenceReused):
        await handlers.deposit(Deposit(account_id=account.id, **{**args, "amount": 11}), uow)


async def test_a_reference_is_unique_per_kind_and_account_only(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    first, second = await open_funded_account(uow, 100), await open_funded_account(uow, 100)
    args = MovementArgs.build(amount=10)
    await handlers.deposit(Deposit(account_id=first.id, **args), uow)

    outcomes = [
        await handlers.withdraw(Withdraw(account_id=first.id, **args), uow),
        await handlers.deposit(Deposit(account_id=second.id, **args), uow),
    ]

    assert all(outcome.created for outcome in outcomes)


async def test_a_deposit_to_an_unknown_account_is_account_not_found(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    with pytest.raises(AccountNotFound):
        await handlers.deposit(Deposit(account_id=uuid4(), **MovementArgs.build()), uow)


async def test_a_withdrawal_debits_the_account(uow: InMemoryLedgerUnitOfWork) -> None:
    account = await open_funded_account(uow, 100)

    outcome = await handlers.withdraw(
        Withdraw(account_id=account.id, **MovementArgs.build(amount=40)), uow
    )

    assert (outcome.created, outcome.value.kind, outcome.value.balance_after) == (
        True,
        "withdrawal",
        60,
    )
    assert isinstance(list(uow.collect_new_events())[-1], Withdrawn)


async def test_a_withdrawal_beyond_the_balance_is_refused_and_moves_nothing(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    account = await open_funded_account(uow, 100)

    with pytest.raises(InsufficientFunds):
        await handlers.withdraw(
            Withdraw(account_id=account.id, **MovementArgs.build(amount=101)), uow
        )

    assert await reads.get_account(uow, account.id, OWNER) == account
    assert len((await reads.list_entries(uow, account.id, OWNER)).items) == 1


async def test_a_refused_withdrawal_replayed_after_funds_arrived_answers_the_same_refusal(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    account = await open_funded_account(uow, 100)
    args = MovementArgs.build(amount=150)
    with pytest.raises(InsufficientFunds) as first:
        await handlers.withdraw(Withdraw(account_id=account.id, **args), uow)
    await handlers.deposit(Deposit(account_id=account.id, **MovementArgs.build(amount=50)), uow)

    with pytest.raises(InsufficientFunds) as replay:
        await handlers.withdraw(Withdraw(account_id=account.id, **args), uow)

    assert replay.value.detail == first.value.detail
    assert (await reads.get_account(uow, account.id, OWNER)).balance == 150


async def test_the_reference_of_a_refused_withdrawal_is_reused_by_another_amount(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    account = await open_funded_account(uow, 100)
    args = MovementArgs.build(amount=150)
    with pytest.raises(InsufficientFunds):
        await handlers.withdraw(Withdraw(account_id=account.id, **args), uow)

    with pytest.raises(ReferenceReused):
        await handlers.withdraw(Withdraw(account_id=account.id, **{**args, "amount": 10}), uow)


async def test_a_replayed_withdrawal_answers_the_first_entry_even_when_funds_ran_out(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    account = await open_funded_account(uow, 100)
    args = MovementArgs.build(amount=100)
    first = await handlers.withdraw(Withdraw(account_id=account.id, **args), uow)

    replay = await handlers.withdraw(Withdraw(account_id=account.id, **args), uow)

    assert (replay.value, replay.created) == (first.value, False)


@pytest.mark.parametrize(
    ("amount", "reference", "error"),
    [(0, "r", InvalidAmount), (10**12 + 1, "r", InvalidAmount), (1, "", InvalidReference)],
)
async def test_a_malformed_movement_is_refused_before_any_work(
    uow: InMemoryLedgerUnitOfWork, amount: int, reference: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await handlers.deposit(
            Deposit(principal=OWNER, account_id=uuid4(), amount=amount, reference=reference), uow
        )

    assert (uow.commits, uow.rollbacks, uow.accessed) == (0, 0, [])
