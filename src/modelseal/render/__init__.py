"""Renderers for scan-shaped reports, picked by ``--format``."""

from __future__ import annotations

import enum

from modelseal.render.interface import Renderer

__all__ = ["OutputFormat", "Renderer", "renderer_for"]


class OutputFormat(str, enum.Enum):
    """The ``--format`` choices of ``scan``, ``weights scan`` and ``check``."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"

    def __str__(self) -> str:
        return self.value


def renderer_for(fmt: OutputFormat) -> Renderer:
    """The renderer for ``fmt`` (imported on demand)."""
    if fmt is OutputFormat.JSON:
        from modelseal.render.json import JsonRenderer

        return JsonRenderer()
    if fmt is OutputFormat.SARIF:
        from modelseal.render.sarif import SarifRenderer

        return SarifRenderer()
    from modelseal.render.table import TableRenderer

    return TableRenderer()
