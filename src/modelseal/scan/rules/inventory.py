"""Findings about the inventory itself: unreadable entries, symlinks, unknown files."""

from __future__ import annotations

from collections.abc import Iterator

from modelseal.errors import FormatError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity

__all__ = ["InventoryRule"]

_SYMLINK_ESCAPES = RuleInfo(
    "MS-FILE-SYMLINK-ESCAPES",
    "Symlink leaves the model directory",
    "A symlink points outside the scanned directory: packaging or uploading the model "
    "would include a file from elsewhere on the machine.",
    Severity.MEDIUM,
)
_UNKNOWN = RuleInfo(
    "MS-FILE-UNKNOWN-FORMAT",
    "Unknown binary format",
    "The file's bytes match no known model format; it was not analysed further.",
    Severity.INFO,
)
# The Hugging Face cache links snapshots/<rev>/<file> to ../../blobs/<digest>.
_HF_BLOB_PREFIX = "../../blobs/"


class InventoryRule(Rule):
    """Reports entries the inventory could not read and symlinks that escape."""

    formats = None
    infos = (_SYMLINK_ESCAPES, _UNKNOWN)

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Raise for unreadable entries; flag escaping links and unknown binaries."""
        if entry.link_escapes and not (entry.link_target or "").startswith(_HF_BLOB_PREFIX):
            yield Finding(
                _SYMLINK_ESCAPES.id,
                _SYMLINK_ESCAPES.default_severity,
                f"symlink to {entry.link_target} points outside the scanned directory",
                entry.path,
            )
        if entry.problem is not None:
            raise FormatError(entry.problem)
        if entry.format == Format.UNKNOWN and not entry.is_member:
            yield Finding(
                _UNKNOWN.id,
                _UNKNOWN.default_severity,
                "unknown binary format; not analysed",
                entry.path,
            )
