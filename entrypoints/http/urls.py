"""Relative URLs for ``Location`` headers: nothing from the client's ``Host`` is echoed.

``request.url_for`` builds an absolute URL from the request's ``Host``
header, so ``Host: evil.example`` came back as ``Location:
http://evil.example/...`` — a gift to cache poisoning and phishing. RFC 9110
allows a relative ``Location``; the path here is the route's, under the
server's ``root_path`` (set by the operator, never by the client).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request


def location(request: Request, name: str, **path_params: Any) -> str:
    """The path of the route called ``name`` with ``path_params``, relative to this host."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return root + str(request.app.url_path_for(name, **path_params))
