"""The plug point for renderers: turn a computed report into text."""

from __future__ import annotations

from abc import ABC, abstractmethod

from modelseal.scan.model import ScanReport

__all__ = ["Renderer"]


class Renderer(ABC):
    """Renders a :class:`ScanReport` (scan and ``weights scan`` share this shape)."""

    @abstractmethod
    def render(self, report: ScanReport, *, color: bool = False) -> str:
        """The report as text, ready to print."""
