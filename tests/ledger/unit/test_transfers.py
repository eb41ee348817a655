"""Transfers, their replays and refusals, on the in-memory unit of work."""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.ledger.unit_of_work import InMemoryLedgerUnitOfWork
from domain.ledger.commands import TransferFunds
from domain.ledger.errors import (
    AccountNotFound,
    CurrencyMismatch,
    InsufficientFunds,
    ReferenceReused,
    SameAccount,
    TransferNotFound,
)
from domain.ledger.events import TransferCompleted
from service_layer.ledger import handlers, reads
from tests.ledger.factories import OWNER, TransferArgs, new_principal, open_funded_account

pytestmark = pytest.mark.unit


async def test_a_transfer_moves_money_between_the_accounts(uow: InMemoryLedgerUnitOfWork) -> None:
    source, target = await open_funded_account(uow, 100), await open_funded_account(uow, 10)

    outcome = await handlers.transfer(
        TransferFunds(source_id=source.id, target_id=target.id, **TransferArgs.build(amount=30)),
        uow,
    )

    assert outcome.created
    assert (outcome.value.source_id, outcome.value.target_id, outcome.value.amount) == (
        source.id,
        target.id,
        30,
    )
    assert outcome.value.currency == "EUR"
    assert (await reads.get_account(uow, source.id, OWNER)).balance == 70
    assert (await reads.get_account(uow, target.id, OWNER)).balance == 40


async def test_a_transfer_writes_one_entry_on_each_side(uow: InMemoryLedgerUnitOfWork) -> None:
    source, target = await open_funded_account(uow, 100), await open_funded_account(uow)

    outcome = await handlers.transfer(
        TransferFunds(source_id=source.id, target_id=target.id, **TransferArgs.build(amount=30)),
        uow,
    )

    debit = (await reads.list_entries(uow, source.id, OWNER)).items[-1]
    credit = (await reads.list_entries(uow, target.id, OWNER)).items[-1]
    assert (debit.kind, debit.amount, debit.transfer_id) == ("transfer_out", 30, outcome.value.id)
    assert (credit.kind, credit.amount, credit.transfer_id) == ("transfer_in", 30, outcome.value.id)


async def test_a_transfer_raises_transfer_completed(uow: InMemoryLedgerUnitOfWork) -> None:
    source, target = await open_funded_account(uow, 100), await open_funded_account(uow)

    outcome = await handlers.transfer(
        TransferFunds(source_id=source.id, target_id=target.id, **TransferArgs.build()), uow
    )

    events = list(uow.collect_new_events())
    assert [type(event) for event in events] == [TransferCompleted]
    assert isinstance(events[0], TransferCompleted)
    assert events[0].transfer_id == outcome.value.id


async def test_a_transfer_can_be_read_back(uow: InMemoryLedgerUnitOfWork) -> None:
    source, target = await open_funded_account(uow, 100), await open_funded_account(uow)
    outcome = await handlers.transfer(
        TransferFunds(source_id=source.id, target_id=target.id, **TransferArgs.build()), uow
    )

    assert await reads.get_transfer(uow, outcome.value.id, OWNER) == outcome.value


async def test_a_replayed_transfer_answers_the_first_and_changes_nothing(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    source, target = await open_funded_account(uow, 100), await open_funded_account(uow)
    args = TransferArgs.build(source_id=source.id, target_id=target.id, amount=60)
    first = await handlers.transfer(TransferFunds(**args), uow)
    balances = [await reads.get_account(uow, a.id, OWNER) for a in (source, target)]

    replay = await handlers.transfer(TransferFunds(**args), uow)

    assert (replay.value, replay.created) == (first.value, False)
    assert [await reads.get_account(uow, a.id, OWNER) for a in (source, target)] == balances


async def test_a_transfer_reference_is_unique_per_source_account(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    accounts = [await open_funded_account(uow, 100) for _ in range(3)]
    args = TransferArgs.build()
    await handlers.transfer(
        TransferFunds(source_id=accounts[0].id, target_id=accounts[1].id, **args), uow
    )

    with pytest.raises(ReferenceReused) as refused:
        await handlers.transfer(
            TransferFunds(source_id=accounts[0].id, target_id=accounts[2].id, **args), uow
        )
    assert str(accounts[1].id) not in refused.value.detail


async def test_another_owner_may_use_the_same_transfer_reference(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    stranger = new_principal()
    mine = [await open_funded_account(uow, 100) for _ in range(2)]
    theirs = await open_funded_account(uow, 100, principal=stranger)
    args = TransferArgs.build()
    await handlers.transfer(TransferFunds(source_id=mine[0].id, target_id=mine[1].id, **args), uow)

    outcome = await handlers.transfer(
        TransferFunds(source_id=theirs.id, target_id=mine[1].id, **{**args, "principal": stranger}),
        uow,
    )

    assert outcome.created
    assert (await reads.get_account(uow, mine[1].id, OWNER)).balance == 300


async def test_a_transfer_beyond_the_source_balance_changes_nothing(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    source, target = await open_funded_account(uow, 10), await open_funded_account(uow, 5)

    with pytest.raises(InsufficientFunds):
        await handlers.transfer(
            TransferFunds(
                source_id=source.id, target_id=target.id, **TransferArgs.build(amount=11)
            ),
            uow,
        )

    assert await reads.get_account(uow, source.id, OWNER) == source
    assert await reads.get_account(uow, target.id, OWNER) == target


async def test_a_transfer_between_currencies_is_refused(uow: InMemoryLedgerUnitOfWork) -> None:
    source = await open_funded_account(uow, 100, currency="EUR")
    target = await open_funded_account(uow, currency="GBP")

    with pytest.raises(CurrencyMismatch):
        await handlers.transfer(
            TransferFunds(source_id=source.id, target_id=target.id, **TransferArgs.build()), uow
        )


async def test_a_transfer_to_the_same_account_is_refused_before_any_work(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    account_id = uuid4()

    with pytest.raises(SameAccount):
        await handlers.transfer(
            TransferFunds(source_id=account_id, target_id=account_id, **TransferArgs.build()), uow
        )

    assert (uow.commits, uow.rollbacks, uow.accessed) == (0, 0, [])


@pytest.mark.parametrize("missing", ["source", "target"])
async def test_a_transfer_with_an_unknown_account_is_account_not_found(
    uow: InMemoryLedgerUnitOfWork, missing: str
) -> None:
    known = await open_funded_account(uow, 100)
    source_id, target_id = (uuid4(), known.id) if missing == "source" else (known.id, uuid4())

    with pytest.raises(AccountNotFound):
        await handlers.transfer(
            TransferFunds(source_id=source_id, target_id=target_id, **TransferArgs.build()), uow
        )


async def test_reading_an_unknown_transfer_is_transfer_not_found(
    uow: InMemoryLedgerUnitOfWork,
) -> None:
    with pytest.raises(TransferNotFound):
        await reads.get_transfer(uow, uuid4(), OWNER)
