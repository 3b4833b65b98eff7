"""JSON output: the DESIGN.md contract, nothing more and nothing less."""

from __future__ import annotations

import json

from modelseal.render.interface import Renderer
from modelseal.scan.model import ScanReport

__all__ = ["JsonRenderer"]


class JsonRenderer(Renderer):
    """``{"version": 1, "results": [...], "summary": {...}}``."""

    def render(self, report: ScanReport, *, color: bool = False) -> str:
        """Indented, key order stable."""
        return json.dumps(report.to_dict(), indent=2)
