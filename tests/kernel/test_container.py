"""DependencyContainer: reached from a request, and usable outside one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from adapters.container import ContainerDep, DependencyContainer
from adapters.database import DatabaseSessionManager
from adapters.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[DependencyContainer]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'container.db'}"
    manager = DatabaseSessionManager()
    manager.init(url)
    try:
        yield DependencyContainer(
            settings=Settings(database_url=url),
            session_manager=manager,
        )
    finally:
        await manager.close()


def app_reporting_its_container() -> FastAPI:
    app = FastAPI()

    @app.get("/container")
    async def which(container: ContainerDep) -> dict[str, int]:
        return {"id": id(container)}

    return app


async def test_get_container_returns_the_container_on_app_state(
    container: DependencyContainer,
) -> None:
    app = app_reporting_its_container()
    app.state.container = container
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
        response = await client.get("/container")

    assert response.json() == {"id": id(container)}


async def test_get_container_without_one_names_where_it_should_be() -> None:
    transport = httpx.ASGITransport(app=app_reporting_its_container())

    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
        with pytest.raises(
            RuntimeError,
            match=r"no DependencyContainer on app\.state\.container; build the app with "
            r"entrypoints\.http\.app\.create_app\(\)",
        ):
            await client.get("/container")


async def test_the_session_factory_works_outside_a_request(
    container: DependencyContainer,
) -> None:
    async with container.db_session_factory() as session:
        assert (await session.execute(text("select 1"))).scalar_one() == 1
