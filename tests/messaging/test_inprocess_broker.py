"""The in-process broker and the delivery policy every broker shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.brokers import BrokerConfigurationError, Delivery, InProcessBroker, create_broker
from adapters.serialization import MalformedMessage, encode
from tests.messaging.factories import AddFactory
from tests.messaging.sample_service import COMMANDS_STREAM, make_registry

pytestmark = pytest.mark.unit


@pytest.fixture
async def broker() -> AsyncIterator[InProcessBroker]:
    broker = InProcessBroker(prefix="t:", max_deliveries=3, redelivery_delay=0.001)
    yield broker
    await broker.stop()


def a_message() -> dict[str, object]:
    return make_registry().to_message(AddFactory.build())


async def test_each_group_receives_every_message_once(broker: InProcessBroker) -> None:
    received: dict[str, list[str]] = {"a": [], "b": []}
    for group in received:

        async def handler(delivery: Delivery, group: str = group) -> None:
            received[group].append(delivery.message["message_id"])

        broker.subscribe(COMMANDS_STREAM, handler, group=group)
    await broker.start()
    message = a_message()

    await broker.publish(COMMANDS_STREAM, message)
    await broker.settled()

    assert received == {"a": [message["message_id"]], "b": [message["message_id"]]}


async def test_a_failing_handler_gets_the_message_again(broker: InProcessBroker) -> None:
    attempts: list[int] = []

    async def flaky(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt == 1:
            raise RuntimeError("database restarting")

    broker.subscribe(COMMANDS_STREAM, flaky, group="g")
    await broker.start()

    await broker.publish(COMMANDS_STREAM, a_message())
    await broker.settled()

    assert (attempts, dict(broker.dead)) == ([1, 2], {})


async def test_a_message_that_keeps_failing_goes_to_the_dead_letter_stream(
    broker: InProcessBroker,
) -> None:
    async def broken(delivery: Delivery) -> None:
        raise RuntimeError("always")

    broker.subscribe(COMMANDS_STREAM, broken, group="g")
    await broker.start()

    await broker.publish(COMMANDS_STREAM, a_message())
    await broker.settled()

    [letter] = broker.dead["t:" + COMMANDS_STREAM + ".dead"]
    assert (letter.attempts, letter.reason) == (3, "failed 3 times, last: RuntimeError: always")


async def test_a_malformed_message_is_dead_lettered_at_once(broker: InProcessBroker) -> None:
    handled: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(delivery)
        make_registry().from_message(delivery.message)

    broker.subscribe(COMMANDS_STREAM, handler, group="g")
    await broker.start()
    message = a_message()
    message["type"] = "Explode"

    await broker.publish(COMMANDS_STREAM, message)
    await broker.settled()

    [letter] = broker.dead["t:" + COMMANDS_STREAM + ".dead"]
    assert (letter.attempts, letter.raw) == (1, encode(message))
    assert "unknown message type 'Explode'" in letter.reason
    assert len(handled) == 1


async def test_publishing_a_value_that_is_not_json_fails_at_once(broker: InProcessBroker) -> None:
    with pytest.raises(TypeError):
        await broker.publish(COMMANDS_STREAM, {"message_id": object()})


def test_the_broker_url_picks_the_adapter() -> None:
    assert isinstance(create_broker(None, prefix="p:"), InProcessBroker)
    with pytest.raises(BrokerConfigurationError, match="unsupported scheme 'kafka'"):
        create_broker("kafka://guest:secret@localhost/")


def test_malformed_is_a_value_error_so_callers_can_catch_it_broadly() -> None:
    assert issubclass(MalformedMessage, ValueError)


async def test_every_delivery_is_logged_once_with_its_id_outcome_and_duration(
    broker: InProcessBroker, caplog: pytest.LogCaptureFixture
) -> None:
    async def fails_once(delivery: Delivery) -> None:
        if delivery.attempt == 1:
            raise RuntimeError("transient")

    broker.subscribe(COMMANDS_STREAM, fails_once, group="g")
    await broker.start()
    message = a_message()

    with caplog.at_level("INFO", logger="adapters.brokers.base"):
        await broker.publish(COMMANDS_STREAM, message)
        await broker.settled()

    lines = [r for r in caplog.records if r.getMessage() == "message handled"]
    assert [(r.message_id, r.attempt, r.outcome) for r in lines] == [  # type: ignore[attr-defined]
        (message["message_id"], 1, "failed_will_retry"),
        (message["message_id"], 2, "handled"),
    ]
    assert all(r.duration_ms >= 0 for r in lines)  # type: ignore[attr-defined]
