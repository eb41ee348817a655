"""Prometheus metrics: what ``GET /metrics`` shows, how each metric counts, bounded labels.

Values are read from prometheus-client's process-wide registry, so each test
compares a metric before and after what it does.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from adapters import metrics
from adapters.brokers import Delivery, InProcessBroker
from adapters.brokers.consumer import deliver_to_bus
from adapters.database import DatabaseSessionManager
from adapters.repository import InMemoryStore
from adapters.settings import Settings
from domain.errors import ConcurrencyError
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from entrypoints.observability import observing, sample
from service_layer import observers
from service_layer.retry import RetryPolicy, retrying
from tests.catalog import COMMANDS_STREAM, EVENTS_STREAM
from tests.catalog import context as catalog
from tests.catalog.domain import AddProduct, Product, ReserveStock
from tests.catalog.unit_of_work import InMemoryCatalogUnitOfWork

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SHOW = "from adapters import metrics; print(metrics.exposition()[0].decode())"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@functools.cache
def catalog_settings() -> Settings:
    """The fake catalog's settings, read once: they are frozen, and reading them is not free."""
    return Settings(database_url="sqlite+aiosqlite://", keel_contexts="tests.catalog")


@pytest.fixture
async def container() -> AsyncIterator[Container]:
    manager = DatabaseSessionManager()
    try:
        yield bootstrap(catalog_settings(), manager=manager, store=InMemoryStore())
    finally:
        await manager.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container=container)
    async with (
        LifespanManager(app) as running,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app), base_url="http://keel.test"
        ) as http,
    ):
        yield http


async def test_metrics_are_served_in_the_prometheus_text_format(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/health")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    for name in (
        "keel_http_request_duration_seconds",
        "keel_uow_commits_total",
        "keel_uow_conflicts_total",
        "keel_uow_retries_total",
        "keel_db_pool_checked_out",
        "keel_outbox_pending",
        "keel_outbox_oldest_pending_seconds",
        "keel_relay_published_total",
        "keel_messages_total",
        "keel_dead_letters",
    ):
        declared = (f"# TYPE {name} ", f"# TYPE {name.removesuffix('_total')} ")
        assert any(line in response.text for line in declared), name


async def test_the_metrics_endpoint_is_not_part_of_the_api_description(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    assert "/metrics" not in paths


async def test_a_request_is_timed_under_its_route_template_not_its_path(
    client: httpx.AsyncClient,
) -> None:
    labels = {"route": "/catalog/products/{sku}", "method": "GET", "status": "404"}
    before = value("keel_http_request_duration_seconds_count", **labels)

    await client.get("/catalog/products/SKU-12345")

    assert value("keel_http_request_duration_seconds_count", **labels) == before + 1
    assert "SKU-12345" not in (await client.get("/metrics")).text


async def test_a_404_on_an_unknown_path_is_labelled_unmatched(client: httpx.AsyncClient) -> None:
    labels = {"route": "unmatched", "method": "GET", "status": "404"}
    before = value("keel_http_request_duration_seconds_count", **labels)

    await client.get("/no/such/path/42")

    assert value("keel_http_request_duration_seconds_count", **labels) == before + 1
    assert "/no/such/path" not in (await client.get("/metrics")).text


async def test_an_unknown_method_is_labelled_other(client: httpx.AsyncClient) -> None:
    labels = {"route": "/health", "method": "other", "status": "405"}
    before = value("keel_http_request_duration_seconds_count", **labels)

    await client.request("BREW", "/health")

    assert value("keel_http_request_duration_seconds_count", **labels) == before + 1


async def test_metrics_enabled_false_serves_no_metrics() -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite://", keel_contexts="tests.catalog", metrics_enabled=False
    )
    container = bootstrap(settings, manager=DatabaseSessionManager(), store=InMemoryStore())
    app = create_app(container=container)
    async with (
        LifespanManager(app) as running,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app), base_url="http://keel.test"
        ) as http,
    ):
        response = await http.get("/metrics")

    assert response.status_code == 404


async def test_commits_are_counted_per_unit_of_work_class(container: Container) -> None:
    labels = {"unit_of_work": "InMemoryCatalogUnitOfWork"}
    before = value("keel_uow_commits_total", **labels)

    await catalog.wiring(container).bus.handle(AddProduct(sku="M-1", name="Mug", on_hand=1))

    assert value("keel_uow_commits_total", **labels) == before + 1


async def test_a_unit_of_work_that_lost_a_race_counts_as_a_conflict() -> None:
    observers.attach(metrics.UNIT_OF_WORK_METRICS)
    store = InMemoryStore()
    async with InMemoryCatalogUnitOfWork(store) as uow:
        uow.products.add(Product("C-1", "Cup", 2))
        await uow.commit()
    labels = {"unit_of_work": "InMemoryCatalogUnitOfWork"}
    before = value("keel_uow_conflicts_total", **labels)

    with pytest.raises(ConcurrencyError):
        await _two_writers_reserve_the_same_cup(store)

    assert value("keel_uow_conflicts_total", **labels) == before + 1


