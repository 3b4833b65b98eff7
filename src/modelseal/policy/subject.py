"""The model under check, with the shared results every check reads (computed once)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelseal.formats.inventory import Entry, walk
from modelseal.scan.interface import ScanOptions
from modelseal.scan.model import ScanReport

if TYPE_CHECKING:
    from modelseal.sbom.collect import ModelFacts

__all__ = ["Subject"]


@dataclass
class Subject:
    """A model path plus what the caller supplied (keys, signature), with lazy caches.

    Checks ask for ``scan_report(...)``, ``entries``, ``facts`` ... and the work is
    done at most once per subject, whatever the number of checks needing it.
    """

    path: Path
    #: Trusted public keys given on the command line (added to the policy's keys).
    keys: tuple[Path, ...] = ()
    #: The signature bundle; default: ``<path>.sig`` next to the model.
    signature: Path | None = None
    _scans: dict[tuple[bool, bool], ScanReport] = field(default_factory=dict, repr=False)

    def scan_report(self, *, strict: bool, deep: bool) -> ScanReport:
        """The static scan of the model (cached per option set)."""
        key = (strict, deep)
        if key not in self._scans:
            from modelseal.scan import scan

            self._scans[key] = scan([self.path], options=ScanOptions(strict=strict, deep=deep))
        return self._scans[key]

    @functools.cached_property
    def entries(self) -> tuple[Entry, ...]:
        """Every file and archive member, with its detected format."""
        return tuple(walk([self.path]))

    @functools.cached_property
    def facts(self) -> ModelFacts:
        """What the model says about itself (card, config, metadata), as for its SBOM."""
        from modelseal.sbom.collect import collect

        return collect(self.path)

    @property
    def signature_path(self) -> Path:
        """Where the signature is expected (default ``PATH.sig`` next to the model)."""
        if self.signature is not None:
            return self.signature
        from modelseal.integrity.operations import default_signature_path

        return default_signature_path(self.path)
