"""The Redis Streams adapter on a real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import asyncpg
import pytest
import redis.asyncio as aioredis

from adapters.brokers import Delivery
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.serialization import encode
from tests.messaging.factories import AddFactory
from tests.messaging.sample_service import COMMANDS_STREAM, EVENTS_STREAM, make_registry
from tests.messaging.support import stream_entries, wait_until

pytestmark = pytest.mark.integration

BrokerFactory = Callable[..., RedisStreamsBroker]
GROUP = "orders"


@pytest.fixture
async def make_broker(redis_url: str, stream_prefix: str) -> AsyncIterator[BrokerFactory]:
    made: list[RedisStreamsBroker] = []

    def make(**options: int) -> RedisStreamsBroker:
        options = {"claim_idle_ms": 100, "poll_ms": 20, **options}
        broker = RedisStreamsBroker(redis_url, prefix=stream_prefix, **options)
        made.append(broker)
        return broker

    try:
        yield make
    finally:
        for broker in made:
            await broker.stop()


def a_command_text() -> str:
    return encode(make_registry().to_message(AddFactory.build()))


def nothing_pending(client: aioredis.Redis, stream: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        summary = await client.xpending(stream, GROUP)
        return int(summary["pending"]) == 0

    return check


class Recorder:
    """A delivery handler that keeps what it got and fails the first ``failures`` times."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.deliveries: list[Delivery] = []

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if len(self.deliveries) <= self.failures:
            raise RuntimeError(f"failure {len(self.deliveries)}")


