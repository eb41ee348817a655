"""One trace from the HTTP request through the outbox, the relay and the consumer's effect.

The catalog (the kernel's test context) on PostgreSQL with the in-process
broker, spans recorded by the SDK's ``InMemorySpanExporter``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from adapters import tracing
from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from entrypoints.messaging import serving_messages
from tests.catalog import EVENTS_STREAM
from tests.catalog import context as catalog
from tests.kernel.spans import named, recording
from tests.messaging.support import wait_until
from tests.support import postgres

pytestmark = pytest.mark.integration

RESERVE_ROUTE = "POST /catalog/products/{sku}/reservations"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recording() as exporter:
        yield exporter


@pytest.fixture
async def container(
    postgres_admin_dsn: str, spans: InMemorySpanExporter
) -> AsyncIterator[Container]:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_tracing")
    manager = DatabaseSessionManager()
    try:
        url = postgres.sqlalchemy_url(postgres_admin_dsn, name)
        assert catalog.migrations is not None
        await upgrade_to_head_async(url, [catalog.migrations])
        built = bootstrap(
            Settings(database_url=url, keel_contexts="tests.catalog"), manager=manager
        )
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


async def _reserved(container: Container) -> bool:
    async with catalog.wiring(container).uow_factory() as uow:
        return len(await uow.reservations.list()) == 1


async def _reserve(client: httpx.AsyncClient, container: Container) -> None:
    added = await client.post("/catalog/products", json={"sku": "T-1", "name": "Tea", "on_hand": 5})
    assert added.status_code == 201, added.text
    reserved = await client.post(
        "/catalog/products/T-1/reservations", json={"quantity": 1, "order_ref": "o-1"}
    )
    assert reserved.status_code == 201, reserved.text
    await wait_until(lambda: _reserved(container), "the consumer recorded the reservation")


def _request_trace(spans: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    [server] = named(spans.get_finished_spans(), RESERVE_ROUTE)
    assert server.context is not None
    trace_id = server.context.trace_id
    return server, [
        span
        for span in spans.get_finished_spans()
        if span.context is not None and span.context.trace_id == trace_id
    ]


async def test_the_request_its_unit_of_work_the_publish_and_the_consumer_share_one_trace(
    spans: InMemorySpanExporter, container: Container, client: httpx.AsyncClient
) -> None:
    assert tracing.active()

    await _reserve(client, container)

    server, in_trace = _request_trace(spans)
    assert server.kind is SpanKind.SERVER
    kinds = {(span.name, span.kind) for span in in_trace}
    assert ("unit of work", SpanKind.INTERNAL) in kinds
    assert (f"publish {EVENTS_STREAM}", SpanKind.PRODUCER) in kinds
    assert (f"process {EVENTS_STREAM}", SpanKind.CONSUMER) in kinds


async def test_the_consumers_unit_of_work_and_its_sql_are_children_of_its_process_span(
    spans: InMemorySpanExporter, container: Container, client: httpx.AsyncClient
) -> None:
    await _reserve(client, container)

    _, in_trace = _request_trace(spans)
    [process] = named(in_trace, f"process {EVENTS_STREAM}")
    assert process.context is not None
    children = [
        span
        for span in in_trace
        if span.parent is not None and span.parent.span_id == process.context.span_id
    ]
    units = [span for span in children if span.name == "unit of work"]
    assert units, [span.name for span in children]
    unit_ids = {span.context.span_id for span in units if span.context is not None}
    sql = [
        span
        for span in in_trace
        if span.parent is not None
        and span.parent.span_id in unit_ids
        and _database_system(span) == "postgresql"
    ]
    assert sql, "no SQL span under the consumer's unit of work"


async def test_the_server_span_is_named_after_the_route_template_and_tagged_with_the_request_id(
    spans: InMemorySpanExporter, container: Container, client: httpx.AsyncClient
) -> None:
    await _reserve(client, container)

    server, _ = _request_trace(spans)
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/catalog/products/{sku}/reservations"
    assert "keel.request_id" in server.attributes


def _database_system(span: ReadableSpan) -> object:
    attributes = span.attributes or {}
    return attributes.get("db.system.name", attributes.get("db.system"))


async def test_probes_and_scrapes_are_not_traced(
    spans: InMemorySpanExporter, client: httpx.AsyncClient
) -> None:
    for path in ("/health", "/metrics"):
        assert (await client.get(path)).status_code == 200

    assert [s.name for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER] == []
