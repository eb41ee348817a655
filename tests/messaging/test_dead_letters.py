"""Dead letters on the in-process broker: listed, replayed with their headers, audited."""

from __future__ import annotations

import json
import logging

import pytest

from adapters.brokers import Delivery, InProcessBroker
from adapters.dead_letters import DeadLetterBox, DeadLetterNotFound, replay

pytestmark = pytest.mark.unit

STREAM = "things.commands"
MESSAGE = {"message_id": "m-1", "type": "Do", "occurred_at": "2026-01-01T00:00:00Z", "payload": {}}


async def _failing_once_then_applied(broker: InProcessBroker) -> list[Delivery]:
    """Subscribe a handler that fails its first delivery and records the others."""
    received: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        if not received:
            received.append(delivery)
            raise RuntimeError("not today")
        received.append(delivery)

    broker.subscribe(STREAM, handler, group="g")
    return received


async def test_a_message_dead_lettered_keeps_its_headers_and_a_replay_delivers_them_again() -> None:
    broker = InProcessBroker(max_deliveries=1)
    received = await _failing_once_then_applied(broker)
    async with broker:
        await broker.publish(
            STREAM, MESSAGE, {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
        )
        await broker.settled()
        [letter] = await broker.dead_letters(STREAM)

        await replay(broker, STREAM, letter.id, by="test")
        await broker.settled()

    assert isinstance(broker, DeadLetterBox)
    assert [d.attempt for d in received] == [1, 1]  # the replay is a new delivery
    assert received[1].headers == received[0].headers
    assert received[1].message["message_id"] == "m-1"
    assert await broker.dead_letter_count(STREAM) == 0
    assert broker.audit[0]["dead_letter_id"] == letter.id


async def test_a_replay_logs_one_audit_line_naming_the_message_and_who_replayed_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="keel.audit")
    broker = InProcessBroker()
    await broker.dead_letter(STREAM, json.dumps(MESSAGE), "broken")
    [letter] = await broker.dead_letters(STREAM)

    await replay(broker, STREAM, letter.id, by="ops-alice")

    [line] = [r for r in caplog.records if r.name == "keel.audit"]
    assert line.getMessage() == "dead letter replayed"
    assert (getattr(line, "message_id", None), getattr(line, "by", None)) == ("m-1", "ops-alice")


async def test_replaying_an_unknown_dead_letter_is_refused_and_changes_nothing() -> None:
    broker = InProcessBroker()
    await broker.dead_letter(STREAM, json.dumps(MESSAGE), "broken")

    with pytest.raises(DeadLetterNotFound):
        await replay(broker, STREAM, "999", by="test")

    assert await broker.dead_letter_count(STREAM) == 1
    assert broker.published == {}
