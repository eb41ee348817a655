"""GET /accounts/{id}/entries: newest last, keyset-paginated."""

from __future__ import annotations

import base64
import random
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.ledger.e2e.api import assert_problem, deposit, open_account

pytestmark = pytest.mark.e2e


async def _account_with_deposits(client: httpx.AsyncClient, amounts: list[int]) -> str:
    account = await open_account(client)
    for amount in amounts:
        response = await deposit(client, account["id"], amount=amount)
        assert response.status_code == 201, response.text
    account_id: str = account["id"]
    return account_id


async def test_entries_walk_page_by_page_to_the_end_oldest_first(
    client: httpx.AsyncClient,
) -> None:
    amounts = list(range(1, 8))
    account_id = await _account_with_deposits(client, amounts)

    seen: list[dict[str, Any]] = []
    pages = 0
    params: dict[str, str | int] = {"limit": 3}
    while True:
        response = await client.get(f"/accounts/{account_id}/entries", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(page["items"])
        pages += 1
        if page["next"] is None:
            break
        params = {"limit": 3, "after": page["next"]}

    assert [entry["amount"] for entry in seen] == amounts
    assert [entry["balance_after"] for entry in seen] == [
        sum(amounts[: i + 1]) for i in range(len(amounts))
    ]
    assert pages == 3


async def test_an_account_without_entries_has_one_empty_page(client: httpx.AsyncClient) -> None:
    account = await open_account(client)

    response = await client.get(f"/accounts/{account['id']}/entries")

    assert response.status_code == 200
    assert response.json() == {"items": [], "next": None}


async def test_entries_of_an_unknown_account_answer_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/accounts/{uuid4()}/entries")

    assert_problem(response, 404, "account_not_found")


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5", "99999999999999999999999"])
async def test_a_limit_outside_1_to_500_answers_422(client: httpx.AsyncClient, limit: str) -> None:
    account = await open_account(client)

    response = await client.get(f"/accounts/{account['id']}/entries", params={"limit": limit})

    body = assert_problem(response, 422, "validation_error")
    assert [issue["field"] for issue in body["errors"]] == ["limit"]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "", "%%%", "é" * 40, "\x00\x01", "eyJ9", "A" * 400, "0" * 512],
)
async def test_a_cursor_that_the_api_did_not_give_answers_422(
    client: httpx.AsyncClient, cursor: str
) -> None:
    account_id = await _account_with_deposits(client, [1, 2])

    response = await client.get(f"/accounts/{account_id}/entries", params={"after": cursor})

    assert response.status_code == 422, response.text
    assert response.json()["code"] in {"invalid_cursor", "validation_error"}


async def test_a_cursor_from_another_account_gives_no_entries_of_the_first(
    client: httpx.AsyncClient,
) -> None:
    first = await _account_with_deposits(client, [1, 2])
    other = await _account_with_deposits(client, [5])
    cursor = (await client.get(f"/accounts/{first}/entries", params={"limit": 1})).json()["next"]

    response = await client.get(f"/accounts/{other}/entries", params={"after": cursor})

    assert response.status_code in {200, 422}, response.text
    if response.status_code == 200:
        assert all(entry["account_id"] == other for entry in response.json()["items"])


def _base64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


async def test_a_tampered_cursor_beyond_64_bits_answers_422_invalid_cursor(
    client: httpx.AsyncClient,
) -> None:
    account_id = await _account_with_deposits(client, [1])

    response = await client.get(
        f"/accounts/{account_id}/entries", params={"after": _base64("v1:9999999999999999999")}
    )

    assert_problem(response, 422, "invalid_cursor")


async def test_fuzzed_cursors_answer_a_page_or_422_never_a_500(client: httpx.AsyncClient) -> None:
    account_id = await _account_with_deposits(client, [1, 2])
    rng = random.Random(9)
    cursors = [_base64(f"v1:{rng.randrange(0, 10 ** rng.randrange(1, 22))}") for _ in range(40)] + [
        base64.urlsafe_b64encode(rng.randbytes(rng.randrange(1, 30))).decode() for _ in range(40)
    ]

    statuses = {
        (await client.get(f"/accounts/{account_id}/entries", params={"after": c})).status_code
        for c in cursors
    }

    assert statuses <= {200, 422}
