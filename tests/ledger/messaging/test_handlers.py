"""The ledger's command handlers behind the bus, on the in-memory unit of work and outbox."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.ledger.errors import AccountNotFound, InsufficientFunds
from domain.principal import Principal
from service_layer.ledger.handlers import reject_command
from service_layer.messagebus import DuplicateMessage
from tests.ledger.messaging.factories import (
    DepositFactory,
    OpenAccountFactory,
    TransferFactory,
    WithdrawFactory,
)
from tests.ledger.messaging.support import MemoryLedger

pytestmark = pytest.mark.unit


async def test_opening_an_account_announces_it_with_the_senders_id(memory: MemoryLedger) -> None:
    command = OpenAccountFactory.build(principal=Principal(subject="ada"), currency="EUR")

    view = await memory.bus.handle(command)

    assert view.id == command.account_id
    [opened] = memory.published()
    assert opened["type"] == "AccountOpened"
    assert opened["payload"] == {
        "account_id": str(command.account_id),
        "owner": "ada",
        "currency": "EUR",
    }


async def test_a_deposit_changes_the_balance_and_announces_the_new_one(
    memory: MemoryLedger,
) -> None:
    opened = OpenAccountFactory.build()
    await memory.bus.handle(opened)

    outcome = await memory.bus.handle(DepositFactory.build(account_id=opened.account_id, amount=70))

    assert outcome.created
    assert await memory.balance(opened.account_id) == 70
    assert memory.published()[-1]["payload"]["balance_after"] == 70


async def test_a_withdrawal_is_announced_as_withdrawn(memory: MemoryLedger) -> None:
    opened = OpenAccountFactory.build()
    await memory.bus.handle(opened)
    await memory.bus.handle(DepositFactory.build(account_id=opened.account_id, amount=70))

    await memory.bus.handle(WithdrawFactory.build(account_id=opened.account_id, amount=20))

    assert memory.published_types() == ["AccountOpened", "Deposited", "Withdrawn"]
    assert await memory.balance(opened.account_id) == 50


async def test_a_transfer_is_announced_once_for_both_accounts(memory: MemoryLedger) -> None:
    source, target = OpenAccountFactory.build(), OpenAccountFactory.build()
    for opened in (source, target):
        await memory.bus.handle(opened)
    await memory.bus.handle(DepositFactory.build(account_id=source.account_id, amount=90))

    await memory.bus.handle(
        TransferFactory.build(source_id=source.account_id, target_id=target.account_id, amount=40)
    )

    assert memory.published_types()[-1] == "TransferCompleted"
    assert await memory.balance(target.account_id) == 40


async def test_a_refused_withdrawal_changes_nothing_and_announces_nothing(
    memory: MemoryLedger,
) -> None:
    opened = OpenAccountFactory.build()
    await memory.bus.handle(opened)

    with pytest.raises(InsufficientFunds):
        await memory.bus.handle(WithdrawFactory.build(account_id=opened.account_id, amount=1))

    assert memory.published_types() == ["AccountOpened"]


async def test_a_command_handled_once_refuses_its_redelivery(memory: MemoryLedger) -> None:
    opened = OpenAccountFactory.build()
    await memory.bus.handle(opened)
    deposit = DepositFactory.build(account_id=opened.account_id, amount=30)
    await memory.bus.handle(deposit, once=True)

    with pytest.raises(DuplicateMessage):
        await memory.bus.handle(deposit, once=True)

    assert await memory.balance(opened.account_id) == 30


async def test_a_rejection_is_announced_with_the_commands_id_and_the_errors_code(
    memory: MemoryLedger,
) -> None:
    command = DepositFactory.build(account_id=uuid4())
    error = AccountNotFound(f"no account with id {command.account_id}")

    await reject_command(
        command, error, uow=memory.uow_factory(), inbox=memory.inbox, outbox=memory.outbox
    )

    [rejected] = memory.published()
    assert rejected["type"] == "CommandRejected"
    assert rejected["payload"] == {
        "command_message_id": command.message_id,
        "code": "account_not_found",
        "detail": error.detail,
    }


async def test_a_rejection_recorded_twice_is_announced_once(memory: MemoryLedger) -> None:
    command = DepositFactory.build(account_id=uuid4())
    error = AccountNotFound("no such account")
    await reject_command(
        command, error, uow=memory.uow_factory(), inbox=memory.inbox, outbox=memory.outbox
    )

    with pytest.raises(DuplicateMessage):
        await reject_command(
            command, error, uow=memory.uow_factory(), inbox=memory.inbox, outbox=memory.outbox
        )

    assert memory.published_types() == ["CommandRejected"]


async def test_a_rejected_command_is_not_run_again_when_it_would_now_succeed(
    memory: MemoryLedger,
) -> None:
    opened = OpenAccountFactory.build()
    await memory.bus.handle(opened)
    withdrawal = WithdrawFactory.build(account_id=opened.account_id, amount=10)
    with pytest.raises(InsufficientFunds) as refused:
        await memory.bus.handle(withdrawal, once=True)
    await reject_command(
        withdrawal,
        refused.value,
        uow=memory.uow_factory(),
        inbox=memory.inbox,
        outbox=memory.outbox,
    )
    await memory.bus.handle(DepositFactory.build(account_id=opened.account_id, amount=10))

    with pytest.raises(DuplicateMessage):
        await memory.bus.handle(withdrawal, once=True)

    assert await memory.balance(opened.account_id) == 10


async def test_one_accounts_events_share_its_key_transfers_included(memory: MemoryLedger) -> None:
    source, target = OpenAccountFactory.build(), OpenAccountFactory.build()
    for opened in (source, target):
        await memory.bus.handle(opened)
    await memory.bus.handle(DepositFactory.build(account_id=source.account_id, amount=70))
    await memory.bus.handle(
        TransferFactory.build(source_id=source.account_id, target_id=target.account_id, amount=5)
    )

    keys = {record.type: record.key for record in memory.outbox.records}

    assert keys["Deposited"] == keys["TransferCompleted"] == f"Account:{source.account_id}"
