"""The API's security headers and its offline ``/docs`` page.

Every response gets ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
a Content-Security-Policy with ``frame-ancestors 'none'`` unless its route set its own
(the web pages do). The Swagger UI of ``/docs`` is served from the
``swagger-ui-bundle`` distribution, never a CDN, so it works with no network; its
start-up script is a file too, so the page needs no inline script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["SecurityHeaders", "mount_docs"]

_API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
_DOCS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelseal registry API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""
_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout", deepLinking: true});
"""


class SecurityHeaders:
    """Pure ASGI middleware (streams untouched) adding the headers above."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = _DOCS_CSP if path == "/docs" or path.startswith("/docs/") else _API_CSP

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"content-security-policy", csp),
                ):
                    if name not in present:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI from package data) and its assets under ``/docs/assets``."""
    from fastapi.responses import HTMLResponse, Response
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the registry extra is not installed: the API still works
        swagger_ui_path = None

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        if swagger_ui_path is None:
            return HTMLResponse(
                "<p>The API docs need the <code>swagger-ui-bundle</code> package; "
                'the schema is at <a href="/openapi.json">/openapi.json</a>.</p>'
            )
        return HTMLResponse(_DOCS_PAGE)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(_DOCS_INIT, media_type="text/javascript")

    if swagger_ui_path is not None:
        app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
