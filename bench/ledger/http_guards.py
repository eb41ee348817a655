"""What the hand-written twins do by hand that Keel does for every request.

The benchmark compares like with like: Keel checks a bearer JWT, a scope and
ownership and adds its security headers on every request, so the twins
(``http_plain``, ``http_raw``) must too, or Keel's safety would be measured
as slowness. Written as a developer without Keel would write it: one PyJWT
``decode`` per request against the public key Keel trusts, a scope test, a
401/403 problem document (Keel's own constructor, so the documents match), and
Keel's header middleware, a plain ASGI wrapper.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp

from adapters.auth import DevKeyPair, load_public_key
from adapters.settings import Settings
from domain.text import unsafe_character
from entrypoints.http.auth import unauthenticated
from entrypoints.http.problems import HttpProblem
from entrypoints.http.security import SecurityHeaders

REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
MAX_SUBJECT_LENGTH = 200
"""The width of ``ledger_accounts.owner_subject``."""


@dataclass(frozen=True)
class TokenCheck:
    """The key, algorithms, issuer, audience and leeway Keel checks tokens with."""

    key: Any
    algorithms: list[str]
    issuer: str
    audience: str
    leeway: float

    @classmethod
    def of(cls, settings: Settings) -> TokenCheck:
        """``AUTH_PUBLIC_KEY`` (any of ``AUTH_ALGORITHMS``), else the development key.

        The development key of ``AUTH_DEV_KEY_FILE`` is an EC P-256 key (ES256),
        which is what the benchmark sets. A JWKS URL is beyond a hand-written twin.
        """
        if settings.auth_jwks_url:
            raise RuntimeError(
                "the benchmark twins take AUTH_PUBLIC_KEY or AUTH_DEV_KEY_FILE, not AUTH_JWKS_URL"
            )
        if settings.auth_public_key is not None:
            key = load_public_key(settings.auth_public_key.get_secret_value())
            algorithms = list(settings.algorithms)
        else:
            key = DevKeyPair(settings.auth_dev_key_file).private_key().public_key()
            algorithms = ["ES256"]
        return cls(
            key=key,
            algorithms=algorithms,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            leeway=settings.auth_leeway_seconds,
        )

    def subject(self, authorization: str, scope: str) -> str:
        """The ``sub`` of a valid bearer token granting ``scope``; else a 401 or 403 problem."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated("this request needs an 'Authorization: Bearer <token>' header")
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise unauthenticated("the token is not valid") from None
        subject, granted = claims.get("sub"), claims.get("scope", "")
        if (
            not isinstance(subject, str)
            or not 1 <= len(subject) <= MAX_SUBJECT_LENGTH
            or unsafe_character(subject) is not None
            or not isinstance(granted, str)
        ):
            raise unauthenticated("the token's 'sub' or 'scope' is not acceptable")
        if scope not in granted.split():
            raise HttpProblem(
                403,
                "insufficient_scope",
                f"the token does not grant the scope {scope!r} this request needs",
                title="Insufficient scope",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return subject


def requires(scope: str) -> Callable[[Request], Awaitable[str]]:
    """A FastAPI dependency: the caller's subject, from the app's ``state.token_check``."""

    async def caller(request: Request) -> str:
        check: TokenCheck = request.app.state.token_check
        return check.subject(request.headers.get("authorization", ""), scope)

    return caller


Reader = Annotated[str, Depends(requires("ledger:read"))]
Writer = Annotated[str, Depends(requires("ledger:write"))]


def guarded(app: FastAPI, settings: Settings) -> ASGIApp:
    """``app`` checking tokens as Keel does under ``settings``, with its security headers.

    The headers wrap the whole app, as Keel's do, so that even Starlette's
    last-resort 500 carries them.
    """
    app.state.token_check = TokenCheck.of(settings)
    return SecurityHeaders(app)