async def test_a_published_entry_carries_the_message_in_its_data_field(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    broker = make_broker()
    await broker.start()
    message = make_registry().to_message(AddFactory.build())

    await broker.publish(EVENTS_STREAM, message, {"key": "Counter:1"})

    [fields] = await stream_entries(redis_client, stream_prefix + EVENTS_STREAM)
    assert json.loads(fields["data"]) == message
    assert json.loads(fields["headers"]) == {"key": "Counter:1"}


async def test_an_entry_added_by_any_client_before_the_consumer_started_is_handled_and_acked(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    stream = stream_prefix + COMMANDS_STREAM
    text = a_command_text()
    await redis_client.xadd(stream, {"data": text})
    recorder = Recorder()
    broker = make_broker()
    broker.subscribe(COMMANDS_STREAM, recorder, group=GROUP)

    await broker.start()

    await wait_until(lambda: len(recorder.deliveries) == 1, "the delivery")
    await wait_until(nothing_pending(redis_client, stream), "the acknowledgement")
    assert (recorder.deliveries[0].raw, recorder.deliveries[0].attempt) == (text, 1)


async def test_a_message_whose_handler_failed_is_delivered_again(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    recorder = Recorder(failures=1)
    broker = make_broker()
    broker.subscribe(COMMANDS_STREAM, recorder, group=GROUP)
    await broker.start()

    await redis_client.xadd(stream_prefix + COMMANDS_STREAM, {"data": a_command_text()})

    await wait_until(lambda: len(recorder.deliveries) == 2, "the redelivery")
    await wait_until(nothing_pending(redis_client, stream_prefix + COMMANDS_STREAM), "the ack")
    assert [delivery.attempt for delivery in recorder.deliveries] == [1, 2]


async def test_a_message_that_keeps_failing_goes_to_the_dead_letter_stream_with_the_reason(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    recorder = Recorder(failures=100)
    broker = make_broker(max_deliveries=2)
    broker.subscribe(COMMANDS_STREAM, recorder, group=GROUP)
    await broker.start()
    text = a_command_text()

    await redis_client.xadd(stream_prefix + COMMANDS_STREAM, {"data": text})

    dead = stream_prefix + COMMANDS_STREAM + ".dead"

    async def dead_lettered() -> bool:
        return bool(await stream_entries(redis_client, dead))

    await wait_until(dead_lettered, "the dead letter")
    [fields] = await stream_entries(redis_client, dead)
    assert fields["data"] == text
    assert fields["reason"] == "failed 2 times, last: RuntimeError: failure 2"
    await wait_until(nothing_pending(redis_client, stream_prefix + COMMANDS_STREAM), "the ack")


async def test_an_unparseable_entry_is_dead_lettered_at_once_and_blocks_nothing(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    recorder = Recorder()
    broker = make_broker()
    broker.subscribe(COMMANDS_STREAM, recorder, group=GROUP)
    await broker.start()
    stream = stream_prefix + COMMANDS_STREAM

    await redis_client.xadd(stream, {"data": "{not json"})
    await redis_client.xadd(stream, {"data": a_command_text()})

    await wait_until(lambda: len(recorder.deliveries) == 1, "the message behind it")
    [fields] = await stream_entries(redis_client, stream + ".dead")
    assert fields["data"] == "{not json"
    assert fields["reason"].startswith("message is not valid JSON")


async def test_an_entry_taken_by_a_consumer_that_died_is_handled_by_another(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    stream = stream_prefix + COMMANDS_STREAM
    await redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    await redis_client.xadd(stream, {"data": a_command_text()})
    # A consumer reads the entry and dies before acknowledging it.
    await redis_client.xreadgroup(GROUP, "dead-consumer", {stream: ">"}, count=1)
    recorder = Recorder()
    broker = make_broker()
    broker.subscribe(COMMANDS_STREAM, recorder, group=GROUP)

    await broker.start()

    await wait_until(lambda: len(recorder.deliveries) == 1, "the reclaimed delivery")
    await wait_until(nothing_pending(redis_client, stream), "the ack")
    assert recorder.deliveries[0].attempt == 2


class PendingAtEachDelivery:
    """A delivery handler that notes how many entries of the group are still unacknowledged
    each time it is called, and fails the deliveries ``fail`` names (by position) the
    first time round."""

    def __init__(
        self, client: aioredis.Redis, stream: str, fail: Mapping[int, Exception] | None = None
    ) -> None:
        self.client, self.stream = client, stream
        self.fail = dict(fail or {})
        self.pending: list[int] = []

    async def __call__(self, delivery: Delivery) -> None:
        summary = await self.client.xpending(self.stream, GROUP)
        self.pending.append(int(summary["pending"]))
        failure = self.fail.pop(len(self.pending), None)
        if failure is not None:
            raise failure


async def queue_commands(client: aioredis.Redis, stream: str, count: int) -> list[bytes | str]:
    """``count`` commands on ``stream`` before any consumer runs: one read takes them all."""
    return [await client.xadd(stream, {"data": a_command_text()}) for _ in range(count)]


async def test_the_entries_of_one_read_are_acknowledged_together_after_the_last_one_was_handled(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    stream = stream_prefix + COMMANDS_STREAM
    await queue_commands(redis_client, stream, 3)
    handler = PendingAtEachDelivery(redis_client, stream)
    broker = make_broker()
    broker.subscribe(COMMANDS_STREAM, handler, group=GROUP)

    await broker.start()

    # One XACK for the read instead of one per entry; each entry was handled before it.
    await wait_until(nothing_pending(redis_client, stream), "the acknowledgement")
    assert handler.pending == [3, 3, 3]


async def test_a_failed_entry_of_a_read_stays_pending_while_the_others_are_acknowledged(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    stream = stream_prefix + COMMANDS_STREAM
    ids = await queue_commands(redis_client, stream, 3)
    handler = PendingAtEachDelivery(redis_client, stream, {2: RuntimeError("the second fails")})
    broker = make_broker(claim_idle_ms=60_000)  # not redelivered while the test looks
    broker.subscribe(COMMANDS_STREAM, handler, group=GROUP)

    await broker.start()

    async def only_the_failed_one_pending() -> bool:
        entries = await redis_client.xpending_range(stream, GROUP, min="-", max="+", count=10)
        return [entry["message_id"] for entry in entries] == [ids[1]]

    await wait_until(only_the_failed_one_pending, "the others acknowledged")


async def test_what_a_read_committed_is_acknowledged_before_the_consumer_pauses_for_an_outage(
    make_broker: BrokerFactory, redis_client: aioredis.Redis, stream_prefix: str
) -> None:
    stream = stream_prefix + COMMANDS_STREAM
    await queue_commands(redis_client, stream, 3)
    outage = asyncpg.exceptions.ConnectionDoesNotExistError("the database went away")
    handler = PendingAtEachDelivery(redis_client, stream, {2: outage})
    broker = make_broker(claim_idle_ms=60_000)
    broker.outage_pause_min = 0.01
    broker.subscribe(COMMANDS_STREAM, handler, group=GROUP)

    await broker.start()

    await wait_until(lambda: len(handler.pending) == 3, "the three deliveries")
    # The first was acknowledged when the second failed, before the pause: only the
    # second (left for redelivery) and the third (in hand) are pending.
    assert handler.pending == [3, 3, 2]
