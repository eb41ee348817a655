"""The broker contract: one behaviour per test, the same for every backend.

Parametrised over the in-process broker, Redis Streams and RabbitMQ by the
``broker_factory`` fixture; the tests that need a broker outliving its
consumers run on the server backends only (``durable_broker_factory``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from adapters.brokers import Delivery
from adapters.serialization import MalformedMessage, encode
from tests.brokers.harness import GROUP, STREAM, BrokerHarness, a_message
from tests.messaging.support import DEADLINE, wait_until

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A handler that keeps its deliveries and fails the first ``failures`` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.deliveries: list[Delivery] = []

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if len(self.deliveries) <= self.failures:
            raise RuntimeError(f"failure {len(self.deliveries)}")

    def ids(self) -> list[str]:
        return [delivery.message["message_id"] for delivery in self.deliveries]


async def test_a_published_message_reaches_a_subscriber_with_its_headers(
    broker_factory: BrokerHarness,
) -> None:
    recorder = Recorder()
    broker = await broker_factory.started(recorder)
    message = a_message(sku="A-1")

    await broker.publish(STREAM, message, {"key": "Order:1", "type": "PlaceOrder"})

    await wait_until(lambda: len(recorder.deliveries) == 1, "the delivery")
    [delivery] = recorder.deliveries
    assert (delivery.message, delivery.headers, delivery.attempt) == (
        message,
        {"key": "Order:1", "type": "PlaceOrder"},
        1,
    )


async def test_every_group_of_a_stream_receives_each_message(
    broker_factory: BrokerHarness,
) -> None:
    billing, shipping = Recorder(), Recorder()
    broker = broker_factory.make()
    broker.subscribe(STREAM, billing, group="billing")
    broker.subscribe(STREAM, shipping, group="shipping")
    await broker.start()
    message = a_message()

    await broker.publish(STREAM, message)

    await wait_until(lambda: billing.ids() == shipping.ids() == [message["message_id"]], "both")


async def test_a_handled_message_is_acknowledged_and_not_delivered_again(
    broker_factory: BrokerHarness,
) -> None:
    recorder = Recorder()
    broker = await broker_factory.started(recorder)
    first, second = a_message(), a_message()

    await broker.publish(STREAM, first)
    await wait_until(lambda: len(recorder.deliveries) == 1, "the first delivery")
    await broker.publish(STREAM, second)
    await wait_until(lambda: len(recorder.deliveries) == 2, "the second delivery")
    await broker_factory.settle_down(broker)

    assert recorder.ids() == [first["message_id"], second["message_id"]]


async def test_a_message_whose_handler_failed_is_delivered_again_as_the_next_attempt(
    broker_factory: BrokerHarness,
) -> None:
    recorder = Recorder(failures=1)
    broker = await broker_factory.started(recorder)
    message = a_message()

    await broker.publish(STREAM, message)

    await wait_until(lambda: len(recorder.deliveries) == 2, "the redelivery")
    assert [(d.message["message_id"], d.attempt) for d in recorder.deliveries] == [
        (message["message_id"], 1),
        (message["message_id"], 2),
    ]


async def test_a_message_that_keeps_failing_is_dead_lettered_with_the_reason_after_max_deliveries(
    broker_factory: BrokerHarness,
) -> None:
    recorder = Recorder(failures=100)
    broker = broker_factory.make(max_deliveries=3)
    broker.subscribe(STREAM, recorder, group=GROUP)
    await broker.start()
    message = a_message()

    await broker.publish(STREAM, message)

    async def dead_lettered() -> bool:
        return bool(await broker_factory.dead_letters(broker, STREAM))

    await wait_until(dead_lettered, "the dead letter")
    [letter] = await broker_factory.dead_letters(broker, STREAM)
    assert (letter.raw, letter.reason) == (
        encode(message),
        "failed 3 times, last: RuntimeError: failure 3",
    )
    await broker_factory.settle_down(broker)
    assert len(recorder.deliveries) == 3


async def test_a_message_its_handler_finds_malformed_is_dead_lettered_at_once(
    broker_factory: BrokerHarness,
) -> None:
    async def refuses(delivery: Delivery) -> None:
        raise MalformedMessage("payload has no 'sku'")

    broker = await broker_factory.started(refuses)
    message = a_message()

    await broker.publish(STREAM, message)

    async def dead_lettered() -> bool:
        return bool(await broker_factory.dead_letters(broker, STREAM))

    await wait_until(dead_lettered, "the dead letter")
    [letter] = await broker_factory.dead_letters(broker, STREAM)
    assert (letter.raw, letter.reason) == (encode(message), "payload has no 'sku'")


async def test_messages_of_a_key_are_handled_in_publish_order_by_a_group(
    broker_factory: BrokerHarness,
) -> None:
    recorder = Recorder()
    broker = await broker_factory.started(recorder)
    messages = [a_message(key=f"Order:{n % 3}", n=n) for n in range(30)]

    for message in messages:
        await broker.publish(STREAM, message, {"key": message["payload"]["key"]})

    await wait_until(lambda: len(recorder.deliveries) == len(messages), "every delivery")
    for key in ("Order:0", "Order:1", "Order:2"):
        sent = [m["payload"]["n"] for m in messages if m["payload"]["key"] == key]
        handled = [d.message["payload"]["n"] for d in recorder.deliveries]
        assert [n for n in handled if n in sent] == sent


# -- brokers that outlive their consumers --------------------------------------------------


async def test_unparseable_text_from_another_client_is_dead_lettered_at_once_and_blocks_nothing(
    durable_broker_factory: BrokerHarness,
) -> None:
    recorder = Recorder()
    broker = await durable_broker_factory.started(recorder)

    await durable_broker_factory.publish_raw(STREAM, "{not json")
    await broker.publish(STREAM, a_message())

    await wait_until(lambda: len(recorder.deliveries) == 1, "the message behind it")
    [letter] = await durable_broker_factory.dead_letters(broker, STREAM)
    assert letter.raw == "{not json"
    assert letter.reason.startswith("message is not valid JSON")


async def test_messages_published_while_a_group_is_down_are_delivered_when_it_returns(
    durable_broker_factory: BrokerHarness,
) -> None:
    first = await durable_broker_factory.started(Recorder())
    await first.stop()
    publisher = durable_broker_factory.make()
    await publisher.start()
    message = a_message()

    await publisher.publish(STREAM, message)
    recorder = Recorder()
    await durable_broker_factory.started(recorder)

    await wait_until(lambda: recorder.ids() == [message["message_id"]], "the delivery")


async def test_stop_lets_the_handler_in_flight_finish_and_its_message_is_not_redelivered(
    durable_broker_factory: BrokerHarness,
) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.set()

    broker = await durable_broker_factory.started(slow)
    await broker.publish(STREAM, a_message())
    await asyncio.wait_for(started.wait(), DEADLINE)

    await broker.stop()

    assert finished.is_set()
    recorder = Recorder()
    await durable_broker_factory.started(recorder)
    await asyncio.sleep(durable_broker_factory.settle * 2)
    assert recorder.deliveries == []


async def test_a_consumer_stopped_as_soon_as_it_has_handled_a_message_logs_no_error(
    broker_factory: BrokerHarness, caplog: pytest.LogCaptureFixture
) -> None:
    handled = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        handled.set()

    broker = await broker_factory.started(handle)
    await broker.publish(STREAM, a_message())
    await asyncio.wait_for(handled.wait(), DEADLINE)

    with caplog.at_level(logging.WARNING):
        await broker.stop()  # while its reads are still going
        await asyncio.sleep(0.1)  # what the ending reads log

    assert [record.getMessage() for record in caplog.records] == []


async def test_a_message_taken_by_a_consumer_that_was_killed_is_delivered_to_another(
    durable_broker_factory: BrokerHarness,
) -> None:
    assert durable_broker_factory.url is not None
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.brokers.consumer_process",
        durable_broker_factory.url,
        durable_broker_factory.prefix,
        STREAM,
        GROUP,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    try:
        ready = await asyncio.wait_for(process.stdout.readline(), DEADLINE)
        assert ready == b"ready\n"
        publisher = durable_broker_factory.make()
        await publisher.start()
        message = a_message()
        await publisher.publish(STREAM, message)
        got = await asyncio.wait_for(process.stdout.readline(), DEADLINE)
        assert got.split() == [b"got", message["message_id"].encode(), b"1"]
    finally:
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), DEADLINE)
    recorder = Recorder()
    survivor = durable_broker_factory.make()
    survivor.subscribe(STREAM, recorder, group=GROUP)

    await survivor.start()

    await wait_until(lambda: len(recorder.deliveries) == 1, "the redelivery")
    [delivery] = recorder.deliveries
    assert (delivery.message["message_id"], delivery.attempt) == (message["message_id"], 2)
