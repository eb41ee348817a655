"""Tokens and keys never reach the logs, whatever happens to the request or the command."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.ledger.e2e.api import open_account
from tests.ledger.e2e.factories import MovementBody
from tests.support.tokens import (
    SIGNING_KEY,
    TokenFactory,
    auth_headers,
    bearer_for,
    expired_at,
    new_subject,
)

pytestmark = pytest.mark.e2e


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(str(vars(record)) for record in caplog.records)


async def test_a_valid_token_is_not_logged(
    anonymous: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    headers = bearer_for(new_subject())
    caplog.set_level(logging.DEBUG)

    account = (await anonymous.post("/accounts", json={"currency": "EUR"}, headers=headers)).json()
    await anonymous.post(
        f"/accounts/{account['id']}/withdrawals", json=MovementBody.build(), headers=headers
    )

    token = headers["Authorization"].removeprefix("Bearer ")
    assert caplog.records
    assert token not in _logged(caplog)
    assert token.split(".")[2] not in _logged(caplog)


async def test_a_refused_token_is_not_logged(
    anonymous: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = TokenFactory.build(now=expired_at())
    caplog.set_level(logging.DEBUG)

    await anonymous.post("/accounts", json={"currency": "EUR"}, headers=auth_headers(token))

    assert token.split(".")[2] not in _logged(caplog)


async def test_the_command_signing_key_is_not_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    await open_account(client)

    assert SIGNING_KEY not in _logged(caplog)
