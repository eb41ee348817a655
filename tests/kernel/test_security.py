"""HTTP hardening every Keel app has: security headers, trusted hosts, CORS on request, docs off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.settings import load_settings
from entrypoints.http.app import create_app

pytestmark = pytest.mark.e2e

App = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app(tmp_path: Path) -> App:
    """``async with app(**settings) as http``: the kernel's app alone, on a SQLite file."""

    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = load_settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", keel_contexts="", **overrides
        )
        built = create_app(settings)
        async with (
            LifespanManager(built) as started,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=started.app), base_url="http://127.0.0.1"
            ) as http,
        ):
            yield http

    return running


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json", "/no-such-page"])
async def test_every_response_carries_the_security_headers(app: App, path: str) -> None:
    async with app() as http:
        response = await http.get(path)

    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


async def test_the_docs_page_holds_no_inline_script(app: App) -> None:
    async with app() as http:
        page = (await http.get("/docs")).text

    assert "<script>" not in page
    assert page.count("<script src=") == 2


async def test_the_docs_can_be_turned_off(app: App) -> None:
    async with app(docs_enabled=False) as http:
        statuses = [(await http.get(path)).status_code for path in ("/docs", "/openapi.json")]

    assert statuses == [404, 404]


async def test_a_host_outside_trusted_hosts_answers_400_invalid_host(app: App) -> None:
    async with app(trusted_hosts="api.example.com,127.0.0.1") as http:
        refused = await http.get("/health", headers={"Host": "evil.example"})
        allowed = await http.get("/health")

    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_host")
    assert refused.headers["content-type"] == "application/problem+json"
    assert allowed.status_code == 200


async def test_a_wildcard_trusted_host_takes_its_subdomains(app: App) -> None:
    async with app(trusted_hosts="*.example.com") as http:
        response = await http.get("/health", headers={"Host": "api.example.com:8443"})

    assert response.status_code == 200


async def test_cors_is_off_unless_origins_are_listed(app: App) -> None:
    async with app() as http:
        response = await http.get("/health", headers={"Origin": "https://evil.example"})

    assert "access-control-allow-origin" not in response.headers


async def test_a_listed_origin_gets_cors_headers_and_another_does_not(app: App) -> None:
    async with app(cors_origins="https://app.example") as http:
        listed = await http.get("/health", headers={"Origin": "https://app.example"})
        other = await http.get("/health", headers={"Origin": "https://evil.example"})

    assert listed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
