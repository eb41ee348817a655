"""Interactive API docs (Swagger UI) that work without internet access.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN, which leaves a
blank page on an offline or firewalled machine. The assets come instead from
the ``swagger-ui-bundle-v2`` package: it is published by the spec-first
organisation (the maintainers of Connexion), contains nothing but the
upstream Swagger UI ``dist`` files (5.x, which renders the OpenAPI 3.1 that
FastAPI generates), and its version moves with the lock file — unlike files
vendored into this repository, which nobody would remember to update. The
older ``swagger-ui-bundle`` ships Swagger UI 4, which cannot render OpenAPI 3.1.

The page holds no inline script: its start-up code is served as
``/docs/init.js`` and reads the OpenAPI URL from a data attribute, so the
strict ``Content-Security-Policy`` of ``entrypoints.http.security``
(``script-src 'self'``) lets it run.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
INIT_PATH = "/docs/init.js"

INIT_SCRIPT = """\
const node = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: node.dataset.src,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

PAGE = """\
<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{title}</title>
<link type="text/css" rel="stylesheet" href="{root}{assets}/swagger-ui.css">
<link rel="shortcut icon" href="{root}{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-src="{openapi}"></div>
<script src="{root}{assets}/swagger-ui-bundle.js"></script>
<script src="{root}{init}"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and the Swagger UI files it needs from this process."""
    app.mount(ASSETS_PATH, StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a path prefix, every URL the page loads needs it back.
        root = html.escape(str(request.scope.get("root_path", "")).rstrip("/"))
        return HTMLResponse(
            PAGE.format(
                title=html.escape(f"{app.title} — API docs"),
                root=root,
                assets=ASSETS_PATH,
                init=INIT_PATH,
                openapi=root + html.escape(app.openapi_url or "/openapi.json"),
            )
        )

    @app.get(INIT_PATH, include_in_schema=False)
    async def swagger_init() -> Response:
        return Response(INIT_SCRIPT, media_type="text/javascript")
