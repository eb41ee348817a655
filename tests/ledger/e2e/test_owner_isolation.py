"""Money moves only with its owner's credential: another principal sees and moves nothing.

``client`` is the owner of the accounts these tests open; ``stranger`` is
another authenticated principal. Someone else's account answers exactly as an
unknown one — 404 ``account_not_found`` — and nothing changes.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.ledger.e2e.api import assert_problem, balance_of, deposit, funded_account, open_account
from tests.ledger.e2e.factories import MovementBody, TransferBody

pytestmark = pytest.mark.e2e


def _without_id(problem: dict[str, Any], account_id: str) -> dict[str, Any]:
    return {**problem, "detail": problem["detail"].replace(account_id, "ID")}


async def test_anothers_account_reads_exactly_as_an_unknown_one(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    account = await funded_account(client, 100)
    unknown = str(uuid4())

    theirs = await stranger.get(f"/accounts/{account['id']}")
    missing = await stranger.get(f"/accounts/{unknown}")

    body = assert_problem(theirs, 404, "account_not_found")
    assert _without_id(body, account["id"]) == _without_id(missing.json(), unknown)
    assert "100" not in theirs.text


async def test_anothers_entries_are_not_found(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    account = await funded_account(client, 100)

    response = await stranger.get(f"/accounts/{account['id']}/entries")

    assert_problem(response, 404, "account_not_found")


async def test_a_deposit_to_anothers_account_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    account = await funded_account(client, 100)

    response = await deposit(stranger, account["id"], amount=5)

    assert_problem(response, 404, "account_not_found")
    assert await balance_of(client, account["id"]) == 100


async def test_a_withdrawal_from_anothers_account_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    account = await funded_account(client, 100)

    response = await stranger.post(
        f"/accounts/{account['id']}/withdrawals", json=MovementBody.build(amount=50)
    )

    assert_problem(response, 404, "account_not_found")
    assert await balance_of(client, account["id"]) == 100


async def test_a_transfer_out_of_anothers_account_is_not_found_and_changes_nothing(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    victim = await funded_account(client, 100)
    thief = await open_account(stranger)

    response = await stranger.post(
        "/transfers",
        json=TransferBody.build(source_id=victim["id"], target_id=thief["id"], amount=60),
    )

    body = assert_problem(response, 404, "account_not_found")
    assert thief["id"] not in body["detail"]
    assert await balance_of(client, victim["id"]) == 100
    assert await balance_of(stranger, thief["id"]) == 0


async def test_a_transfer_out_of_anothers_account_to_an_unknown_one_names_the_source(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    victim = await funded_account(client, 100)

    response = await stranger.post(
        "/transfers",
        json=TransferBody.build(source_id=victim["id"], target_id=str(uuid4()), amount=1),
    )

    body = assert_problem(response, 404, "account_not_found")
    assert victim["id"] in body["detail"]  # as if it did not exist, whatever the target


async def test_anyone_authenticated_may_pay_into_an_account(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    payee = await open_account(client)
    payer = await funded_account(stranger, 100)

    response = await stranger.post(
        "/transfers",
        json=TransferBody.build(source_id=payer["id"], target_id=payee["id"], amount=30),
    )

    assert response.status_code == 201, response.text
    assert await balance_of(client, payee["id"]) == 30


async def test_a_transfer_is_visible_to_both_owners_and_no_one_else(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient, third: httpx.AsyncClient
) -> None:
    payee = await open_account(client)
    payer = await funded_account(stranger, 100)
    made = await stranger.post(
        "/transfers",
        json=TransferBody.build(source_id=payer["id"], target_id=payee["id"], amount=30),
    )
    path = f"/transfers/{made.json()['id']}"

    assert (await stranger.get(path)).json() == made.json()
    assert (await client.get(path)).json() == made.json()
    assert_problem(await third.get(path), 404, "transfer_not_found")


async def test_two_owners_may_use_the_same_transfer_reference(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    mine, my_other = await funded_account(client, 100), await open_account(client)
    theirs, their_other = await funded_account(stranger, 100), await open_account(stranger)
    reference = f"rent-{uuid4()}"

    first = await client.post(
        "/transfers",
        json=TransferBody.build(
            source_id=mine["id"], target_id=my_other["id"], amount=10, reference=reference
        ),
    )
    second = await stranger.post(
        "/transfers",
        json=TransferBody.build(
            source_id=theirs["id"], target_id=their_other["id"], amount=20, reference=reference
        ),
    )

    assert (first.status_code, second.status_code) == (201, 201)


async def test_two_payers_may_pay_one_account_under_the_same_reference(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    payee = await open_account(client)
    payers = [await funded_account(client, 100), await funded_account(stranger, 100)]
    reference = f"invoice-{uuid4()}"

    answers = [
        await owner.post(
            "/transfers",
            json=TransferBody.build(
                source_id=payer["id"], target_id=payee["id"], amount=10, reference=reference
            ),
        )
        for owner, payer in zip((client, stranger), payers, strict=True)
    ]

    assert [answer.status_code for answer in answers] == [201, 201]
    assert await balance_of(client, payee["id"]) == 20


async def test_a_reused_transfer_reference_names_nothing_of_the_earlier_transfer(
    client: httpx.AsyncClient, stranger: httpx.AsyncClient
) -> None:
    source = await funded_account(client, 100)
    payee = await open_account(stranger)
    other = await open_account(client)
    # A reference without digits (the source is new, so it is free): the amount must not show.
    body = TransferBody.build(
        source_id=source["id"], target_id=payee["id"], amount=37, reference="rent-for-may"
    )
    first = await client.post("/transfers", json=body)

    response = await client.post(
        "/transfers", json={**body, "target_id": other["id"], "amount": 12}
    )

    problem = assert_problem(response, 409, "reference_reused")
    for secret in (payee["id"], first.json()["id"], "37"):
        assert secret not in problem["detail"]
