"""The fleet's own error: the run itself failed (not: a scanned file is bad)."""

from __future__ import annotations

from modelseal.errors import ModelsealError

__all__ = ["FleetError"]


class FleetError(ModelsealError):
    """A source could not be listed, an engine could not start, or work was lost."""
