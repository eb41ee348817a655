"""HTTP hardening every Keel app gets: security headers, trusted hosts, CORS only on request.

- Every response carries ``X-Content-Type-Options: nosniff``, a strict
  ``Content-Security-Policy`` (scripts and styles from this origin only, no
  inline script: the ``/docs`` page loads its start-up code from a file for
  that reason), ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``.
- ``TRUSTED_HOSTS`` (default ``*``): a request whose ``Host`` is not listed
  answers 400 ``invalid_host`` before any route runs, so no absolute URL can
  ever be built from a forged host.
- ``CORS_ORIGINS``: browsers on other origins get no CORS headers at all
  unless their origin is listed.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.settings import Settings
from entrypoints.http.problems import problem

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Pure ASGI middleware: adds :data:`SECURITY_HEADERS` to every response it sees."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def host_is_trusted(host: str, trusted: Sequence[str]) -> bool:
    """Whether ``host`` (port stripped) is one of ``trusted``: names, ``*.suffix`` or ``*``."""
    if "*" in trusted:
        return True
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower()
    for pattern in trusted:
        pattern = pattern.lower()
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
        if name == pattern:
            return True
    return False


class TrustedHosts:
    """Refuses a request whose ``Host`` header is not in ``TRUSTED_HOSTS``, as a problem."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = tuple(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not host_is_trusted(
            Headers(scope=scope).get("host", ""), self.hosts
        ):
            response = problem(
                400,
                "invalid_host",
                "the Host header names no host this service answers for (TRUSTED_HOSTS)",
                title="Bad Request",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_security(app: FastAPI, settings: Settings) -> None:
    """Trusted hosts and CORS as the settings say; the headers are added by the app factory."""
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origin_list),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["Location", "Retry-After", "X-Request-ID"],
        )
    if settings.trusted_host_names != ("*",):
        app.add_middleware(TrustedHosts, hosts=settings.trusted_host_names)
