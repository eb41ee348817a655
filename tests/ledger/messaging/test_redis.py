"""Commands in and events out over real Redis Streams and PostgreSQL, wired by ``bootstrap``."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from sqlalchemy.exc import DBAPIError

from adapters.brokers import Delivery
from adapters.ledger.messages import EVENTS_STREAM
from entrypoints.bootstrap import Container
from entrypoints.ledger import context as ledger_context
from entrypoints.relay import relaying
from tests.ledger.messaging.conftest import MAX_DELIVERIES, POISON_PREFIX
from tests.ledger.messaging.factories import DepositFactory, OpenAccountFactory, WithdrawFactory
from tests.ledger.messaging.support import (
    consuming,
    dead_letters,
    entry_count,
    everything_done,
    published_events,
    send,
)
from tests.messaging.support import wait_until

pytestmark = pytest.mark.integration


async def test_a_command_delivered_twice_is_applied_once_and_announced_once(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    deposit = DepositFactory.build(account_id=opened.account_id, amount=250)

    async with consuming(container):
        for command in (opened, deposit, deposit):  # the second deposit is a redelivery
            await send(redis_client, stream_prefix, command)
        await wait_until(
            lambda: everything_done(container, redis_client, stream_prefix), "every command"
        )

    events = await published_events(redis_client, stream_prefix)
    assert [event["type"] for event in events] == ["AccountOpened", "Deposited"]
    assert events[1]["payload"]["balance_after"] == 250
    assert await entry_count(container, opened.account_id) == 1


async def test_a_command_written_by_hand_as_redis_cli_would_send_it_is_applied(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    # What `redis-cli XADD ledger.commands '*' data '{...}' sig <hmac>` sends: the JSON text
    # and its signature, nothing else.
    text = (
        '{"message_id": "cli-0001", "type": "OpenAccount", '
        '"occurred_at": "2026-01-01T12:00:00Z", "principal": "ada", '
        f'"payload": {{"account_id": "{opened.account_id}", "currency": "EUR"}}}}'
    )

    async with consuming(container):
        await send(redis_client, stream_prefix, text)
        await wait_until(
            lambda: everything_done(container, redis_client, stream_prefix), "the command"
        )

    [event] = await published_events(redis_client, stream_prefix)
    assert event["type"] == "AccountOpened"
    assert event["payload"] == {
        "account_id": str(opened.account_id),
        "owner": "ada",
        "currency": "EUR",
    }


async def test_unparseable_and_invalid_commands_are_dead_lettered_with_the_reason_at_once(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    invalid = (
        '{"message_id": "m-2", "type": "Deposit", "occurred_at": "2026-01-01T12:00:00Z", '
        f'"payload": {{"account_id": "{opened.account_id}", "amount": 10.5, "reference": "r"}}}}'
    )

    async with consuming(container):
        for text in ("{not json", invalid):
            await send(redis_client, stream_prefix, text)
        await send(redis_client, stream_prefix, DepositFactory.build(account_id=opened.account_id))
        await wait_until(
            lambda: everything_done(container, redis_client, stream_prefix), "every command"
        )

    letters = await dead_letters(redis_client, stream_prefix)
    assert [(letter["data"], letter["attempts"]) for letter in letters] == [
        ("{not json", "1"),
        (invalid, "1"),
    ]
    assert letters[0]["reason"].startswith("message is not valid JSON")
    assert letters[1]["reason"].startswith("Deposit is invalid: amount: ")
    assert await entry_count(container, opened.account_id) == 1


async def test_a_command_that_keeps_failing_is_dead_lettered_and_blocks_nothing(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    poison = DepositFactory.build(account_id=opened.account_id, reference=f"{POISON_PREFIX}-1")

    async with consuming(container):
        await send(redis_client, stream_prefix, poison)
        await send(redis_client, stream_prefix, DepositFactory.build(account_id=opened.account_id))
        await wait_until(
            lambda: everything_done(container, redis_client, stream_prefix), "every command"
        )

    [letter] = await dead_letters(redis_client, stream_prefix)
    assert letter["attempts"] == str(MAX_DELIVERIES)
    assert letter["reason"].startswith(f"failed {MAX_DELIVERIES} times, last: ")
    assert "this test database refuses reference" in letter["reason"]
    assert await entry_count(container, opened.account_id) == 1


async def test_a_refused_command_delivered_twice_publishes_one_rejection(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    withdrawal = WithdrawFactory.build(account_id=opened.account_id, amount=500)

    async with consuming(container):
        for _ in range(2):
            await send(redis_client, stream_prefix, withdrawal)
        await wait_until(
            lambda: everything_done(container, redis_client, stream_prefix), "every command"
        )

    events = await published_events(redis_client, stream_prefix)
    assert [event["type"] for event in events] == ["AccountOpened", "CommandRejected"]
    assert events[1]["payload"]["command_message_id"] == withdrawal.message_id
    assert events[1]["payload"]["code"] == "insufficient_funds"
    assert await dead_letters(redis_client, stream_prefix) == []


async def test_a_rolled_back_transaction_publishes_nothing(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    refused_by_the_database = DepositFactory.build(
        account_id=opened.account_id, reference=f"{POISON_PREFIX}-2"
    )
    with pytest.raises(DBAPIError):
        await ledger_context.wiring(container).bus.handle(refused_by_the_database)

    async with container.broker:
        await container.relay.drain()

    events = await published_events(redis_client, stream_prefix)
    assert [event["type"] for event in events] == ["AccountOpened"]


async def test_the_events_the_relay_publishes_are_delivered_to_a_redis_consumer(
    container: Container,
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    received: list[Delivery] = []

    async def receive(delivery: Delivery) -> None:
        received.append(delivery)

    container.broker.subscribe(EVENTS_STREAM, receive, group="audit")
    async with container.broker, relaying(container.relay):
        await wait_until(lambda: len(received) == 1, "the AccountOpened delivery")

    assert received[0].message["type"] == "AccountOpened"
    assert received[0].headers == {"key": f"Account:{opened.account_id}", "type": "AccountOpened"}
