"""Over messages too, a command moves only its principal's money (the same rule as HTTP).

A command made for another principal than the account's owner is refused as
``CommandRejected`` with ``account_not_found``, and nothing changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.brokers import InProcessBroker
from adapters.ledger.messages import COMMANDS_STREAM
from domain.principal import Principal
from entrypoints.ledger.messages import CONSUMER_GROUP
from tests.ledger.messaging.factories import (
    DepositFactory,
    OpenAccountFactory,
    TransferFactory,
    WithdrawFactory,
)
from tests.ledger.messaging.support import MemoryLedger, wire

pytestmark = pytest.mark.unit

MALLORY = Principal(subject="mallory")


@pytest.fixture
async def broker(memory: MemoryLedger) -> AsyncIterator[InProcessBroker]:
    broker = InProcessBroker(max_deliveries=2, redelivery_delay=0.001)
    broker.subscribe(COMMANDS_STREAM, memory.command_handler(), group=CONSUMER_GROUP)
    async with broker:
        yield broker


async def _funded(broker: InProcessBroker, amount: int = 100) -> Any:
    opened = OpenAccountFactory.build()
    await broker.publish(COMMANDS_STREAM, wire(opened))
    await broker.publish(
        COMMANDS_STREAM, wire(DepositFactory.build(account_id=opened.account_id, amount=amount))
    )
    return opened


def _rejections(memory: MemoryLedger) -> list[str]:
    return [m["payload"]["code"] for m in memory.published() if m["type"] == "CommandRejected"]


async def test_a_deposit_for_another_principal_is_rejected_as_not_found(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    opened = await _funded(broker)

    deposit = DepositFactory.build(principal=MALLORY, account_id=opened.account_id, amount=5)
    await broker.publish(COMMANDS_STREAM, wire(deposit))
    await broker.settled()

    assert _rejections(memory) == ["account_not_found"]
    assert await memory.balance(opened.account_id) == 100


async def test_a_withdrawal_for_another_principal_is_rejected_and_moves_nothing(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    opened = await _funded(broker)

    withdrawal = WithdrawFactory.build(principal=MALLORY, account_id=opened.account_id, amount=50)
    await broker.publish(COMMANDS_STREAM, wire(withdrawal))
    await broker.settled()

    assert _rejections(memory) == ["account_not_found"]
    assert await memory.balance(opened.account_id) == 100


async def test_a_transfer_out_of_anothers_account_is_rejected_and_moves_nothing(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    victim = await _funded(broker)
    thief = OpenAccountFactory.build(principal=MALLORY)
    await broker.publish(COMMANDS_STREAM, wire(thief))

    transfer = TransferFactory.build(
        principal=MALLORY, source_id=victim.account_id, target_id=thief.account_id, amount=60
    )
    await broker.publish(COMMANDS_STREAM, wire(transfer))
    await broker.settled()

    assert _rejections(memory) == ["account_not_found"]
    assert await memory.balance(victim.account_id) == 100


async def test_a_transfer_to_anothers_account_is_applied(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    payer = await _funded(broker)
    payee = OpenAccountFactory.build(principal=MALLORY)
    await broker.publish(COMMANDS_STREAM, wire(payee))

    transfer = TransferFactory.build(
        source_id=payer.account_id, target_id=payee.account_id, amount=60
    )
    await broker.publish(COMMANDS_STREAM, wire(transfer))
    await broker.settled()

    assert _rejections(memory) == []
    assert await memory.balance(payer.account_id) == 40


async def test_the_account_opened_by_a_command_belongs_to_its_principal(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    opened = OpenAccountFactory.build(principal=MALLORY)

    await broker.publish(COMMANDS_STREAM, wire(opened))
    await broker.settled()

    [event] = memory.published()
    assert event["payload"]["owner"] == "mallory"


async def test_a_command_naming_no_principal_is_dead_lettered_saying_so(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    message = wire(OpenAccountFactory.build())
    del message["principal"]

    await broker.publish(COMMANDS_STREAM, message)
    await broker.settled()

    [letter] = broker.dead[COMMANDS_STREAM + ".dead"]
    assert "principal" in letter.reason
    assert memory.published() == []


async def test_a_principal_smuggled_into_the_payload_is_refused(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    opened = await _funded(broker)
    message = wire(WithdrawFactory.build(principal=MALLORY, account_id=opened.account_id))
    message["payload"]["principal"] = {"subject": "sender-of-the-test-commands"}

    await broker.publish(COMMANDS_STREAM, message)
    await broker.settled()

    assert len(broker.dead[COMMANDS_STREAM + ".dead"]) == 1
    assert await memory.balance(opened.account_id) == 100
