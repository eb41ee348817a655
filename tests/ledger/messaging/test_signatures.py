"""Signed commands on Redis: ``sig`` is the HMAC-SHA256 of ``data`` under COMMAND_SIGNING_KEY."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from adapters.serialization import encode
from adapters.settings import ConfigurationError, Settings
from entrypoints.bootstrap import Container
from entrypoints.consumer import subscribe_all
from entrypoints.ledger import context as ledger_context
from entrypoints.ledger.messages import command_handler
from entrypoints.signed_commands import sign, signature_matches
from tests.ledger.messaging.factories import DepositFactory, OpenAccountFactory
from tests.ledger.messaging.support import (
    consuming,
    dead_letters,
    entry_count,
    everything_done,
    send,
    wire,
)
from tests.messaging.support import wait_until
from tests.support.tokens import SIGNING_KEY

pytestmark = pytest.mark.integration


def test_the_signature_is_the_lower_case_hex_hmac_sha256_of_the_data() -> None:
    data = '{"message_id": "m-1"}'

    expected = hmac.new(SIGNING_KEY.encode(), data.encode(), hashlib.sha256).hexdigest()

    assert sign(data, SIGNING_KEY) == expected
    assert signature_matches(data, expected, SIGNING_KEY)
    assert not signature_matches(data + " ", expected, SIGNING_KEY)


async def _dead_after(
    container: Container, redis_client: aioredis.Redis, prefix: str
) -> list[dict[str, str]]:
    await wait_until(lambda: everything_done(container, redis_client, prefix), "the commands")
    return await dead_letters(redis_client, prefix)


async def test_an_unsigned_command_is_dead_lettered_as_unauthenticated_and_changes_nothing(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)

    async with consuming(container):
        deposit = DepositFactory.build(account_id=opened.account_id)
        await send(redis_client, stream_prefix, deposit, signed=False)
        [letter] = await _dead_after(container, redis_client, stream_prefix)

    assert letter["reason"] == "unauthenticated"
    assert await entry_count(container, opened.account_id) == 0


async def test_a_wrongly_signed_command_is_dead_lettered_as_unauthenticated(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    text = '{"message_id":"m-9","type":"Deposit","principal":"sender-of-the-test-commands",'
    text += f'"payload":{{"account_id":"{opened.account_id}","amount":5,"reference":"r-9"}}}}'

    async with consuming(container):
        await redis_client.xadd(
            stream_prefix + "ledger.commands", {"data": text, "sig": sign(text, "another key")}
        )
        [letter] = await _dead_after(container, redis_client, stream_prefix)

    assert letter["reason"] == "unauthenticated"
    assert await entry_count(container, opened.account_id) == 0


async def test_a_signed_command_whose_principal_was_swapped_is_refused(
    container: Container, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    opened = OpenAccountFactory.build()
    await ledger_context.wiring(container).bus.handle(opened)
    message = wire(DepositFactory.build(account_id=opened.account_id))
    signed = encode(message)
    swapped = encode({**message, "principal": "mallory"})

    async with consuming(container):
        await redis_client.xadd(
            stream_prefix + "ledger.commands", {"data": swapped, "sig": sign(signed, SIGNING_KEY)}
        )
        [letter] = await _dead_after(container, redis_client, stream_prefix)

    assert letter["reason"] == "unauthenticated"


def test_a_consumer_on_redis_without_a_signing_key_refuses_to_start(
    settings: Settings, container: Container
) -> None:
    unkeyed = Settings(**{**settings.model_dump(), "command_signing_key": None})

    with pytest.raises(ConfigurationError, match="COMMAND_SIGNING_KEY is not set"):
        command_handler(ledger_context.wiring(container), _with_settings(container, unkeyed))


def test_subscribing_on_redis_without_a_signing_key_refuses(
    settings: Settings, container: Container
) -> None:
    unkeyed = Settings(**{**settings.model_dump(), "command_signing_key": None})

    with pytest.raises(ConfigurationError, match="COMMAND_SIGNING_KEY"):
        subscribe_all(_with_settings(container, unkeyed))


def _with_settings(container: Container, settings: Settings) -> Container:
    return replace(container, settings=settings)