async def _two_writers_reserve_the_same_cup(store: InMemoryStore) -> None:
    first, second = InMemoryCatalogUnitOfWork(store), InMemoryCatalogUnitOfWork(store)
    async with first, second:
        for uow in (first, second):
            product = await uow.products.get("C-1")
            assert product is not None
            product.reserve(1, "o")
        await first.commit()
        await second.commit()


async def test_a_retry_after_a_conflict_is_counted(container: Container) -> None:
    before = value("keel_uow_retries_total")
    runs = 0

    async def loses_the_first_race() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ConcurrencyError("another writer won")

    await retrying(loses_the_first_race, RetryPolicy(attempts=3, base_delay=0, max_delay=0))

    assert value("keel_uow_retries_total") == before + 1


async def test_delivered_messages_are_counted_as_applied_duplicate_or_dead(
    container: Container,
) -> None:
    broker = InProcessBroker()
    bus = catalog.wiring(container).bus
    broker.subscribe(COMMANDS_STREAM, deliver_to_bus(bus, container.registry), group="g")
    command = container.registry.to_message(AddProduct(sku="D-1", name="Desk", on_hand=1))

    def count(outcome: str) -> float:
        return value("keel_messages_total", stream=COMMANDS_STREAM, outcome=outcome)

    before = {outcome: count(outcome) for outcome in metrics.MESSAGE_OUTCOMES}
    async with broker:
        await broker.publish(COMMANDS_STREAM, command)
        await broker.publish(COMMANDS_STREAM, command)  # a redelivery
        await broker.publish(COMMANDS_STREAM, {"not": "a message"})
        await broker.settled()

    assert {outcome: count(outcome) - before[outcome] for outcome in before} == {
        "applied": 1,
        "duplicate": 1,
        "rejected": 0,
        "dead": 1,
    }


async def test_a_command_refused_by_a_domain_rule_is_counted_as_rejected(
    container: Container,
) -> None:
    handler = deliver_to_bus(catalog.wiring(container).bus, container.registry)
    message = container.registry.to_message(ReserveStock(sku="none", quantity=1, order_ref="o"))
    before = value("keel_messages_total", stream=COMMANDS_STREAM, outcome="rejected")

    await handler(Delivery(COMMANDS_STREAM, message, raw=""))

    assert value("keel_messages_total", stream=COMMANDS_STREAM, outcome="rejected") == before + 1


async def test_the_outbox_gauges_follow_the_backlog(container: Container) -> None:
    bus = catalog.wiring(container).bus
    await bus.handle(AddProduct(sku="O-1", name="Oar", on_hand=3))
    await sample(container)
    assert value("keel_outbox_pending", stream=EVENTS_STREAM) == 0

    await bus.handle(ReserveStock(sku="O-1", quantity=1, order_ref="o-1"))
    await sample(container)

    assert value("keel_outbox_pending", stream=EVENTS_STREAM) == 1
    assert value("keel_outbox_oldest_pending_seconds", stream=EVENTS_STREAM) >= 0

    published = value("keel_relay_published_total", stream=EVENTS_STREAM)
    await container.relay.drain()
    await sample(container)
    assert value("keel_outbox_pending", stream=EVENTS_STREAM) == 0
    assert value("keel_relay_published_total", stream=EVENTS_STREAM) == published + 1


async def test_the_dead_letter_gauge_counts_what_waits_in_each_dead_stream(
    container: Container,
) -> None:
    broker = container.broker
    assert isinstance(broker, InProcessBroker)
    await broker.dead_letter(COMMANDS_STREAM, "{}", "broken")
    await broker.dead_letter(COMMANDS_STREAM, "{}", "broken again")

    await sample(container)

    assert value("keel_dead_letters", stream=COMMANDS_STREAM) == 2
    assert value("keel_dead_letters", stream=EVENTS_STREAM) == 0


@pytest.mark.integration
async def test_a_worker_serves_its_metrics_on_metrics_port(unused_tcp_port: int) -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite://",
        keel_contexts="tests.catalog",
        metrics_port=unused_tcp_port,
        metrics_interval=0.05,
    )
    container = bootstrap(settings, manager=DatabaseSessionManager(), store=InMemoryStore())

    async with observing(container, serve_port=True), httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{unused_tcp_port}/metrics"
        response = await http.get(url)

    assert response.status_code == 200
    assert "keel_outbox_pending" in response.text


@pytest.mark.integration
def test_several_processes_metrics_are_summed_through_the_multiprocess_directory(
    tmp_path: Path,
) -> None:
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from adapters import metrics; metrics.count_message('s.commands', 'applied')"
    for _ in range(2):  # two worker processes, each counting one message
        subprocess.run([sys.executable, "-c", count], env=environment, cwd=ROOT, check=True)

    shown = subprocess.run(
        [sys.executable, "-c", SHOW],
        env=environment,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout

    assert 'keel_messages_total{outcome="applied",stream="s.commands"} 2.0' in shown
