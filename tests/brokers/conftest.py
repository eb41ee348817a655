"""Fixtures of the broker contract tests.

- ``rabbitmq_url``: the RabbitMQ of ``KEEL_TEST_RABBITMQ_URL`` (default: the
  local server, guest/guest). Without it these tests skip — under CI
  (``CI`` set) they fail.
- ``broker_factory``: a :class:`~tests.brokers.harness.BrokerHarness`,
  parametrised over every backend: ``memory`` (unit), ``redis`` and
  ``rabbitmq`` (integration), each on stream names of this test's own.
- ``durable_broker_factory``: the same over the server backends only, for
  behaviours that need a broker outliving its consumers (a consumer killed,
  a group that comes back).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aio_pika
import pytest

from adapters.database import safe_url
from tests.brokers.harness import (
    BrokerHarness,
    InProcessHarness,
    RabbitMQHarness,
    RedisHarness,
)

MEMORY = pytest.param("memory", marks=pytest.mark.unit)
REDIS = pytest.param("redis", marks=pytest.mark.integration)
RABBITMQ = pytest.param("rabbitmq", marks=pytest.mark.integration)


@pytest.fixture(scope="session")
async def rabbitmq_url() -> str:
    """The RabbitMQ of ``KEEL_TEST_RABBITMQ_URL``. Never skipped under CI."""
    url = os.environ.get("KEEL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    try:
        connection = await aio_pika.connect(url, timeout=3)
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        message = f"no RabbitMQ answers at {safe_url(url)}: {type(exc).__name__}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI never skips RabbitMQ tests)")
        pytest.skip(message)
    await connection.close()
    return url


def _harness(request: pytest.FixtureRequest) -> BrokerHarness:
    # The server fixtures are resolved lazily, so the memory variant needs no server.
    if request.param == "memory":
        return InProcessHarness()
    if request.param == "redis":
        return RedisHarness(
            request.getfixturevalue("redis_url"), request.getfixturevalue("stream_prefix")
        )
    return RabbitMQHarness(request.getfixturevalue("rabbitmq_url"))


@pytest.fixture(params=[MEMORY, REDIS, RABBITMQ])
def _any_harness(request: pytest.FixtureRequest) -> BrokerHarness:
    return _harness(request)


@pytest.fixture(params=[REDIS, RABBITMQ])
def _durable_harness(request: pytest.FixtureRequest) -> BrokerHarness:
    return _harness(request)


@pytest.fixture
async def broker_factory(_any_harness: BrokerHarness) -> AsyncIterator[BrokerHarness]:
    try:
        yield _any_harness
    finally:
        await _any_harness.close()


@pytest.fixture
async def durable_broker_factory(_durable_harness: BrokerHarness) -> AsyncIterator[BrokerHarness]:
    try:
        yield _durable_harness
    finally:
        await _durable_harness.close()
