"""Deposits and withdrawals: 201, replay 200, and their refusals."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from tests.ledger.e2e.api import assert_problem, balance_of, deposit, funded_account, open_account
from tests.ledger.e2e.factories import MovementBody, TransferBody

pytestmark = pytest.mark.e2e

ENTRY_FIELDS = {
    "id",
    "account_id",
    "kind",
    "amount",
    "balance_after",
    "reference",
    "transfer_id",
    "created_at",
}


async def test_a_deposit_answers_201_with_its_entry(client: httpx.AsyncClient) -> None:
    account = await open_account(client)
    body = MovementBody.build(amount=2500)

    response = await client.post(f"/accounts/{account['id']}/deposits", json=body)

    assert response.status_code == 201
    entry = response.json()
    assert set(entry) == ENTRY_FIELDS
    assert entry["account_id"] == account["id"]
    assert (entry["kind"], entry["amount"], entry["balance_after"]) == ("deposit", 2500, 2500)
    assert (entry["reference"], entry["transfer_id"]) == (body["reference"], None)
    assert await balance_of(client, account["id"]) == 2500


async def test_a_replayed_deposit_answers_200_with_the_first_entry_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    account = await open_account(client)
    body = MovementBody.build(amount=700)
    first = await client.post(f"/accounts/{account['id']}/deposits", json=body)

    replay = await client.post(f"/accounts/{account['id']}/deposits", json=body)

    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert await balance_of(client, account["id"]) == 700


async def test_a_deposit_reference_reused_with_another_amount_answers_409(
    client: httpx.AsyncClient,
) -> None:
    account = await open_account(client)
    first = await deposit(client, account["id"], amount=100)

    response = await deposit(client, account["id"], amount=200, reference=first.json()["reference"])

    assert_problem(response, 409, "reference_reused")
    assert await balance_of(client, account["id"]) == 100


async def test_a_deposit_to_an_unknown_account_answers_404(client: httpx.AsyncClient) -> None:
    response = await deposit(client, str(uuid4()))

    assert_problem(response, 404, "account_not_found")


async def test_a_withdrawal_answers_201_and_lowers_the_balance(client: httpx.AsyncClient) -> None:
    account = await funded_account(client, 1000)

    response = await client.post(
        f"/accounts/{account['id']}/withdrawals", json=MovementBody.build(amount=400)
    )

    assert response.status_code == 201
    entry = response.json()
    assert (entry["kind"], entry["amount"], entry["balance_after"]) == ("withdrawal", 400, 600)
    assert await balance_of(client, account["id"]) == 600


async def test_a_replayed_withdrawal_answers_200_with_the_first_entry(
    client: httpx.AsyncClient,
) -> None:
    account = await funded_account(client, 1000)
    body = MovementBody.build(amount=300)
    first = await client.post(f"/accounts/{account['id']}/withdrawals", json=body)

    replay = await client.post(f"/accounts/{account['id']}/withdrawals", json=body)

    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert await balance_of(client, account["id"]) == 700


async def test_a_withdrawal_beyond_the_balance_answers_409_insufficient_funds(
    client: httpx.AsyncClient,
) -> None:
    account = await funded_account(client, 100)

    response = await client.post(
        f"/accounts/{account['id']}/withdrawals", json=MovementBody.build(amount=101)
    )

    assert_problem(response, 409, "insufficient_funds")
    assert await balance_of(client, account["id"]) == 100


async def test_a_withdrawal_reference_reused_with_another_amount_answers_409(
    client: httpx.AsyncClient,
) -> None:
    account = await funded_account(client, 1000)
    body = MovementBody.build(amount=10)
    await client.post(f"/accounts/{account['id']}/withdrawals", json=body)

    response = await client.post(
        f"/accounts/{account['id']}/withdrawals", json={**body, "amount": 20}
    )

    assert_problem(response, 409, "reference_reused")


async def test_a_withdrawal_from_an_unknown_account_answers_404(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/accounts/{uuid4()}/withdrawals", json=MovementBody.build())

    assert_problem(response, 404, "account_not_found")


async def test_one_reference_serves_a_deposit_and_a_withdrawal_independently(
    client: httpx.AsyncClient,
) -> None:
    account = await funded_account(client, 1000)
    body = MovementBody.build(amount=50)

    deposited = await client.post(f"/accounts/{account['id']}/deposits", json=body)
    withdrawn = await client.post(f"/accounts/{account['id']}/withdrawals", json=body)

    assert (deposited.status_code, withdrawn.status_code) == (201, 201)
    assert await balance_of(client, account["id"]) == 1000


async def test_a_refused_withdrawal_replayed_after_funds_arrived_answers_the_same_409(
    client: httpx.AsyncClient,
) -> None:
    account = await funded_account(client, 100)
    withdrawal = MovementBody.build(amount=150)
    path = f"/accounts/{account['id']}/withdrawals"
    first = await client.post(path, json=withdrawal)
    await deposit(client, account["id"], amount=100)

    replay = await client.post(path, json=withdrawal)

    assert_problem(replay, 409, "insufficient_funds")
    assert replay.json() == first.json()
    assert await balance_of(client, account["id"]) == 200


async def test_a_refused_transfer_replayed_after_funds_arrived_answers_the_same_409(
    client: httpx.AsyncClient,
) -> None:
    source, target = await funded_account(client, 10), await open_account(client)
    body = TransferBody.build(source_id=source["id"], target_id=target["id"], amount=50)
    first = await client.post("/transfers", json=body)
    await deposit(client, source["id"], amount=100)

    replay = await client.post("/transfers", json=body)

    assert_problem(replay, 409, "insufficient_funds")
    assert replay.json() == first.json()
    assert await balance_of(client, target["id"]) == 0
