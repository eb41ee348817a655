"""Bearer-token verification (``adapters.auth``): what passes, what does not, and why."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.auth import (
    AuthConfigurationError,
    AuthenticationError,
    DevKeyPair,
    JwksKeys,
    StaticKey,
    TokenIssuer,
    TokenVerifier,
    load_public_key,
    token_issuer,
    token_verifier,
)
from adapters.settings import load_settings
from domain.principal import Principal
from tests.support.forged import hmac_with_public_key_token, unsigned_token
from tests.support.tokens import (
    AUDIENCE,
    ISSUER,
    PRIVATE_KEY,
    PUBLIC_KEY_PEM,
    TokenFactory,
    expired_at,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(
        StaticKey(load_public_key(PUBLIC_KEY_PEM)),
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256", "RS256"],
        leeway=5,
    )


async def test_a_valid_token_gives_its_subject_and_scopes(verifier: TokenVerifier) -> None:
    token = TokenFactory.build(subject="alice", scopes=("ledger:read",))

    assert await verifier.verify(token) == Principal("alice", frozenset({"ledger:read"}))


async def test_a_token_expired_within_the_clock_skew_still_passes(verifier: TokenVerifier) -> None:
    issued = datetime.now(UTC) - timedelta(hours=1, seconds=3)
    token = TokenFactory.build(now=issued, ttl=timedelta(hours=1))  # expired 3 s ago

    assert (await verifier.verify(token)).subject


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: TokenFactory.build(now=expired_at()), "expired"),
        (lambda: TokenFactory.build(now=datetime.now(UTC) + timedelta(minutes=5)), "not valid yet"),
        (lambda: TokenFactory.build(extra={"iss": "https://elsewhere"}), "issuer"),
        (lambda: TokenFactory.build(extra={"aud": "another-service"}), "not meant"),
        (lambda: "not.a.jwt", "well-formed"),
        (lambda: "garbage", "well-formed"),
        (unsigned_token, "algorithm"),
        (hmac_with_public_key_token, "algorithm"),
        (
            lambda: TokenIssuer(
                ec.generate_private_key(ec.SECP256R1()), issuer=ISSUER, audience=AUDIENCE
            ).mint("mallory"),
            "signature",
        ),
        (lambda: TokenFactory.build(extra={"sub": ""}), "sub"),
        (lambda: TokenFactory.build(extra={"sub": "evil\u202eman"}), "sub"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "wrong-issuer",
        "wrong-audience",
        "malformed",
        "not-a-jwt",
        "alg-none",
        "hmac-with-public-key",
        "bad-signature",
        "empty-subject",
        "unsafe-subject",
    ],
)
async def test_a_bad_token_is_refused_saying_why_without_repeating_it(
    verifier: TokenVerifier, token: Any, reason: str
) -> None:
    text = token()

    with pytest.raises(AuthenticationError, match=reason) as refused:
        await verifier.verify(text)

    assert text not in str(refused.value)


async def test_a_token_without_an_expiry_is_refused(verifier: TokenVerifier) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice"}
    token = jwt.encode(claims, PRIVATE_KEY, algorithm="ES256")

    with pytest.raises(AuthenticationError, match="'exp'"):
        await verifier.verify(token)


def test_an_hmac_algorithm_cannot_be_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ALGORITHMS", "ES256,HS256")

    with pytest.raises(ValueError, match="AUTH_ALGORITHMS: HS256 not allowed"):
        load_settings()


def test_a_public_key_that_is_no_pem_names_the_setting() -> None:
    with pytest.raises(AuthConfigurationError, match="AUTH_PUBLIC_KEY"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")


def test_the_public_key_may_be_given_as_a_file(tmp_path: Path) -> None:
    path = tmp_path / "public.pem"
    path.write_text(PUBLIC_KEY_PEM)

    assert load_public_key(str(path)) is not None


# -- the development key -------------------------------------------------------------------


def test_the_development_key_is_made_on_first_use_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keel-dev-key.pem"

    DevKeyPair(path).private_key()

    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_token_minted_with_the_development_key_is_accepted_by_a_server_using_it(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        auth_public_key=None, auth_jwks_url=None, auth_dev_key_file=str(tmp_path / "k.pem")
    )
    token = token_issuer(settings).mint("alice", scopes=["ledger:read"])

    assert (await token_verifier(settings).verify(token)).subject == "alice"


def test_no_token_is_minted_where_only_a_public_key_is_configured() -> None:
    settings = load_settings(auth_public_key=PUBLIC_KEY_PEM)

    with pytest.raises(AuthConfigurationError, match="AUTH_PUBLIC_KEY is set"):
        token_issuer(settings)


def test_no_token_is_minted_where_a_jwks_url_is_configured() -> None:
    settings = load_settings(auth_jwks_url="https://idp.example/.well-known/jwks.json")

    with pytest.raises(AuthConfigurationError, match="AUTH_JWKS_URL is set"):
        token_issuer(settings)


# -- JWKS --------------------------------------------------------------------------------


class JwksServer:
    """A JWKS document on loopback whose keys a test can rotate; counts its fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/jwks.json"

    def publish(self, key: ec.EllipticCurvePrivateKey, kid: str) -> None:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        self.keys = [{**jwk, "kid": kid, "alg": "ES256", "use": "sig"}]


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def _issuer(key: ec.EllipticCurvePrivateKey, kid: str) -> TokenIssuer:
    return TokenIssuer(key, issuer=ISSUER, audience=AUDIENCE, key_id=kid)


