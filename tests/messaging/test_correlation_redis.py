"""Correlation and causation ids end to end over Redis Streams and PostgreSQL (contract v2).

The catalog (the kernel's test context) served as ``keel serve`` would with
``BROKER_URL=redis://...`` and ``SERVE_CONSUMER=true``: HTTP request → outbox
row → relay → ``catalog.events`` on Redis → the catalog's consumer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager

from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.serialization import encode
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from entrypoints.messaging import serving_messages
from tests.catalog import COMMANDS_STREAM, EVENTS_STREAM
from tests.catalog import context as catalog
from tests.messaging.support import stream_entries, wait_until
from tests.support import postgres

pytestmark = pytest.mark.integration

REQUEST_ID = "req-corr-0001"


@pytest.fixture
async def container(
    postgres_admin_dsn: str, redis_url: str, stream_prefix: str
) -> AsyncIterator[Container]:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_correlation")
    manager = DatabaseSessionManager()
    try:
        url = postgres.sqlalchemy_url(postgres_admin_dsn, name)
        assert catalog.migrations is not None
        await upgrade_to_head_async(url, [catalog.migrations])
        settings = Settings(
            database_url=url,
            keel_contexts="tests.catalog",
            broker_url=redis_url,
            stream_prefix=stream_prefix,
            serve_consumer=True,
            broker_claim_idle_ms=200,
        )
        built = bootstrap(settings, manager=manager)
        try:
            yield built
        finally:
            await manager.close()
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container=container)
    async with (
        LifespanManager(app) as running,
        serving_messages(container),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app), base_url="http://catalog.test"
        ) as http,
    ):
        yield http


async def _events(client: aioredis.Redis, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(f["data"]) for f in await stream_entries(client, prefix + EVENTS_STREAM)]


async def _reservations(container: Container) -> int:
    async with catalog.wiring(container).uow_factory() as uow:
        return len(await uow.reservations.list())


async def _add_product(client: httpx.AsyncClient) -> None:
    added = await client.post(
        "/catalog/products", json={"sku": "K-1", "name": "Kite", "on_hand": 9}
    )
    assert added.status_code == 201, added.text


async def _handled_log_line(
    caplog: pytest.LogCaptureFixture, stream: str, message_id: str
) -> logging.LogRecord:
    found = [
        record
        for record in caplog.records
        if record.getMessage() == "message handled"
        and getattr(record, "stream", None) == stream
        and getattr(record, "message_id", None) == message_id
    ]
    assert found, f"no 'message handled' line for {message_id}"
    return found[-1]


async def test_an_event_caused_by_a_request_carries_its_x_request_id_to_the_consumer(
    container: Container,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    stream_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.brokers.base")
    await _add_product(client)

    response = await client.post(
        "/catalog/products/K-1/reservations",
        json={"quantity": 1, "order_ref": "o-1"},
        headers={"X-Request-ID": REQUEST_ID},
    )
    assert response.headers["X-Request-ID"] == REQUEST_ID
    await wait_until(lambda: _reservations_are(container, 1), "the consumer's effect")

    [event] = await _events(redis_client, stream_prefix)
    assert (event["correlation_id"], event["causation_id"]) == (REQUEST_ID, REQUEST_ID)
    line = await _handled_log_line(caplog, EVENTS_STREAM, event["message_id"])
    assert (getattr(line, "correlation_id", None), getattr(line, "causation_id", None)) == (
        REQUEST_ID,
        event["message_id"],
    )


async def test_an_event_caused_by_a_request_without_an_id_carries_the_id_keel_assigned(
    container: Container,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    stream_prefix: str,
) -> None:
    await _add_product(client)

    response = await client.post(
        "/catalog/products/K-1/reservations", json={"quantity": 1, "order_ref": "o-2"}
    )
    await wait_until(lambda: _reservations_are(container, 1), "the consumer's effect")

    [event] = await _events(redis_client, stream_prefix)
    assigned = response.headers["X-Request-ID"]
    assert (event["correlation_id"], event["causation_id"]) == (assigned, assigned)


@pytest.mark.parametrize(
    ("sent_correlation", "expected_correlation"),
    [("conversation-7", "conversation-7"), (None, "cmd-0007")],
    ids=["with-a-correlation-id", "without-one"],
)
async def test_an_event_caused_by_a_command_is_correlated_with_it_and_caused_by_its_id(
    container: Container,
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    stream_prefix: str,
    sent_correlation: str | None,
    expected_correlation: str,
) -> None:
    await _add_product(client)
    command: dict[str, Any] = {
        "message_id": "cmd-0007",
        "type": "ReserveStock",
        "occurred_at": "2026-01-01T12:00:00Z",
        "payload": {"sku": "K-1", "quantity": 2, "order_ref": "o-3"},
    }
    if sent_correlation is not None:
        command["correlation_id"] = sent_correlation

    await redis_client.xadd(stream_prefix + COMMANDS_STREAM, {"data": encode(command)})
    await wait_until(lambda: _reservations_are(container, 1), "the consumer's effect")

    [event] = await _events(redis_client, stream_prefix)
    assert (event["correlation_id"], event["causation_id"]) == (expected_correlation, "cmd-0007")


async def _reservations_are(container: Container, expected: int) -> bool:
    return await _reservations(container) == expected
