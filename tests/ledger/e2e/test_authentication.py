"""Who may call the ledger's routes: the token matrix of contract v2, one case per test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.auth import TokenIssuer
from tests.ledger.e2e.api import assert_problem, open_account
from tests.ledger.e2e.factories import MovementBody, OpenAccountBody
from tests.support.forged import hmac_with_public_key_token, unsigned_token
from tests.support.tokens import AUDIENCE, ISSUER, TokenFactory, auth_headers, expired_at

pytestmark = pytest.mark.e2e


def assert_unauthenticated(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def _post_account(anonymous: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await anonymous.post("/accounts", json=OpenAccountBody.build(), headers=headers)


async def test_a_request_without_a_token_answers_401(anonymous: httpx.AsyncClient) -> None:
    assert_unauthenticated(await anonymous.post("/accounts", json=OpenAccountBody.build()))


async def test_a_read_without_a_token_answers_401(anonymous: httpx.AsyncClient) -> None:
    assert_unauthenticated(await anonymous.get("/transfers/00000000-0000-0000-0000-000000000000"))


async def test_a_malformed_token_answers_401(anonymous: httpx.AsyncClient) -> None:
    assert_unauthenticated(await _post_account(anonymous, auth_headers("not-a-jwt")))


async def test_another_authorization_scheme_answers_401(anonymous: httpx.AsyncClient) -> None:
    headers = {"Authorization": "Basic YWxpY2U6c2VjcmV0"}

    assert_unauthenticated(await _post_account(anonymous, headers))


async def test_an_expired_token_answers_401(anonymous: httpx.AsyncClient) -> None:
    token = TokenFactory.build(now=expired_at())

    assert_unauthenticated(await _post_account(anonymous, auth_headers(token)))


async def test_a_token_not_valid_yet_answers_401(anonymous: httpx.AsyncClient) -> None:
    token = TokenFactory.build(now=datetime.now(UTC) + timedelta(minutes=10))

    assert_unauthenticated(await _post_account(anonymous, auth_headers(token)))


async def test_a_token_from_another_issuer_answers_401(anonymous: httpx.AsyncClient) -> None:
    token = TokenFactory.build(extra={"iss": "https://idp.elsewhere"})

    assert_unauthenticated(await _post_account(anonymous, auth_headers(token)))


async def test_a_token_for_another_audience_answers_401(anonymous: httpx.AsyncClient) -> None:
    token = TokenFactory.build(extra={"aud": "another-service"})

    assert_unauthenticated(await _post_account(anonymous, auth_headers(token)))


async def test_a_token_signed_by_another_key_answers_401(anonymous: httpx.AsyncClient) -> None:
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    token = TokenIssuer(stranger_key, issuer=ISSUER, audience=AUDIENCE).mint(
        "mallory", scopes=["ledger:write"]
    )

    assert_unauthenticated(await _post_account(anonymous, auth_headers(token)))


async def test_an_unsigned_alg_none_token_answers_401(anonymous: httpx.AsyncClient) -> None:
    assert_unauthenticated(await _post_account(anonymous, auth_headers(unsigned_token())))


async def test_an_hmac_token_signed_with_the_public_key_answers_401(
    anonymous: httpx.AsyncClient,
) -> None:
    token = hmac_with_public_key_token()

    assert_unauthenticated(await _post_account(anonymous, auth_headers(token)))


async def test_a_write_with_a_read_only_token_answers_403(anonymous: httpx.AsyncClient) -> None:
    token = TokenFactory.build(scopes=("ledger:read",))

    response = await _post_account(anonymous, auth_headers(token))

    assert_problem(response, 403, "insufficient_scope")


async def test_a_read_with_a_write_only_token_answers_403(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    account = await open_account(client)
    token = TokenFactory.build(scopes=("ledger:write",))

    response = await anonymous.get(f"/accounts/{account['id']}", headers=auth_headers(token))

    assert_problem(response, 403, "insufficient_scope")


async def test_a_token_expired_within_the_allowed_clock_skew_is_accepted(
    anonymous: httpx.AsyncClient,
) -> None:
    issued = datetime.now(UTC) - timedelta(hours=1, seconds=2)
    token = TokenFactory.build(now=issued, ttl=timedelta(hours=1))

    response = await _post_account(anonymous, auth_headers(token))

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("path", ["/health", "/ready", "/docs", "/openapi.json"])
async def test_the_probes_and_docs_need_no_token(anonymous: httpx.AsyncClient, path: str) -> None:
    assert (await anonymous.get(path)).status_code == 200


async def test_the_openapi_document_declares_the_bearer_scheme(
    anonymous: httpx.AsyncClient,
) -> None:
    document = (await anonymous.get("/openapi.json")).json()

    [scheme] = document["components"]["securitySchemes"].values()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


async def test_a_refused_token_is_never_repeated_in_the_answer(
    anonymous: httpx.AsyncClient,
) -> None:
    token = TokenFactory.build(now=expired_at())

    response = await _post_account(anonymous, auth_headers(token))

    assert token not in response.text
    assert token.split(".")[1] not in response.text


async def test_a_deposit_without_a_token_changes_nothing(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    account = await open_account(client)

    response = await anonymous.post(
        f"/accounts/{account['id']}/deposits", json=MovementBody.build(amount=10)
    )

    assert_unauthenticated(response)
    assert (await client.get(f"/accounts/{account['id']}")).json()["balance"] == 0
