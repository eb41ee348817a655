"""RATE_LIMIT: each principal's writes are counted; beyond the rate, 429 with Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.migrate import upgrade_to_head_async
from adapters.rate_limit import rate_limiter
from adapters.settings import load_settings
from entrypoints.http.app import create_app
from tests.ledger.e2e.api import assert_problem
from tests.ledger.e2e.factories import OpenAccountBody
from tests.ledger.wiring import LEDGER_MIGRATIONS
from tests.support.tokens import bearer_for, new_subject

pytestmark = pytest.mark.e2e

Ledger = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def ledger(tmp_path: Path) -> Ledger:
    """``async with ledger(**settings) as http``: a token-less client of the ledger app."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'rate.db'}"
    await upgrade_to_head_async(url, LEDGER_MIGRATIONS)

    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(load_settings(database_url=url, **overrides))
        async with (
            LifespanManager(app) as started,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=started.app), base_url="http://127.0.0.1"
            ) as http,
        ):
            yield http

    return running


async def _open(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await http.post("/accounts", json=OpenAccountBody.build(), headers=headers)


async def test_writes_beyond_the_rate_answer_429_with_retry_after(ledger: Ledger) -> None:
    headers = bearer_for(new_subject())
    async with ledger(rate_limit="2/minute") as http:
        answers = [await _open(http, headers) for _ in range(3)]

    assert [answer.status_code for answer in answers[:2]] == [201, 201]
    assert_problem(answers[2], 429, "rate_limited")
    assert 1 <= int(answers[2].headers["retry-after"]) <= 60


async def test_the_rate_is_counted_per_principal(ledger: Ledger) -> None:
    busy, other = bearer_for(new_subject()), bearer_for(new_subject())
    async with ledger(rate_limit="1/minute") as http:
        await _open(http, busy)
        refused = await _open(http, busy)
        allowed = await _open(http, other)

    assert (refused.status_code, allowed.status_code) == (429, 201)


async def test_reads_are_not_counted(ledger: Ledger) -> None:
    headers = bearer_for(new_subject())
    async with ledger(rate_limit="1/minute") as http:
        account = (await _open(http, headers)).json()
        reads = [await http.get(f"/accounts/{account['id']}", headers=headers) for _ in range(3)]

    assert {read.status_code for read in reads} == {200}


async def test_without_rate_limit_writes_are_not_limited(ledger: Ledger) -> None:
    headers = bearer_for(new_subject())
    async with ledger() as http:
        answers = [await _open(http, headers) for _ in range(5)]

    assert {answer.status_code for answer in answers} == {201}


@pytest.mark.integration
async def test_on_redis_every_process_counts_against_one_budget(redis_url: str) -> None:
    settings = load_settings(
        rate_limit="2/minute", broker_url=redis_url, stream_prefix=f"keel-test-{uuid4().hex[:8]}:"
    )
    # Two processes' limiters: built apart, sharing nothing but Redis.
    first, second = rate_limiter(settings), rate_limiter(settings)
    assert first is not None
    assert second is not None
    subject = new_subject()

    try:
        waits = [await first.hit(subject), await second.hit(subject), await first.hit(subject)]
    finally:
        await first.close()
        await second.close()

    assert waits[:2] == [None, None]
    assert waits[2] is not None
    assert waits[2] >= 1
