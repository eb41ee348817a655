"""Who is calling: bearer tokens, scopes and the write rate, as FastAPI dependencies.

    ReaderDep = Annotated[Principal, Depends(authenticated("orders:read"))]
    WriterDep = Annotated[Principal, Depends(authenticated("orders:write", write=True))]

A route that declares one gets the :class:`~domain.principal.Principal` of a
verified token holding the scope, and hands it to the service layer, which
decides what that subject may touch. Everything else is answered here, as
problem documents: no or a bad token → 401 ``unauthenticated`` with
``WWW-Authenticate: Bearer``; a token without the scope → 403
``insufficient_scope``; a principal over ``RATE_LIMIT`` on a write → 429
``rate_limited`` with ``Retry-After``. The token itself is never logged nor
repeated in an answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.auth import AuthenticationError
from adapters.container import ContainerDep
from domain.principal import Principal
from entrypoints.http.problems import HttpProblem

bearer = HTTPBearer(auto_error=False, description="A JWT; `keel token SUBJECT` prints one.")
"""Reads ``Authorization: Bearer ...`` and documents the scheme in OpenAPI (Swagger's Authorize)."""

CHALLENGE = "Bearer"


def unauthenticated(detail: str) -> HttpProblem:
    return HttpProblem(
        401,
        "unauthenticated",
        detail,
        title="Unauthenticated",
        headers={"WWW-Authenticate": CHALLENGE},
    )


def authenticated(scope: str, *, write: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency answering the caller's principal, which must hold ``scope``.

    ``write=True`` also counts the request against the principal's rate limit.
    """

    async def principal(
        container: ContainerDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None:
            raise unauthenticated("this request needs an 'Authorization: Bearer <token>' header")
        verifier = getattr(container, "authenticator", None)
        if verifier is None:
            raise RuntimeError("the container has no authenticator; build it with bootstrap()")
        try:
            found: Principal = await verifier.verify(credentials.credentials)
        except AuthenticationError as exc:
            raise unauthenticated(str(exc)) from None
        if not found.has_scope(scope):
            raise HttpProblem(
                403,
                "insufficient_scope",
                f"the token does not grant the scope {scope!r} this request needs",
                title="Insufficient scope",
                headers={
                    "WWW-Authenticate": f'{CHALLENGE} error="insufficient_scope", scope="{scope}"'
                },
            )
        limiter = getattr(container, "rate_limiter", None)
        if write and limiter is not None:
            wait = await limiter.hit(found.subject)
            if wait is not None:
                raise HttpProblem(
                    429,
                    "rate_limited",
                    "too many writes for this principal; try again after the Retry-After delay",
                    title="Too Many Requests",
                    headers={"Retry-After": str(int(wait))},
                )
        return found

    return principal
