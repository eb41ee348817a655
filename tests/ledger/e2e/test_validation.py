"""Bad input answers 422 validation_error naming each bad field — never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.ledger.e2e.api import assert_problem, open_account
from tests.ledger.e2e.factories import MovementBody, OpenAccountBody, TransferBody

pytestmark = pytest.mark.e2e

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
async def account_id(client: httpx.AsyncClient) -> str:
    account = await open_account(client)
    found: str = account["id"]
    return found


def _fields(body: dict[str, Any]) -> set[str]:
    return {issue["field"] for issue in body["errors"]}


def _assert_validation_problem(response: httpx.Response, *fields: str) -> None:
    body = assert_problem(response, 422, "validation_error")
    assert _fields(body) == set(fields), body
    for issue in body["errors"]:
        assert set(issue) == {"field", "location", "message", "type"}
        assert issue["message"]


@pytest.mark.parametrize(
    ("changes", "bad_field"),
    [
        ({"amount": 10.5}, "amount"),
        ({"amount": 10.0}, "amount"),
        ({"amount": "10"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": -1}, "amount"),
        ({"amount": 10**12 + 1}, "amount"),
        ({"amount": 10**40}, "amount"),
        ({"amount": [1]}, "amount"),
        ({"reference": ""}, "reference"),
        ({"reference": "r" * 101}, "reference"),
        ({"reference": "line\nbreak"}, "reference"),
        ({"reference": "nul\x00byte"}, "reference"),
        ({"reference": "tab\tchar"}, "reference"),
        ({"reference": "zero\u200bwidth"}, "reference"),
        ({"reference": 42}, "reference"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_a_bad_deposit_field_answers_422_naming_it(
    client: httpx.AsyncClient, account_id: str, changes: dict[str, Any], bad_field: str
) -> None:
    response = await client.post(
        f"/accounts/{account_id}/deposits", json={**MovementBody.build(), **changes}
    )

    _assert_validation_problem(response, bad_field)


@pytest.mark.parametrize(
    ("raw", "bad_field"),
    [
        ('{"amount": 1e400, "reference": "r"}', "amount"),
        ('{"amount": NaN, "reference": "r"}', "amount"),
        ('{"amount": 1' + "0" * 5000 + ', "reference": "r"}', "body"),
        ('{"amount": 1, "reference": "\\ud800"}', "reference"),
        ('{"amount": 1, "reference": "r"', "body"),
        ("not json at all", "body"),
        ("[1, 2]", "body"),
        ('"a string"', "body"),
        ("", "body"),
    ],
)
async def test_a_body_that_is_no_valid_json_object_answers_422(
    client: httpx.AsyncClient, account_id: str, raw: str, bad_field: str
) -> None:
    response = await client.post(
        f"/accounts/{account_id}/deposits", content=raw.encode(), headers=JSON
    )

    _assert_validation_problem(response, bad_field)


async def test_a_body_that_is_no_utf8_answers_422(
    client: httpx.AsyncClient, account_id: str
) -> None:
    response = await client.post(
        f"/accounts/{account_id}/deposits",
        content=b'{"amount": 1, "reference": "\xff"}',
        headers=JSON,
    )

    _assert_validation_problem(response, "body")


async def test_a_body_sent_as_plain_text_answers_422(
    client: httpx.AsyncClient, account_id: str
) -> None:
    response = await client.post(
        f"/accounts/{account_id}/deposits",
        content=json.dumps(MovementBody.build()).encode(),
        headers={"content-type": "text/plain"},
    )

    _assert_validation_problem(response, "body")


async def test_missing_fields_are_each_named(client: httpx.AsyncClient, account_id: str) -> None:
    response = await client.post(f"/accounts/{account_id}/deposits", json={})

    _assert_validation_problem(response, "amount", "reference")


async def test_a_deposit_to_a_malformed_account_id_answers_422(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/accounts/12345/deposits", json=MovementBody.build())

    _assert_validation_problem(response, "account_id")


async def test_a_body_over_64_kib_answers_413(client: httpx.AsyncClient, account_id: str) -> None:
    response = await client.post(
        f"/accounts/{account_id}/deposits",
        json={**MovementBody.build(), "padding": "x" * 70_000},
    )

    assert_problem(response, 413, "content_too_large")


async def test_a_streamed_body_over_64_kib_answers_413(
    client: httpx.AsyncClient, account_id: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the size shows as it arrives
        yield b'{"amount": 1, "reference": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post(f"/accounts/{account_id}/deposits", content=chunks(), headers=JSON)

    assert_problem(response, 413, "content_too_large")


@pytest.mark.parametrize(
    ("changes", "bad_field"),
    [
        ({"owner": "Ada"}, "owner"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "€UR"}, "currency"),
        ({"currency": 978}, "currency"),
        ({"currency": None}, "currency"),
    ],
)
async def test_a_bad_account_field_answers_422_naming_it(
    client: httpx.AsyncClient, changes: dict[str, Any], bad_field: str
) -> None:
    response = await client.post("/accounts", json={**OpenAccountBody.build(), **changes})

    _assert_validation_problem(response, bad_field)


@pytest.mark.parametrize(
    ("changes", "bad_fields"),
    [
        ({"source_id": "nope"}, {"source_id"}),
        ({"target_id": 12}, {"target_id"}),
        ({"source_id": None, "target_id": "x"}, {"source_id", "target_id"}),
        ({"amount": 1.5}, {"amount"}),
        ({"reference": "\x7f"}, {"reference"}),
    ],
)
async def test_a_bad_transfer_field_answers_422_naming_it(
    client: httpx.AsyncClient, changes: dict[str, Any], bad_fields: set[str]
) -> None:
    body = {**TransferBody.build(source_id=str(uuid4()), target_id=str(uuid4())), **changes}

    response = await client.post("/transfers", json=body)

    _assert_validation_problem(response, *bad_fields)


async def test_the_longest_allowed_texts_are_accepted(client: httpx.AsyncClient) -> None:
    account = await open_account(client)

    response = await client.post(
        f"/accounts/{account['id']}/deposits", json=MovementBody.build(reference="r" * 100)
    )

    assert response.status_code == 201, response.text


async def test_a_non_ascii_reference_is_kept_as_sent(
    client: httpx.AsyncClient, account_id: str
) -> None:
    reference = f"Überweisung №{uuid4().hex[:6]} — café ✓ 日本"

    response = await client.post(
        f"/accounts/{account_id}/deposits", json=MovementBody.build(reference=reference)
    )

    assert response.status_code == 201, response.text
    assert response.json()["reference"] == reference


async def test_a_body_nested_deeper_than_the_parser_goes_answers_422(
    client: httpx.AsyncClient, account_id: str
) -> None:
    response = await client.post(
        f"/accounts/{account_id}/deposits", content=b"[" * 30_000 + b"]" * 30_000, headers=JSON
    )

    body = assert_problem(response, 422, "validation_error")
    assert [issue["field"] for issue in body["errors"]] == ["body"]
