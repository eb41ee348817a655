"""The verified-token cache: a token checked once is answered from memory, never past its ``exp``.

A client sends the same token until it expires, and an ES256 check costs as
much CPU as a primary-key read; the cache must still give exactly the answer
the full check would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters import auth
from adapters.auth import AuthenticationError, StaticKey, TokenVerifier, load_public_key
from adapters.settings import load_settings
from tests.support.tokens import AUDIENCE, ISSUER, PUBLIC_KEY_PEM, TokenFactory, expired_at

pytestmark = pytest.mark.unit


class CountingKey(StaticKey):
    """The test key, counting how often a signature check asked for it."""

    lookups = 0

    async def key_for(self, kid: str | None) -> Any:
        CountingKey.lookups += 1
        return await super().key_for(kid)


@pytest.fixture
def keys() -> CountingKey:
    CountingKey.lookups = 0
    return CountingKey(load_public_key(PUBLIC_KEY_PEM))


def verifier_with(keys: CountingKey, cache_seconds: float) -> TokenVerifier:
    return TokenVerifier(
        keys,
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["ES256"],
        leeway=5,
        cache_seconds=cache_seconds,
    )


class Clock:
    """``time.time`` for adapters.auth, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime.now(UTC).timestamp()
        monkeypatch.setattr("adapters.auth.time.time", lambda: self.now)


async def test_a_token_verified_once_is_not_checked_again_within_the_window(
    keys: CountingKey,
) -> None:
    verifier = verifier_with(keys, cache_seconds=60)
    token = TokenFactory.build(subject="alice")

    first, second = await verifier.verify(token), await verifier.verify(token)

    assert first == second
    assert first.subject == "alice"
    assert keys.lookups == 1


async def test_a_remembered_token_is_checked_again_after_the_window(
    keys: CountingKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    verifier = verifier_with(keys, cache_seconds=60)
    token = TokenFactory.build()
    await verifier.verify(token)

    clock.now += 61
    await verifier.verify(token)

    assert keys.lookups == 2


async def test_the_cache_never_answers_for_a_token_past_its_expiry(
    keys: CountingKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    verifier = verifier_with(keys, cache_seconds=300)
    token = TokenFactory.build(ttl=timedelta(seconds=30))
    await verifier.verify(token)

    clock.now += 30 + 5 + 1  # past exp and the clock skew, well within the cache window
    await verifier.verify(token)  # (PyJWT's own clock has not moved, so the check passes)

    assert keys.lookups == 2


async def test_a_refused_token_is_not_remembered(keys: CountingKey) -> None:
    verifier = verifier_with(keys, cache_seconds=60)
    token = TokenFactory.build(now=expired_at())

    for _ in range(2):
        with pytest.raises(AuthenticationError):
            await verifier.verify(token)

    assert keys.lookups == 2


async def test_with_the_cache_off_every_request_is_checked(keys: CountingKey) -> None:
    verifier = verifier_with(keys, cache_seconds=0)
    token = TokenFactory.build()

    await verifier.verify(token)
    await verifier.verify(token)

    assert keys.lookups == 2


async def test_the_cache_holds_a_bounded_number_of_tokens(
    keys: CountingKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 2)
    verifier = verifier_with(keys, cache_seconds=60)
    first, *others = [TokenFactory.build() for _ in range(3)]
    for token in (first, *others):
        await verifier.verify(token)

    await verifier.verify(first)  # pushed out by the two later ones

    assert keys.lookups == 4


def test_the_service_never_remembers_a_token_longer_than_its_jwks_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_VERIFIED_CACHE_SECONDS", "120")
    monkeypatch.setenv("AUTH_JWKS_CACHE_SECONDS", "30")

    assert auth.token_verifier(load_settings()).cache_seconds == 30
