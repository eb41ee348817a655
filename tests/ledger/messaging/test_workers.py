"""``keel serve --workers 2`` beside a ``keel relay``: three relays, one publisher per key.

Every process relays the outbox; the per-key locks let only one of them
publish a given account's events at a time, so each event goes out once, in
the account's order, and SIGTERM stops every worker cleanly.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from adapters.settings import Settings
from tests.ledger.e2e.factories import OpenAccountBody
from tests.ledger.messaging.processes import keel
from tests.ledger.messaging.support import published_events
from tests.messaging.support import wait_until
from tests.support.tokens import bearer_for, new_subject

pytestmark = pytest.mark.e2e

ACCOUNTS = 3
DEPOSITS_PER_ACCOUNT = 20
START_DEADLINE = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _up(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(START_DEADLINE):
        while True:
            try:
                if (await client.get("/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


async def test_several_workers_and_a_relay_publish_each_event_once_in_account_order(
    settings: Settings, redis_client: aioredis.Redis, stream_prefix: str, tmp_path: Path
) -> None:
    port = _free_port()
    async with (
        keel("serve", settings, tmp_path, "--workers", "2", "--port", str(port)) as server,
        keel("relay", settings, tmp_path),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=bearer_for(new_subject())
        ) as client,
    ):
        await _up(client)
        accounts = []
        for _ in range(ACCOUNTS):
            opened = await client.post("/accounts", json=OpenAccountBody.build())
            assert opened.status_code == 201, opened.text
            accounts.append(opened.json()["id"])
        deposits = [
            client.post(
                f"/accounts/{account}/deposits",
                json={"amount": 1, "reference": f"w-{n}"},
            )
            for account in accounts
            for n in range(DEPOSITS_PER_ACCOUNT)
        ]
        answers = await asyncio.gather(*deposits)
        assert {answer.status_code for answer in answers} == {201}

        expected = ACCOUNTS * (1 + DEPOSITS_PER_ACCOUNT)

        async def all_published() -> bool:
            return len(await published_events(redis_client, stream_prefix)) >= expected

        await wait_until(all_published, "every event published", within=30)
        server.process.send_signal(signal.SIGTERM)
        assert await server.wait() == 0, server.output()[-3000:]

    events = await published_events(redis_client, stream_prefix)
    ids = [event["message_id"] for event in events]
    assert len(ids) == len(set(ids)) == expected
    balances: defaultdict[str, list[int]] = defaultdict(list)
    for event in events:
        if event["type"] == "Deposited":
            balances[event["payload"]["account_id"]].append(event["payload"]["balance_after"])
    assert {account: seen for account, seen in balances.items() if seen != sorted(seen)} == {}
