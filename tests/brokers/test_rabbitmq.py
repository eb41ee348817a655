"""What RabbitMQ adds to the contract: its wire format, single active consumer, declared groups."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest

from adapters.brokers import Delivery
from adapters.brokers.rabbitmq import RabbitMQBroker, group_queue_name
from adapters.serialization import encode
from tests.brokers.harness import GROUP, STREAM, RabbitMQHarness, a_message
from tests.messaging.support import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(rabbitmq_url: str) -> AsyncIterator[RabbitMQHarness]:
    made = RabbitMQHarness(rabbitmq_url)
    try:
        yield made
    finally:
        await made.close()


def rabbit(harness: RabbitMQHarness, **options: object) -> RabbitMQBroker:
    broker = harness.make(**options)
    assert isinstance(broker, RabbitMQBroker)
    return broker


async def test_a_published_message_is_persistent_json_with_its_id_and_headers(
    harness: RabbitMQHarness,
) -> None:
    # basic.get, which this test reads with, is refused on a single-active-consumer queue.
    broker = rabbit(harness, single_active_consumer=False)
    await broker.declare_group(STREAM, GROUP)
    await broker.start()
    message = a_message()

    await broker.publish(STREAM, message, {"key": "Order:1"})

    connection = await aio_pika.connect(harness.rabbitmq_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(group_queue_name(harness.prefix + STREAM, GROUP))
        received = await queue.get(no_ack=True)
    finally:
        await connection.close()
    assert received is not None
    assert (received.body.decode(), received.content_type, received.message_id) == (
        encode(message),
        "application/json",
        message["message_id"],
    )
    assert (received.delivery_mode, (received.headers or {}).get("key")) == (
        aio_pika.DeliveryMode.PERSISTENT,
        "Order:1",
    )


async def test_only_one_member_of_a_group_is_active_so_the_order_holds(
    harness: RabbitMQHarness,
) -> None:
    handled: list[tuple[str, int]] = []

    def member(name: str) -> RabbitMQBroker:
        async def handle(delivery: Delivery) -> None:
            handled.append((name, delivery.message["payload"]["n"]))

        broker = rabbit(harness)
        broker.subscribe(STREAM, handle, group=GROUP)
        return broker

    first, second = member("first"), member("second")
    await first.start()
    await second.start()
    messages = [a_message(n=n) for n in range(20)]

    for message in messages:
        await first.publish(STREAM, message)

    await wait_until(lambda: len(handled) == 20, "every delivery")
    assert [n for _, n in handled] == list(range(20))
    assert len({name for name, _ in handled}) == 1


async def test_a_standby_member_takes_over_when_the_active_one_stops(
    harness: RabbitMQHarness,
) -> None:
    handled: list[str] = []

    def member(name: str) -> RabbitMQBroker:
        async def handle(delivery: Delivery) -> None:
            handled.append(name)

        broker = rabbit(harness)
        broker.subscribe(STREAM, handle, group=GROUP)
        return broker

    active, standby = member("active"), member("standby")
    await active.start()
    await standby.start()
    await active.publish(STREAM, a_message())
    await wait_until(lambda: handled == ["active"], "the active member's delivery")

    await active.stop()
    publisher = rabbit(harness)
    await publisher.start()
    await publisher.publish(STREAM, a_message())

    await wait_until(lambda: handled == ["active", "standby"], "the standby's delivery")


async def test_a_declared_group_keeps_what_is_published_before_its_first_consumer(
    harness: RabbitMQHarness,
) -> None:
    publisher = rabbit(harness)
    await publisher.start()
    await publisher.declare_group(STREAM, GROUP)
    message = a_message()

    await publisher.publish(STREAM, message)
    handled: list[str] = []

    async def handle(delivery: Delivery) -> None:
        handled.append(delivery.message["message_id"])

    consumer = rabbit(harness)
    consumer.subscribe(STREAM, handle, group=GROUP)
    await consumer.start()

    await wait_until(lambda: handled == [message["message_id"]], "the delivery")


async def test_a_dead_letter_names_the_reason_the_stream_and_the_attempts_in_its_headers(
    harness: RabbitMQHarness,
) -> None:
    async def fails(delivery: Delivery) -> None:
        raise RuntimeError("no stock")

    broker = rabbit(harness, max_deliveries=2)
    broker.subscribe(STREAM, fails, group=GROUP)
    await broker.start()

    await broker.publish(STREAM, a_message())

    async def dead_lettered() -> bool:
        return bool(await harness.dead_letters(broker, STREAM))

    await wait_until(dead_lettered, "the dead letter")
    connection = await aio_pika.connect(harness.rabbitmq_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(harness.prefix + STREAM + ".dead")
        letter = await queue.get(no_ack=True)
    finally:
        await connection.close()
    assert letter is not None
    application_headers = {k: v for k, v in (letter.headers or {}).items() if k[:2] != "x-"}
    assert application_headers == {
        "reason": "failed 2 times, last: RuntimeError: no stock",
        "stream": STREAM,
        "attempts": "2",
    }
