"""Bearer tokens for the tests: one test key pair, and a factory that mints with it.

The test run trusts this key the way production trusts an identity provider:
``tests/conftest.py`` puts its public half in ``AUTH_PUBLIC_KEY`` (and a
command signing key in ``COMMAND_SIGNING_KEY``) before any settings are read,
so every ``Settings()`` of the run — and every ``keel`` process a test starts
— accepts the tokens minted here. ``TokenFactory.build(subject=..., scopes=...)``
gives a token; ``auth_headers(token)`` the header to send it in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from factory.base import Factory
from factory.declarations import LazyFunction

from adapters.auth import TokenIssuer

ISSUER = "keel"
AUDIENCE = "keel"
ALL_SCOPES = ("ledger:read", "ledger:write")
SIGNING_KEY = "test-command-signing-key"
"""``COMMAND_SIGNING_KEY`` of the test run."""

PRIVATE_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY_PEM = (
    PRIVATE_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)

TEST_ISSUER = TokenIssuer(PRIVATE_KEY, issuer=ISSUER, audience=AUDIENCE, key_id="test")


def new_subject() -> str:
    return f"user-{uuid4()}"


def _mint(
    subject: str,
    scopes: tuple[str, ...],
    ttl: timedelta,
    now: datetime | None,
    extra: dict[str, Any],
) -> str:
    return TEST_ISSUER.mint(subject, scopes=scopes, ttl=ttl, now=now, **extra)


class TokenFactory(Factory[str]):
    """A valid token for a fresh subject with every ledger scope; override what a test needs.

    ``now`` moves the token's clock (``iat``/``nbf``/``exp`` follow), ``extra`` adds or
    overrides claims (``{"iss": "someone-else"}``).
    """

    class Meta:
        model = _mint

    subject = LazyFunction(new_subject)  # type: ignore[no-untyped-call]
    scopes = ALL_SCOPES
    ttl = timedelta(hours=1)
    now = None
    extra = LazyFunction(dict)  # type: ignore[no-untyped-call]


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bearer_for(subject: str, *scopes: str) -> dict[str, str]:
    """The header of a fresh token for ``subject`` (every ledger scope unless given)."""
    return auth_headers(TokenFactory.build(subject=subject, scopes=scopes or ALL_SCOPES))


def expired_at() -> datetime:
    """A ``now`` that makes a one-hour token expired well beyond the allowed skew."""
    return datetime.now(UTC) - timedelta(hours=2)
