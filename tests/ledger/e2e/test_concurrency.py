"""Many writers at once over HTTP on PostgreSQL: the ledger's invariants still hold.

Deposits, withdrawals and transfers among a few accounts are all sent at the
same time. Afterwards: no answer was a 5xx; every balance is what the
successful requests add up to and equals the sum of its entries; no balance
went below zero at any point; every transfer left exactly its two entries and
a refused one left none; and replaying every successful request answers 200
with the first body and changes nothing.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.ledger.e2e.api import funded_account
from tests.ledger.e2e.factories import MovementBody, TransferBody

pytestmark = pytest.mark.e2e

ACCOUNTS = 4
OPENING_BALANCE = 5_000
OPERATIONS = 90
SIGNED = {"deposit": 1, "transfer_in": 1, "withdrawal": -1, "transfer_out": -1}
REFUSALS = {"insufficient_funds", "concurrent_update"}


@dataclass(frozen=True)
class Request:
    path: str
    body: dict[str, Any]


def _random_requests(accounts: list[str], rng: random.Random) -> list[Request]:
    requests = []
    for _ in range(OPERATIONS):
        kind = rng.choice(["deposit", "withdrawal", "transfer", "transfer"])
        if kind == "transfer":
            source, target = rng.sample(accounts, 2)
            body = TransferBody.build(
                source_id=source, target_id=target, amount=rng.randint(1, 2_000)
            )
            requests.append(Request("/transfers", body))
        else:
            account = rng.choice(accounts)
            amount = rng.randint(1, 500) if kind == "deposit" else rng.randint(1, 1_000)
            path = f"/accounts/{account}/{kind}s"
            requests.append(Request(path, MovementBody.build(amount=amount)))
    return requests


async def _send_all(client: httpx.AsyncClient, requests: list[Request]) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(client.post(request.path, json=request.body) for request in requests)
        )
    )


async def _entries(client: httpx.AsyncClient, account_id: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 500}
    while True:
        page = (await client.get(f"/accounts/{account_id}/entries", params=params)).json()
        entries.extend(page["items"])
        if page["next"] is None:
            return entries
        params = {"limit": 500, "after": page["next"]}


def _expected_balances(
    accounts: list[str], requests: list[Request], responses: list[httpx.Response]
) -> dict[str, int]:
    balances = dict.fromkeys(accounts, OPENING_BALANCE)
    for request, response in zip(requests, responses, strict=True):
        if response.status_code != 201:
            continue
        result = response.json()
        if request.path == "/transfers":
            balances[result["source_id"]] -= result["amount"]
            balances[result["target_id"]] += result["amount"]
        else:
            balances[result["account_id"]] += SIGNED[result["kind"]] * result["amount"]
    return balances


async def test_concurrent_writers_keep_every_ledger_invariant(client: httpx.AsyncClient) -> None:
    accounts = [(await funded_account(client, OPENING_BALANCE))["id"] for _ in range(ACCOUNTS)]
    requests = _random_requests(accounts, random.Random(20240517))

    responses = await _send_all(client, requests)

    outcomes = Counter(
        (r.status_code, r.json().get("code") if r.status_code != 201 else None) for r in responses
    )
    assert all(status == 201 or code in REFUSALS for status, code in outcomes), outcomes

    # Invariant 2: the balance is what the successful requests add up to, and the sum of entries.
    expected = _expected_balances(accounts, requests, responses)
    entries = {account: await _entries(client, account) for account in accounts}
    for account in accounts:
        balance = (await client.get(f"/accounts/{account}")).json()["balance"]
        signed = [SIGNED[entry["kind"]] * entry["amount"] for entry in entries[account]]
        assert balance == expected[account] == sum(signed)
        # Invariant 1, at every step: each entry's balance_after continues the previous one.
        running = 0
        for entry, change in zip(entries[account], signed, strict=True):
            running += change
            assert entry["balance_after"] == running >= 0, entry

    # Invariant 3: a completed transfer has both its entries; a refused one has none.
    completed = {
        r.json()["id"]: r.json()
        for request, r in zip(requests, responses, strict=True)
        if request.path == "/transfers" and r.status_code == 201
    }
    by_transfer = Counter(
        (entry["transfer_id"], entry["kind"], entry["account_id"])
        for account in accounts
        for entry in entries[account]
        if entry["transfer_id"] is not None
    )
    assert by_transfer == Counter(
        key
        for transfer in completed.values()
        for key in [
            (transfer["id"], "transfer_out", transfer["source_id"]),
            (transfer["id"], "transfer_in", transfer["target_id"]),
        ]
    )


async def test_replaying_every_successful_request_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    accounts = [(await funded_account(client, OPENING_BALANCE))["id"] for _ in range(ACCOUNTS)]
    requests = _random_requests(accounts, random.Random(7))
    responses = await _send_all(client, requests)
    succeeded = [(q, r) for q, r in zip(requests, responses, strict=True) if r.status_code == 201]
    balances = {account: (await client.get(f"/accounts/{account}")).json() for account in accounts}

    replays = await _send_all(client, [request for request, _ in succeeded])

    assert [replay.status_code for replay in replays] == [200] * len(succeeded)
    assert [replay.json() for replay in replays] == [first.json() for _, first in succeeded]
    assert {
        account: (await client.get(f"/accounts/{account}")).json() for account in accounts
    } == balances


async def test_the_same_deposit_sent_ten_times_at_once_is_applied_once(
    client: httpx.AsyncClient,
) -> None:
    account = (await funded_account(client, 1))["id"]
    body = MovementBody.build(amount=100)

    responses = await asyncio.gather(
        *(client.post(f"/accounts/{account}/deposits", json=body) for _ in range(10))
    )

    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.text for r in responses}) == 1
    assert (await client.get(f"/accounts/{account}")).json()["balance"] == 101


async def test_the_same_transfer_sent_ten_times_at_once_is_applied_once(
    client: httpx.AsyncClient,
) -> None:
    source = (await funded_account(client, 1_000))["id"]
    target = (await funded_account(client, 1))["id"]
    body = TransferBody.build(source_id=source, target_id=target, amount=300)

    responses = await asyncio.gather(*(client.post("/transfers", json=body) for _ in range(10)))

    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.text for r in responses}) == 1
    assert (await client.get(f"/accounts/{source}")).json()["balance"] == 700
