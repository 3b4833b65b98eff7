"""The registry's web pages: server-rendered HTML (Jinja2), no JavaScript.

:data:`router` is mounted by :func:`modelseal.registry.app.create_app`. Pages:
namespaces, models, versions (signer, signature status, scan findings, lineage),
SBOM view and download, quarantined uploads, and sign-in with an API token.
"""

from __future__ import annotations

from modelseal.registry.web.routes import router

__all__ = ["router"]
