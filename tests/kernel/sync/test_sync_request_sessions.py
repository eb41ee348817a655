"""``SyncSessionDep`` on ``def`` routes: the commit runs before the response, on both databases.

The same app as the async tests (``tests/kernel/http_app``), its endpoints
written as plain functions: an orphan child passes its INSERT and fails at
COMMIT (a deferred foreign key), so a 2xx would prove a commit after the response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from adapters.sync_database import SyncSessionDep, get_db_context, sync_session_manager
from tests.kernel.http_app import children, http_metadata, parents
from tests.support.databases import sync_url_of

pytestmark = pytest.mark.integration


def same_request_session(db: SyncSessionDep) -> Session:
    return db


# Module level: FastAPI resolves these (string) annotations in the module's namespace.
SameRequestSession = Annotated[Session, Depends(same_request_session)]


def build_sync_app() -> FastAPI:
    app = FastAPI()

    @app.post("/parents/{parent_id}", status_code=201)
    def add_parent(parent_id: int, db: SyncSessionDep) -> dict[str, int]:
        db.execute(insert(parents).values(id=parent_id))
        return {"id": parent_id}

    @app.post("/parents/{parent_id}/children", status_code=201)
    def add_child(parent_id: int, db: SyncSessionDep) -> dict[str, int]:
        db.execute(insert(children).values(parent_id=parent_id))
        return {"parent_id": parent_id}

    @app.get("/parents/count")
    def count_parents(db: SyncSessionDep) -> dict[str, int]:
        return {"count": db.execute(select(func.count()).select_from(parents)).scalar_one()}

    @app.get("/sessions")
    def sessions(db: SyncSessionDep, other: SameRequestSession) -> dict[str, int]:
        return {"distinct": len({id(db), id(other)})}

    return app


@pytest.fixture(params=["postgres_url", "sqlite_url"])
def sync_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(request.param)
    return sync_url_of(url)


@pytest.fixture
def database(sync_url: str) -> Iterator[None]:
    """The process-wide ``sync_session_manager`` that ``get_db`` uses, for one test."""
    sync_session_manager.init(sync_url)
    try:
        http_metadata.create_all(sync_session_manager.engine)
        yield
        with sync_session_manager.session() as session:
            session.execute(children.delete())
            session.execute(parents.delete())
            session.commit()
    finally:
        sync_session_manager.close()


@pytest.fixture
async def client(database: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_sync_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
        yield client


def count(table: str) -> int:
    chosen = parents if table == "parents" else children
    with sync_session_manager.session() as session:
        return session.execute(select(func.count()).select_from(chosen)).scalar_one()


async def test_a_commit_that_fails_gives_an_error_status_and_keeps_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/parents/404/children")

    assert response.status_code == 500
    assert count("children") == 0


async def test_a_write_is_visible_to_a_read_right_after_the_2xx(client: httpx.AsyncClient) -> None:
    assert (await client.post("/parents/1")).status_code == 201

    read = await client.get("/parents/count")

    assert read.json() == {"count": 1}


async def test_a_valid_deferred_reference_commits(client: httpx.AsyncClient) -> None:
    await client.post("/parents/7")

    response = await client.post("/parents/7/children")

    assert response.status_code == 201
    assert count("children") == 1


async def test_every_dependency_of_one_request_receives_the_same_session(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/sessions")

    assert response.json() == {"distinct": 1}


def test_get_db_context_commits_on_success(database: None) -> None:
    with get_db_context() as session:
        session.execute(insert(parents).values(id=1))

    assert count("parents") == 1


def test_get_db_context_rolls_back_and_reraises_on_error(database: None) -> None:
    def insert_then_fail() -> None:
        with get_db_context() as session:
            session.execute(insert(parents).values(id=1))
            raise LookupError

    with pytest.raises(LookupError):
        insert_then_fail()

    assert count("parents") == 0
