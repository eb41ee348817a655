"""Interactive API docs (Swagger UI) that work without internet access.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN, which leaves a
blank page on an offline or firewalled machine. The assets come instead from
the ``swagger-ui-bundle-v2`` package: it is published by the spec-first
organisation (the maintainers of Connexion), contains nothing but the
upstream Swagger UI ``dist`` files (5.x, which renders the OpenAPI 3.1 that
FastAPI generates), and its version moves with the lock file — unlike files
vendored into this repository, which nobody would remember to update. The
older ``swagger-ui-bundle`` ships Swagger UI 4, which cannot render OpenAPI 3.1.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and the Swagger UI files it needs from this process."""
    app.mount(ASSETS_PATH, StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a path prefix, every URL the page loads needs it back.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} — API docs",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
        )
