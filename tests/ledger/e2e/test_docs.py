"""The interactive docs load everything from this process: they work offline."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.e2e

ASSET_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


async def _referenced_urls(client: httpx.AsyncClient) -> list[str]:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    return [first or second for first, second in ASSET_REFERENCE.findall(page.text)]


async def test_the_docs_page_references_only_local_urls(client: httpx.AsyncClient) -> None:
    urls = await _referenced_urls(client)

    assert len(urls) >= 4  # stylesheet, favicon, script, OpenAPI document
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls


async def test_every_url_the_docs_page_references_answers_200(client: httpx.AsyncClient) -> None:
    urls = await _referenced_urls(client)

    statuses = {url: (await client.get(url)).status_code for url in urls}

    assert set(statuses.values()) == {200}, statuses


async def test_the_openapi_document_lists_every_contract_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    assert set(document["paths"]) == {
        "/health",
        "/ready",
        "/accounts",
        "/accounts/{account_id}",
        "/accounts/{account_id}/deposits",
        "/accounts/{account_id}/withdrawals",
        "/accounts/{account_id}/entries",
        "/transfers",
        "/transfers/{transfer_id}",
    }
