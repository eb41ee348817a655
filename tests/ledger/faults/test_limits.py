"""Every stored key fits the longest value the message envelope allows.

The envelope takes a ``message_id`` of up to 200 characters; whatever Keel
stores under it (the inbox row, the outbox key of a command's rejection)
must fit too, or a well-formed message fails on the database and ends up in
the dead letters instead of being answered.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from sqlalchemy import select

from adapters.brokers import InProcessBroker, dead_letter_stream
from adapters.ledger.messages import COMMANDS_STREAM
from adapters.outbox import outbox_table
from entrypoints.consumer import subscribe_all
from tests.ledger.faults.harness import LedgerApp
from tests.ledger.messaging.factories import WithdrawFactory
from tests.ledger.messaging.support import wire

pytestmark = pytest.mark.integration

LONGEST_MESSAGE_ID = "m" * 200
"""The envelope's limit (``adapters.serialization``: ``max_length=200``)."""
DEADLINE_SECONDS = 15.0


async def test_a_refused_command_with_the_longest_message_id_gets_its_command_rejected(
    ledger: LedgerApp,
) -> None:
    account_id = await ledger.open_account()
    broker = ledger.container.broker
    assert isinstance(broker, InProcessBroker)
    subscribe_all(ledger.container)
    overdraft = WithdrawFactory.build(
        account_id=UUID(account_id), amount=10**9, message_id=LONGEST_MESSAGE_ID
    )

    async with asyncio.timeout(DEADLINE_SECONDS), broker:
        await broker.publish(COMMANDS_STREAM, wire(overdraft))
        await broker.settled()

    assert broker.dead[dead_letter_stream(COMMANDS_STREAM)] == []
    async with ledger.container.session_manager.session() as session:
        rejections = (
            await session.execute(
                select(outbox_table.c.type, outbox_table.c.payload).where(
                    outbox_table.c.aggregate_key == f"Command:{LONGEST_MESSAGE_ID}"
                )
            )
        ).all()
    assert [(kind, payload["command_message_id"]) for kind, payload in rejections] == [
        ("CommandRejected", LONGEST_MESSAGE_ID)
    ]
