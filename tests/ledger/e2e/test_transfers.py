"""POST /transfers and GET /transfers/{id}."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from tests.ledger.e2e.api import assert_problem, balance_of, funded_account, open_account
from tests.ledger.e2e.factories import TransferBody

pytestmark = pytest.mark.e2e


async def test_a_transfer_answers_201_and_moves_the_money(client: httpx.AsyncClient) -> None:
    source = await funded_account(client, 1000)
    target = await open_account(client)
    body = TransferBody.build(source_id=source["id"], target_id=target["id"], amount=300)

    response = await client.post("/transfers", json=body)

    assert response.status_code == 201
    transfer = response.json()
    assert set(transfer) == {
        "id",
        "source_id",
        "target_id",
        "amount",
        "currency",
        "reference",
        "created_at",
    }
    assert (transfer["source_id"], transfer["target_id"]) == (source["id"], target["id"])
    assert (transfer["amount"], transfer["currency"]) == (300, "EUR")
    assert transfer["reference"] == body["reference"]
    assert (await balance_of(client, source["id"]), await balance_of(client, target["id"])) == (
        700,
        300,
    )


async def test_a_transfer_is_read_back_at_its_location(client: httpx.AsyncClient) -> None:
    source = await funded_account(client, 100)
    target = await open_account(client)
    body = TransferBody.build(source_id=source["id"], target_id=target["id"], amount=100)
    created = await client.post("/transfers", json=body)

    fetched = await client.get(created.headers["location"])

    assert created.headers["location"] == f"/transfers/{created.json()['id']}"
    assert fetched.status_code == 200
    assert fetched.json() == created.json()


async def test_a_transfer_writes_one_entry_on_each_side(client: httpx.AsyncClient) -> None:
    source = await funded_account(client, 500)
    target = await open_account(client)
    transfer = (
        await client.post(
            "/transfers",
            json=TransferBody.build(source_id=source["id"], target_id=target["id"], amount=200),
        )
    ).json()

    out = (await client.get(f"/accounts/{source['id']}/entries")).json()["items"][-1]
    into = (await client.get(f"/accounts/{target['id']}/entries")).json()["items"][-1]

    assert (out["kind"], out["amount"], out["balance_after"]) == ("transfer_out", 200, 300)
    assert (into["kind"], into["amount"], into["balance_after"]) == ("transfer_in", 200, 200)
    assert out["transfer_id"] == into["transfer_id"] == transfer["id"]


async def test_a_replayed_transfer_answers_200_with_the_first_transfer(
    client: httpx.AsyncClient,
) -> None:
    source = await funded_account(client, 1000)
    target = await open_account(client)
    body = TransferBody.build(source_id=source["id"], target_id=target["id"], amount=250)
    first = await client.post("/transfers", json=body)

    replay = await client.post("/transfers", json=body)

    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert await balance_of(client, source["id"]) == 750


async def test_a_transfer_reference_reused_with_another_body_answers_409(
    client: httpx.AsyncClient,
) -> None:
    source = await funded_account(client, 1000)
    target = await open_account(client)
    body = TransferBody.build(source_id=source["id"], target_id=target["id"], amount=10)
    await client.post("/transfers", json=body)

    response = await client.post("/transfers", json={**body, "amount": 11})

    assert_problem(response, 409, "reference_reused")
    assert await balance_of(client, source["id"]) == 990


async def test_a_transfer_beyond_the_balance_answers_409_and_moves_nothing(
    client: httpx.AsyncClient,
) -> None:
    source = await funded_account(client, 100)
    target = await open_account(client)

    response = await client.post(
        "/transfers",
        json=TransferBody.build(source_id=source["id"], target_id=target["id"], amount=101),
    )

    assert_problem(response, 409, "insufficient_funds")
    assert (await balance_of(client, source["id"]), await balance_of(client, target["id"])) == (
        100,
        0,
    )


async def test_a_transfer_between_currencies_answers_422_currency_mismatch(
    client: httpx.AsyncClient,
) -> None:
    source = await funded_account(client, 100, currency="EUR")
    target = await open_account(client, currency="USD")

    response = await client.post(
        "/transfers", json=TransferBody.build(source_id=source["id"], target_id=target["id"])
    )

    assert_problem(response, 422, "currency_mismatch")


async def test_a_transfer_to_the_same_account_answers_422_same_account(
    client: httpx.AsyncClient,
) -> None:
    account = await funded_account(client, 100)

    response = await client.post(
        "/transfers", json=TransferBody.build(source_id=account["id"], target_id=account["id"])
    )

    assert_problem(response, 422, "same_account")


@pytest.mark.parametrize("unknown_side", ["source_id", "target_id"])
async def test_a_transfer_naming_an_unknown_account_answers_404(
    client: httpx.AsyncClient, unknown_side: str
) -> None:
    known = await funded_account(client, 100)
    body = TransferBody.build(source_id=known["id"], target_id=known["id"])
    body[unknown_side] = str(uuid4())

    response = await client.post("/transfers", json=body)

    assert_problem(response, 404, "account_not_found")


async def test_an_unknown_transfer_answers_404_transfer_not_found(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"/transfers/{uuid4()}")

    assert_problem(response, 404, "transfer_not_found")
