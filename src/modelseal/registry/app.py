"""The FastAPI application factory: builds state from settings and mounts the routers."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from modelseal.errors import ModelsealError, RegistryError
from modelseal.registry.settings import RegistrySettings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]

_log = logging.getLogger("modelseal.registry")


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """A registry app for ``settings`` (default: from the environment).

    The database must be migrated (``modelseal admin migrate``; ``modelseal serve``
    does it at start).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from modelseal import __version__
    from modelseal.registry.apidocs import SecurityHeaders, mount_docs
    from modelseal.registry.db.session import create_engine_for, session_factory
    from modelseal.registry.errors import http_status
    from modelseal.registry.identity import TokenIdentityProvider
    from modelseal.registry.publish import Staging
    from modelseal.registry.routers import ROUTERS
    from modelseal.registry.services.gate_queue import GateQueue
    from modelseal.registry.storage import open_store
    from modelseal.registry.transparency_store import RegistryLog

    settings = settings or get_settings()
    app = FastAPI(
        title="modelseal registry",
        version=__version__,
        description="Publish signed, scanned models; pull them with proof.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(SecurityHeaders)
    mount_docs(app)
    app.dependency_overrides[get_settings] = lambda: settings
    engine = create_engine_for(settings.database_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    # Read by ``auth.allowed_actions``: with anonymous reads off, public namespaces
    # are readable by signed-in users only.
    info = dict(app.state.sessions.kw.get("info") or {})
    app.state.sessions.configure(
        info={**info, "allow_anonymous_read": settings.allow_anonymous_read}
    )
    app.state.store = open_store(
        settings.blob_location,
        endpoint_url=settings.s3_endpoint_url,
        presign_seconds=settings.presign_seconds,
    )
    app.state.staging = Staging(settings.staging_dir)
    app.state.identity = TokenIdentityProvider()
    app.state.log = RegistryLog.for_settings(settings)
    app.state.gate = GateQueue(
        workers=settings.gate_workers,
        capacity=settings.gate_capacity,
        per_user=settings.gate_commits_per_user,
        user_bytes_per_hour=settings.max_scan_bytes_per_user_hour,
    )

    @app.exception_handler(ModelsealError)
    async def _modelseal_error(request: Request, exc: ModelsealError) -> JSONResponse:
        status = http_status(exc) if isinstance(exc, RegistryError) else 400
        return JSONResponse(
            {
                "error": {
                    "code": getattr(exc, "code", "error"),
                    "message": exc.message,
                    "advice": exc.advice,
                }
            },
            status_code=status,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse(
            {"error": {"code": "bad_request", "message": problems[:1000], "advice": None}},
            status_code=400,
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal server error", "advice": None}},
            status_code=500,
        )

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness probe."""
        return {"status": "ok", "version": __version__}

    for name in ROUTERS:
        module = importlib.import_module(f"modelseal.registry.routers.{name}")
        app.include_router(module.router, prefix="/v1")
    # The Hugging Face Hub's download API, for unmodified HF clients (HF_ENDPOINT=URL/hf).
    app.include_router(importlib.import_module("modelseal.registry.routers.hf").router)
    app.include_router(importlib.import_module("modelseal.registry.web").router)
    return app
