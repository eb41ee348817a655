"""The ledger's events carry correlation and causation ids over Redis (contract v2).

A command sent by any client, with or without a ``correlation_id`` in its
envelope; the event it causes is read back from ``ledger.events``; a dead
letter replayed is applied once.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from adapters.dead_letters import DeadLetterBox, replay
from adapters.ledger.messages import COMMANDS_STREAM
from adapters.serialization import encode
from domain.ledger.commands import OpenAccount
from entrypoints.bootstrap import Container
from entrypoints.ledger import context as ledger_context
from entrypoints.signed_commands import PRINCIPAL_FIELD, SIGNATURE_FIELD, sign
from tests.ledger.messaging.factories import OpenAccountFactory
from tests.ledger.messaging.support import (
    consuming,
    dead_letters,
    entry_count,
    everything_done,
    published_events,
    send,
)
from tests.messaging.support import wait_until
from tests.support.tokens import SIGNING_KEY

pytestmark = pytest.mark.integration


def _deposit(opened: OpenAccount, message_id: str, correlation_id: str | None) -> str:
    command: dict[str, Any] = {
        "message_id": message_id,
        "type": "Deposit",
        "occurred_at": "2026-01-01T12:00:00Z",
        PRINCIPAL_FIELD: opened.principal.subject,
        "payload": {
            "account_id": str(opened.account_id),
            "amount": 100,
            "reference": message_id,
        },
    }
    if correlation_id is not None:
        command["correlation_id"] = correlation_id
    return encode(command)


@pytest.mark.parametrize(
    ("sent_correlation", "expected_correlation"),
    [("checkout-42", "checkout-42"), (None, "dep-0001")],
    ids=["with-a-correlation-id", "without-one"],
)
async def test_the_event_a_command_causes_carries_its_correlation_and_its_id_as_cause(
    container: Container,
    redis_client: aioredis.Redis,
    stream_prefix: str,
    sent_correlation: str | None,
    expected_correlation: str,
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)

    async with consuming(container):
        await send(redis_client, stream_prefix, _deposit(opened, "dep-0001", sent_correlation))
        await wait_until(
            lambda: everything_done(container, redis_client, stream_prefix), "the command"
        )

    deposited = [
        e for e in await published_events(redis_client, stream_prefix) if e["type"] == "Deposited"
    ]
    assert [(e["correlation_id"], e["causation_id"]) for e in deposited] == [
        (expected_correlation, "dep-0001")
    ]


async def test_an_event_raised_outside_any_request_or_message_is_its_commands_own(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()

    await ledger_context.wiring(container).bus.handle(opened)
    async with consuming(container):
        await wait_until(
            lambda: everything_done(container, redis_client, stream_prefix), "the event"
        )

    [event] = await published_events(redis_client, stream_prefix)
    assert (event["correlation_id"], event["causation_id"]) == (
        opened.message_id,
        opened.message_id,
    )


async def test_a_dead_letter_replayed_twice_is_applied_once(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    raw = _deposit(opened, "dep-0002", None)
    async with container.broker:
        # The same command set aside twice (two deliveries that both failed, say).
        for _ in range(2):
            # The signature travels with it, as the broker keeps a delivery's headers.
            await container.broker.dead_letter(
                COMMANDS_STREAM,
                raw,
                "database was down",
                headers={SIGNATURE_FIELD: sign(raw, SIGNING_KEY)},
            )

    box = container.broker
    assert isinstance(box, DeadLetterBox)
    async with consuming(container):
        for letter in await box.dead_letters(COMMANDS_STREAM):
            await replay(box, COMMANDS_STREAM, letter.id, by="test")
        await wait_until(
            lambda: everything_done(container, redis_client, stream_prefix), "the replays"
        )

    assert await entry_count(container, opened.account_id) == 1
    assert await dead_letters(redis_client, stream_prefix) == []
    deposited = [
        e for e in await published_events(redis_client, stream_prefix) if e["type"] == "Deposited"
    ]
    assert len(deposited) == 1
