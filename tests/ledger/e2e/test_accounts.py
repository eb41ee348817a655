"""POST /accounts and GET /accounts/{id}."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

import httpx
import pytest

from tests.ledger.e2e.api import assert_problem, open_account
from tests.ledger.e2e.conftest import OWNER
from tests.ledger.e2e.factories import OpenAccountBody

pytestmark = pytest.mark.e2e


async def test_opening_an_account_answers_201_with_the_new_account(
    client: httpx.AsyncClient,
) -> None:
    body = OpenAccountBody.build(currency="EUR")

    response = await client.post("/accounts", json=body)

    assert response.status_code == 201
    account = response.json()
    assert set(account) == {"id", "owner", "currency", "balance", "version", "created_at"}
    assert (account["owner"], account["currency"], account["balance"]) == (OWNER, "EUR", 0)
    UUID(account["id"])
    assert datetime.fromisoformat(account["created_at"]).tzinfo is not None


async def test_opening_an_account_points_location_at_it(client: httpx.AsyncClient) -> None:
    response = await client.post("/accounts", json=OpenAccountBody.build())

    assert response.headers["location"] == f"/accounts/{response.json()['id']}"
    fetched = await client.get(response.headers["location"])
    assert fetched.json() == response.json()


async def test_an_account_is_read_back_as_it_was_opened(client: httpx.AsyncClient) -> None:
    account = await open_account(client, currency="JPY")

    response = await client.get(f"/accounts/{account['id']}")

    assert response.status_code == 200
    assert response.json() == account


async def test_an_unknown_account_answers_404_account_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/accounts/{uuid4()}")

    assert_problem(response, 404, "account_not_found")


async def test_an_account_id_that_is_no_uuid_answers_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/accounts/not-a-uuid")

    body = assert_problem(response, 422, "validation_error")
    assert [issue["field"] for issue in body["errors"]] == ["account_id"]


async def test_a_body_naming_the_owner_answers_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/accounts", json={"owner": "Mallory", "currency": "EUR"})

    body = assert_problem(response, 422, "validation_error")
    assert [issue["field"] for issue in body["errors"]] == ["owner"]


async def test_the_location_never_echoes_the_clients_host(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/accounts", json=OpenAccountBody.build(), headers={"Host": "evil.example"}
    )

    assert response.status_code == 201
    assert "evil.example" not in response.headers["location"]
    assert response.headers["location"].startswith("/accounts/")
