"""Request-scoped sessions: ``AsyncSessionDep`` (``get_db``) and ``DbSessionDep`` (the container).

The proof that matters: the commit runs *before* the response, so a commit
that fails turns into an error status and never into a 2xx that lied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from adapters.container import DbSessionDep, DependencyContainer
from adapters.database import (
    AsyncSessionDep,
    DatabaseSessionManager,
    get_db_context,
    session_manager,
)
from adapters.settings import Settings
from tests.kernel.http_app import build_app, children, http_metadata, parents

pytestmark = pytest.mark.integration


@dataclass
class Served:
    """An app under test, the manager behind its sessions, and a client for it."""

    app: FastAPI
    manager: DatabaseSessionManager
    client: httpx.AsyncClient

    async def count(self, table: str) -> int:
        chosen = parents if table == "parents" else children
        async with self.manager.session() as session:
            return (await session.execute(select(func.count()).select_from(chosen))).scalar_one()


@pytest.fixture(params=[pytest.param("postgres_url"), pytest.param("sqlite_url")])
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(request.param)
    return url


@pytest.fixture
async def global_manager(database_url: str) -> AsyncIterator[DatabaseSessionManager]:
    """The process-wide ``session_manager`` that ``get_db`` uses, initialised for one test."""
    if session_manager.is_initialised:
        pytest.fail("session_manager was left initialised by an earlier test; close it there")
    session_manager.init(database_url)
    try:
        async with session_manager.connect() as connection:
            await connection.run_sync(http_metadata.create_all)
        yield session_manager
        async with session_manager.connect() as connection:
            await connection.execute(children.delete())
            await connection.execute(parents.delete())
    finally:
        await session_manager.close()


@pytest.fixture
async def own_manager(database_url: str) -> AsyncIterator[DatabaseSessionManager]:
    """A manager of the test's own, as a composition root would build for its container."""
    manager = DatabaseSessionManager()
    manager.init(database_url)
    try:
        async with manager.connect() as connection:
            await connection.run_sync(http_metadata.create_all)
        yield manager
        async with manager.connect() as connection:
            await connection.execute(children.delete())
            await connection.execute(parents.delete())
    finally:
        await manager.close()


def client_for(app: FastAPI) -> httpx.AsyncClient:
    # raise_app_exceptions=False: the client sees what a real client would,
    # a 500, instead of the server-side exception.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://keel.test")


@pytest.fixture(params=["AsyncSessionDep", "DbSessionDep"])
def app_under_test(
    request: pytest.FixtureRequest, database_url: str
) -> tuple[FastAPI, DatabaseSessionManager]:
    # A sync fixture: only those may resolve (async) fixtures by name.
    if request.param == "AsyncSessionDep":
        manager: DatabaseSessionManager = request.getfixturevalue("global_manager")
        return build_app(AsyncSessionDep), manager
    manager = request.getfixturevalue("own_manager")
    app = build_app(DbSessionDep)
    app.state.container = DependencyContainer(
        settings=Settings(database_url=database_url),
        session_manager=manager,
    )
    return app, manager


@pytest.fixture
async def served(app_under_test: tuple[FastAPI, DatabaseSessionManager]) -> AsyncIterator[Served]:
    app, manager = app_under_test
    async with client_for(app) as client:
        yield Served(app, manager, client)


async def test_a_commit_that_fails_gives_an_error_status_and_keeps_nothing(
    served: Served,
) -> None:
    response = await served.client.post("/parents/404/children")

    assert response.status_code == 500
    assert await served.count("children") == 0


async def test_a_write_is_visible_to_a_read_right_after_the_2xx(served: Served) -> None:
    created = await served.client.post("/parents/1")
    assert created.status_code == 201

    read = await served.client.get("/parents/count")

    assert read.json() == {"count": 1}
    assert await served.count("parents") == 1


async def test_a_valid_deferred_reference_commits(served: Served) -> None:
    await served.client.post("/parents/7")

    response = await served.client.post("/parents/7/children")

    assert response.status_code == 201
    assert await served.count("children") == 1


async def test_every_dependency_of_one_request_receives_the_same_session(
    served: Served,
) -> None:
    response = await served.client.get("/sessions")

    assert response.json() == {"distinct": 1}


async def test_get_db_context_commits_on_success(global_manager: DatabaseSessionManager) -> None:
    async with get_db_context() as session:
        await session.execute(insert(parents).values(id=1))

    async with global_manager.session() as session:
        assert (await session.execute(select(func.count()).select_from(parents))).scalar_one() == 1


async def test_get_db_context_rolls_back_and_reraises_on_error(
    global_manager: DatabaseSessionManager,
) -> None:
    async def insert_then_fail() -> None:
        async with get_db_context() as session:
            await session.execute(insert(parents).values(id=1))
            raise LookupError

    with pytest.raises(LookupError):
        await insert_then_fail()

    async with global_manager.session() as session:
        assert (await session.execute(select(func.count()).select_from(parents))).scalar_one() == 0