def _jwks_verifier(url: str, *, min_refresh_seconds: float) -> TokenVerifier:
    keys = JwksKeys(url, min_refresh_seconds=min_refresh_seconds)
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, algorithms=["ES256"])


@pytest.mark.integration  # a JWKS server on loopback
async def test_a_token_is_checked_with_the_jwks_key_its_kid_names(
    jwks_server: JwksServer,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwks_server.publish(key, "k1")
    verifier = _jwks_verifier(jwks_server.url, min_refresh_seconds=0)

    assert (await verifier.verify(_issuer(key, "k1").mint("alice"))).subject == "alice"


@pytest.mark.integration  # a JWKS server on loopback
async def test_the_jwks_is_cached_between_tokens(jwks_server: JwksServer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwks_server.publish(key, "k1")
    verifier = _jwks_verifier(jwks_server.url, min_refresh_seconds=0)

    for _ in range(3):
        await verifier.verify(_issuer(key, "k1").mint("alice"))

    assert jwks_server.fetches == 1


@pytest.mark.integration  # a JWKS server on loopback
async def test_a_rotated_key_is_fetched_when_a_token_names_its_unknown_kid(
    jwks_server: JwksServer,
) -> None:
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    jwks_server.publish(old, "k1")
    verifier = _jwks_verifier(jwks_server.url, min_refresh_seconds=0)
    await verifier.verify(_issuer(old, "k1").mint("alice"))

    jwks_server.publish(new, "k2")

    assert (await verifier.verify(_issuer(new, "k2").mint("bob"))).subject == "bob"
    assert jwks_server.fetches == 2


@pytest.mark.integration  # a JWKS server on loopback
async def test_unknown_kids_cannot_make_the_jwks_be_fetched_again_and_again(
    jwks_server: JwksServer,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwks_server.publish(key, "k1")
    verifier = _jwks_verifier(jwks_server.url, min_refresh_seconds=60)
    await verifier.verify(_issuer(key, "k1").mint("alice"))

    for number in range(5):
        with pytest.raises(AuthenticationError, match="does not know"):
            await verifier.verify(_issuer(key, f"unknown-{number}").mint("mallory"))

    assert jwks_server.fetches == 1


@pytest.mark.integration  # a JWKS server on loopback
async def test_an_unreachable_jwks_refuses_tokens_without_a_traceback() -> None:
    verifier = _jwks_verifier("http://127.0.0.1:1/jwks.json", min_refresh_seconds=0)

    with pytest.raises(AuthenticationError, match="unavailable"):
        await asyncio.wait_for(verifier.verify(TokenFactory.build()), 10)
