"""The embedded default: ``keel serve``'s app with no BROKER_URL relays and consumes by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from adapters.brokers import InProcessBroker
from adapters.ledger.messages import COMMANDS_STREAM, EVENTS_STREAM
from adapters.migrate import upgrade_to_head_async
from adapters.settings import Settings
from entrypoints.bootstrap import Container
from entrypoints.http.app import create_app
from tests.ledger.e2e.factories import MovementBody, OpenAccountBody
from tests.ledger.messaging.factories import SENDER, OpenAccountFactory
from tests.ledger.messaging.support import wire
from tests.ledger.wiring import LEDGER_MIGRATIONS
from tests.messaging.support import wait_until
from tests.support.tokens import bearer_for

pytestmark = pytest.mark.e2e


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The app as ``keel serve`` builds it: bootstrapped by its own lifespan, on a SQLite file."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keel.db'}"
    await upgrade_to_head_async(
        url, LEDGER_MIGRATIONS
    )  # what `keel serve` does before it starts the app
    built = create_app(Settings(database_url=url, broker_url=None))
    async with LifespanManager(built):
        yield built


def broker_of(app: FastAPI) -> InProcessBroker:
    container: Container = app.state.container
    assert isinstance(container.broker, InProcessBroker)
    return container.broker


def published_types(broker: InProcessBroker) -> list[str]:
    return [message["type"] for message in broker.published[EVENTS_STREAM]]


async def test_an_http_deposit_is_announced_on_the_in_process_ledger_events(app: FastAPI) -> None:
    broker = broker_of(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://keel",
        headers=bearer_for(SENDER.subject),
    ) as http:
        account = (await http.post("/accounts", json=OpenAccountBody.build())).json()
        deposit = MovementBody.build(amount=1234)
        await http.post(f"/accounts/{account['id']}/deposits", json=deposit)

    await wait_until(lambda: "Deposited" in published_types(broker), "the Deposited event")

    [deposited] = [m for m in broker.published[EVENTS_STREAM] if m["type"] == "Deposited"]
    assert deposited["payload"]["account_id"] == account["id"]
    assert (deposited["payload"]["amount"], deposited["payload"]["reference"]) == (
        1234,
        deposit["reference"],
    )


async def test_a_command_on_the_in_process_ledger_commands_is_applied(app: FastAPI) -> None:
    opened = OpenAccountFactory.build()

    await broker_of(app).publish(COMMANDS_STREAM, wire(opened))
    await broker_of(app).settled()

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://keel",
        headers=bearer_for(SENDER.subject),
    ) as http:
        response = await http.get(f"/accounts/{opened.account_id}")
    assert response.status_code == 200
    assert response.json()["owner"] == opened.principal.subject
