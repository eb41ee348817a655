"""The ledger's services on real databases: what is written reads back the same.

Parametrised over PostgreSQL and SQLite; each test opens its own accounts.
"""

from __future__ import annotations

import base64
from uuid import uuid4

import pytest

from domain.ledger.account import EntryKind
from domain.ledger.commands import Deposit, OpenAccount, TransferFunds, Withdraw
from domain.ledger.errors import InsufficientFunds, ReferenceReused
from service_layer.ledger import handlers, reads
from service_layer.pagination import InvalidCursor
from tests.ledger.conftest import SqlUowFactory
from tests.ledger.factories import (
    OWNER,
    MovementArgs,
    OpenAccountArgs,
    TransferArgs,
    open_funded_account,
)

pytestmark = pytest.mark.integration


async def test_an_opened_account_reads_back_exactly(sql_uow_factory: SqlUowFactory) -> None:
    opened = await handlers.open_account(OpenAccount(**OpenAccountArgs.build()), sql_uow_factory())

    read = await reads.get_account(sql_uow_factory(), opened.id, OWNER)

    assert read == opened
    assert (read.version, read.balance) == (1, 0)
    assert read.created_at.utcoffset() is not None


async def test_reopening_an_account_id_answers_the_stored_account(
    sql_uow_factory: SqlUowFactory,
) -> None:
    args = OpenAccountArgs.build(account_id=uuid4())
    first = await handlers.open_account(OpenAccount(**args), sql_uow_factory())

    assert await handlers.open_account(OpenAccount(**args), sql_uow_factory()) == first


async def test_every_movement_bumps_the_stored_version(sql_uow_factory: SqlUowFactory) -> None:
    account = await open_funded_account(sql_uow_factory(), 100)

    await handlers.withdraw(
        Withdraw(account_id=account.id, **MovementArgs.build()), sql_uow_factory()
    )

    stored = await reads.get_account(sql_uow_factory(), account.id, OWNER)
    assert (stored.balance, stored.version) == (0, account.version + 1)


async def test_a_replayed_deposit_answers_exactly_the_stored_entry(
    sql_uow_factory: SqlUowFactory,
) -> None:
    account = await open_funded_account(sql_uow_factory())
    args = MovementArgs.build(account_id=account.id)
    first = await handlers.deposit(Deposit(**args), sql_uow_factory())

    replay = await handlers.deposit(Deposit(**args), sql_uow_factory())

    assert (replay.value, replay.created) == (first.value, False)
    assert (await reads.get_account(sql_uow_factory(), account.id, OWNER)).version == 2


async def test_a_stored_reference_with_another_amount_is_refused(
    sql_uow_factory: SqlUowFactory,
) -> None:
    account = await open_funded_account(sql_uow_factory())
    args = MovementArgs.build(account_id=account.id, amount=5)
    await handlers.deposit(Deposit(**args), sql_uow_factory())

    with pytest.raises(ReferenceReused):
        await handlers.deposit(Deposit(**{**args, "amount": 6}), sql_uow_factory())


async def test_a_refused_withdrawal_writes_nothing(sql_uow_factory: SqlUowFactory) -> None:
    account = await open_funded_account(sql_uow_factory(), 50)

    with pytest.raises(InsufficientFunds):
        await handlers.withdraw(
            Withdraw(account_id=account.id, **MovementArgs.build(amount=51)), sql_uow_factory()
        )

    assert await reads.get_account(sql_uow_factory(), account.id, OWNER) == account
    assert len((await reads.list_entries(sql_uow_factory(), account.id, OWNER)).items) == 1


async def test_a_transfer_reads_back_with_both_entries(sql_uow_factory: SqlUowFactory) -> None:
    source = await open_funded_account(sql_uow_factory(), 100)
    target = await open_funded_account(sql_uow_factory())

    outcome = await handlers.transfer(
        TransferFunds(source_id=source.id, target_id=target.id, **TransferArgs.build()),
        sql_uow_factory(),
    )

    assert await reads.get_transfer(sql_uow_factory(), outcome.value.id, OWNER) == outcome.value
    debit = (await reads.list_entries(sql_uow_factory(), source.id, OWNER)).items[-1]
    credit = (await reads.list_entries(sql_uow_factory(), target.id, OWNER)).items[-1]
    assert (debit.kind, debit.transfer_id, debit.balance_after) == (
        "transfer_out",
        outcome.value.id,
        0,
    )
    assert (credit.kind, credit.transfer_id, credit.balance_after) == (
        "transfer_in",
        outcome.value.id,
        100,
    )


async def test_a_replayed_transfer_answers_exactly_the_stored_transfer(
    sql_uow_factory: SqlUowFactory,
) -> None:
    source = await open_funded_account(sql_uow_factory(), 100)
    target = await open_funded_account(sql_uow_factory())
    args = TransferArgs.build(source_id=source.id, target_id=target.id)
    first = await handlers.transfer(TransferFunds(**args), sql_uow_factory())

    replay = await handlers.transfer(TransferFunds(**args), sql_uow_factory())

    assert (replay.value, replay.created) == (first.value, False)


async def test_the_journal_pages_through_every_stored_entry(
    sql_uow_factory: SqlUowFactory,
) -> None:
    account = await open_funded_account(sql_uow_factory())
    made = [
        (
            await handlers.deposit(
                Deposit(account_id=account.id, **MovementArgs.build()), sql_uow_factory()
            )
        )
        for _ in range(5)
    ]

    first = await reads.list_entries(sql_uow_factory(), account.id, OWNER, limit=3)
    assert first.next is not None
    rest = await reads.list_entries(sql_uow_factory(), account.id, OWNER, limit=3, after=first.next)

    assert [*first.items, *rest.items] == [outcome.value for outcome in made]
    assert rest.next is None


async def test_a_forged_cursor_is_refused(sql_uow_factory: SqlUowFactory) -> None:
    account = await open_funded_account(sql_uow_factory())

    with pytest.raises(InvalidCursor):
        await reads.list_entries(sql_uow_factory(), account.id, OWNER, after="djE6LTE")


async def test_entries_load_as_domain_objects_with_their_kind(
    sql_uow_factory: SqlUowFactory,
) -> None:
    account = await open_funded_account(sql_uow_factory())
    outcome = await handlers.deposit(
        Deposit(account_id=account.id, **MovementArgs.build()), sql_uow_factory()
    )

    async with sql_uow_factory() as uow:
        entry = await uow.entries.get(outcome.value.id)

    assert entry is not None
    assert entry.kind is EntryKind.DEPOSIT
    assert entry.created_at == outcome.value.created_at


async def test_a_cursor_beyond_a_64_bit_position_is_refused_before_the_database(
    sql_uow_factory: SqlUowFactory,
) -> None:
    account = await open_funded_account(sql_uow_factory(), 10)
    tampered = base64.urlsafe_b64encode(b"v1:9999999999999999999").rstrip(b"=").decode()

    with pytest.raises(InvalidCursor):
        await reads.list_entries(sql_uow_factory(), account.id, OWNER, after=tampered)
