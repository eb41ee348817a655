"""Every error is application/problem+json: routing errors, outages and bugs included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.database import DatabaseSessionManager, session_manager
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from service_layer.ledger.unit_of_work import LedgerUnitOfWork
from tests.ledger.e2e.api import assert_problem
from tests.ledger.e2e.conftest import BASE_URL
from tests.ledger.e2e.factories import MovementBody, OpenAccountBody, TransferBody
from tests.ledger.wiring import with_unit_of_work
from tests.support.tokens import bearer_for, new_subject

pytestmark = pytest.mark.e2e

UNREACHABLE_DATABASE = "postgresql+asyncpg://keel:s3cret-pw@127.0.0.1:1/keel"
"""Port 1 on loopback: nothing listens there, so every connection is refused at once."""


@pytest.fixture
async def client_without_database() -> AsyncIterator[httpx.AsyncClient]:
    manager = DatabaseSessionManager()
    container = bootstrap(Settings(database_url=UNREACHABLE_DATABASE), manager=manager)
    app = create_app(container=container)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers=bearer_for(new_subject()),
        ) as http:
            yield http
    finally:
        await manager.close()


class BrokenUnitOfWork(Exception):
    """Stands for a bug: something no handler expects."""


@pytest.fixture
async def client_with_a_bug(
    container: Container,
) -> AsyncIterator[httpx.AsyncClient]:
    def make_unit_of_work() -> LedgerUnitOfWork:
        raise BrokenUnitOfWork("internal detail: table ledger_accounts at 0xdeadbeef")

    # The same wiring around a unit of work that blows up; writes reach it through the bus.
    broken = with_unit_of_work(container, make_unit_of_work)
    app = create_app(container=broken)
    # Starlette answers the 500 and then re-raises for the server to log; httpx
    # would hand that exception to the test instead of the answer.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=bearer_for(new_subject())
    ) as http:
        yield http


async def test_an_unknown_path_answers_404_as_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")

    assert_problem(response, 404, "not_found")


async def test_a_wrong_method_answers_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete(f"/accounts/{uuid4()}")

    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_health_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_answers_ok_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_answers_503_when_the_database_does_not(
    client_without_database: httpx.AsyncClient,
) -> None:
    response = await client_without_database.get("/ready")

    assert_problem(response, 503, "database_unavailable")


async def test_health_answers_ok_even_without_a_database(
    client_without_database: httpx.AsyncClient,
) -> None:
    response = await client_without_database.get("/health")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/accounts", OpenAccountBody.build()),
        ("GET", f"/accounts/{uuid4()}", None),
        ("POST", f"/accounts/{uuid4()}/deposits", MovementBody.build()),
        ("POST", "/transfers", TransferBody.build(source_id=str(uuid4()), target_id=str(uuid4()))),
        ("GET", f"/accounts/{uuid4()}/entries", None),
    ],
    # Named, not numbered by their random ids: every pytest-xdist worker must collect
    # the same test ids.
    ids=["open", "read", "deposit", "transfer", "entries"],
)
async def test_an_unreachable_database_answers_503_with_retry_after(
    client_without_database: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await client_without_database.request(method, path, json=body)

    problem = assert_problem(response, 503, "database_unavailable")
    assert int(response.headers["retry-after"]) > 0
    assert "s3cret-pw" not in response.text
    assert "127.0.0.1" not in problem["detail"]


async def test_an_unexpected_error_answers_500_without_internals(
    client_with_a_bug: httpx.AsyncClient,
) -> None:
    response = await client_with_a_bug.post("/accounts", json=OpenAccountBody.build())

    assert_problem(response, 500, "internal_error")
    assert "deadbeef" not in response.text
    assert "Traceback" not in response.text


async def test_the_app_bootstraps_and_closes_its_own_database_when_given_settings(
    sqlite_url: str,
) -> None:
    app = create_app(Settings(database_url=sqlite_url))

    async with LifespanManager(app) as running:
        transport = httpx.ASGITransport(app=running.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            ready = await http.get("/ready")
        assert session_manager.is_initialised

    assert ready.status_code == 200
    assert not session_manager.is_initialised
