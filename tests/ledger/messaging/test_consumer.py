"""The command consumer on the in-process broker: validation, dispatch, refusals, dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from factory.base import Factory

from adapters.brokers import InProcessBroker
from adapters.ledger.messages import COMMANDS, COMMANDS_STREAM
from adapters.serialization import MalformedMessage
from entrypoints.ledger.messages import CONSUMER_GROUP, PAYLOADS, check_payload
from tests.ledger.messaging.factories import (
    DepositFactory,
    OpenAccountFactory,
    TransferFactory,
    WithdrawFactory,
)
from tests.ledger.messaging.support import MemoryLedger, wire

pytestmark = pytest.mark.unit

DEAD = COMMANDS_STREAM + ".dead"


@pytest.fixture
async def broker(memory: MemoryLedger) -> AsyncIterator[InProcessBroker]:
    broker = InProcessBroker(max_deliveries=2, redelivery_delay=0.001)
    broker.subscribe(COMMANDS_STREAM, memory.command_handler(), group=CONSUMER_GROUP)
    async with broker:
        yield broker


def a_deposit_with(**payload: Any) -> dict[str, Any]:
    message = wire(DepositFactory.build())
    message["payload"].update(payload)
    return message


COMMAND_FACTORIES: tuple[type[Factory[Any]], ...] = (
    OpenAccountFactory,
    DepositFactory,
    WithdrawFactory,
    TransferFactory,
)


def test_every_command_the_ledger_consumes_has_a_payload_model() -> None:
    names = {wire(factory.build())["type"] for factory in COMMAND_FACTORIES}

    assert set(PAYLOADS) == names == set(COMMANDS)


@pytest.mark.parametrize("factory", COMMAND_FACTORIES, ids=lambda factory: factory.__name__)
def test_every_command_as_the_registry_writes_it_passes_validation(
    factory: type[Factory[Any]],
) -> None:
    check_payload(wire(factory.build()))


async def test_a_command_from_the_stream_is_applied(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    opened = OpenAccountFactory.build()

    for command in (opened, DepositFactory.build(account_id=opened.account_id, amount=42)):
        await broker.publish(COMMANDS_STREAM, wire(command))
    await broker.settled()

    assert await memory.balance(opened.account_id) == 42


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        pytest.param({"amount": 10.5}, "amount", id="a float amount"),
        pytest.param({"amount": "100"}, "amount", id="a numeric string amount"),
        pytest.param({"amount": True}, "amount", id="a boolean amount"),
        pytest.param({"amount": 0}, "amount", id="a zero amount"),
        pytest.param({"amount": 10**12 + 1}, "amount", id="an amount above 10**12"),
        pytest.param({"reference": "r" * 101}, "reference", id="a 101-character reference"),
        pytest.param({"reference": "tab\there"}, "reference", id="a control character"),
        pytest.param({"account_id": "not-a-uuid"}, "account_id", id="a malformed id"),
        pytest.param({"ammount": 5}, "ammount", id="a misspelt field"),
    ],
)
def test_a_payload_the_http_api_would_refuse_is_malformed_naming_the_field(
    payload: dict[str, Any], named: str
) -> None:
    with pytest.raises(MalformedMessage, match=rf"^Deposit is invalid: {named}: "):
        check_payload(a_deposit_with(**payload))


def test_a_currency_outside_iso_4217_shape_is_malformed() -> None:
    message = wire(OpenAccountFactory.build())
    message["payload"]["currency"] = "eur"

    with pytest.raises(MalformedMessage, match="currency"):
        check_payload(message)


async def test_a_malformed_command_is_dead_lettered_and_the_next_one_is_applied(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    opened = OpenAccountFactory.build()
    await broker.publish(COMMANDS_STREAM, wire(opened))

    await broker.publish(
        COMMANDS_STREAM, a_deposit_with(account_id=str(opened.account_id), amount=1.5)
    )
    await broker.publish(
        COMMANDS_STREAM, wire(DepositFactory.build(account_id=opened.account_id, amount=7))
    )
    await broker.settled()

    [letter] = broker.dead[DEAD]
    assert letter.reason.startswith("Deposit is invalid: amount: ")
    assert await memory.balance(opened.account_id) == 7


async def test_an_event_sent_as_a_command_is_dead_lettered(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    opened = OpenAccountFactory.build()
    await memory.bus.handle(opened)
    [announced] = memory.published()

    await broker.publish(COMMANDS_STREAM, announced)
    await broker.settled()

    [letter] = broker.dead[DEAD]
    assert "got type 'AccountOpened'" in letter.reason


async def test_a_refused_command_delivered_twice_is_announced_once_and_not_dead_lettered(
    memory: MemoryLedger, broker: InProcessBroker
) -> None:
    opened = OpenAccountFactory.build()
    await broker.publish(COMMANDS_STREAM, wire(opened))
    withdrawal = WithdrawFactory.build(account_id=opened.account_id, amount=500)

    for _ in range(2):
        await broker.publish(COMMANDS_STREAM, wire(withdrawal))
    await broker.settled()

    assert memory.published_types() == ["AccountOpened", "CommandRejected"]
    assert memory.published()[-1]["payload"]["code"] == "insufficient_funds"
    assert dict(broker.dead) == {}
