"""``scan --deep``: run the weight-value forensics as part of the normal scan."""

from __future__ import annotations

from collections.abc import Iterator

from modelseal.formats.inventory import Entry
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding
from modelseal.weights.rules import WEIGHT_RULES

__all__ = ["WeightsRule"]


class WeightsRule(Rule):
    """Hidden payloads and injected values in tensors (only with ``ScanOptions.deep``)."""

    formats = None
    infos = WEIGHT_RULES

    def applies_to(self, entry: Entry, options: ScanOptions) -> bool:
        """With ``deep`` only: weight files read on their own (members of a readable
        container are skipped)."""
        if not options.deep:
            return False
        from modelseal.weights.scanner import has_own_tensors

        return has_own_tensors(entry)

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Yield weight findings; raise FormatError when the tensors cannot be read."""
        from modelseal.weights.scanner import describe, weight_findings

        yield from weight_findings(describe(entry))
