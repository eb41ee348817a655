"""Small steps the e2e tests repeat: open an account, fund it, check a problem answer."""

from __future__ import annotations

from typing import Any

import httpx

from tests.ledger.e2e.factories import MovementBody, OpenAccountBody

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


async def open_account(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/accounts", json=OpenAccountBody.build(**fields))
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


async def deposit(client: httpx.AsyncClient, account_id: str, **fields: Any) -> httpx.Response:
    return await client.post(f"/accounts/{account_id}/deposits", json=MovementBody.build(**fields))


async def funded_account(client: httpx.AsyncClient, balance: int, **fields: Any) -> dict[str, Any]:
    """A new account holding ``balance``, put there by one deposit."""
    account = await open_account(client, **fields)
    response = await deposit(client, account["id"], amount=balance)
    assert response.status_code == 201, response.text
    return account


async def balance_of(client: httpx.AsyncClient, account_id: str) -> int:
    response = await client.get(f"/accounts/{account_id}")
    assert response.status_code == 200, response.text
    balance: int = response.json()["balance"]
    return balance


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_FIELDS, body
    assert (body["status"], body["code"]) == (status, code), body
    return body
