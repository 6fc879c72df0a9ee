"""Interactive API documentation served from files inside the package: Swagger UI at ``/docs`` and ReDoc at
``/redoc``, with their scripts and styles under ``/docs/static/`` (no CDN, so the pages work offline and leak no
request to an outside host). The vendored assets and their licences are in ``service/static/`` (see its
README.md for versions and provenance).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: where the vendored assets are mounted
ASSETS = "/docs/static"
SWAGGER_JS = f"{ASSETS}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{ASSETS}/swagger-ui/swagger-ui.css"
FAVICON = f"{ASSETS}/swagger-ui/favicon-32x32.png"
REDOC_JS = f"{ASSETS}/redoc/redoc.standalone.js"
#: Swagger UI's default validator badge calls an outside host with the spec's URL; null turns it off
SWAGGER_PARAMETERS = {"validatorUrl": None}


def static_dir() -> Path:
    """The package's ``static`` folder (a real directory: the package is installed as files, not a zip)."""
    return Path(str(files("banditroute.service") / "static"))


def install(app: FastAPI) -> None:
    """Mount the assets and add ``/docs`` and ``/redoc`` (the app is built with ``docs_url=None, redoc_url=None``).
    URLs carry the ASGI ``root_path``, so the pages work behind a proxy that serves the API under a prefix."""
    app.mount(ASSETS, StaticFiles(directory=static_dir()), name="docs-static")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{title} - Swagger UI",
            swagger_js_url=root + SWAGGER_JS,
            swagger_css_url=root + SWAGGER_CSS,
            swagger_favicon_url=root + FAVICON,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{title} - ReDoc",
            redoc_js_url=root + REDOC_JS,
            redoc_favicon_url=root + FAVICON,
            with_google_fonts=False,
        )
