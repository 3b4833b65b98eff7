"""Findings about the inventory itself: unreadable entries, symlinks, unknown files, and
files whose content is not what their name claims (broken is never clean)."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

from modelseal.errors import FormatError
from modelseal.formats.claims import Claim, claim_for, is_lfs_pointer
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.formats.sniff import is_protobuf
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity
from modelseal.scan.pickle.streams import looks_like_pickle

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
        _check_claim(entry)
        if entry.format == Format.UNKNOWN and not entry.is_member:
            yield Finding(
                _UNKNOWN.id,
                _UNKNOWN.default_severity,
                "unknown binary format; not analysed",
                entry.path,
            )


def _check_claim(entry: Entry) -> None:
    """Raise when the name claims a model format family that the content is not in."""
    name = entry.name
    if name == "<decompressed>" and entry.container is not None:
        # A compressed stream without a .gz/.xz... suffix keeps its container's name.
        name = entry.container.rsplit("!", 1)[-1].replace("\\", "/").rsplit("/", 1)[-1]
    claim = claim_for(name)
    if claim is None or entry.format in claim.accepts or _described_elsewhere(entry, claim):
        return
    head = b"" if entry.format in (Format.EMPTY, Format.SYMLINK) else entry.head()
    size = entry.size if entry.size >= 0 else len(head)
    if (claim.protobuf and is_protobuf(head, size)) or head.startswith(claim.magics):
        return
    if (
        Format.PICKLE in claim.accepts
        and entry.format in (Format.UNKNOWN, Format.TEXT)
        and looks_like_pickle(head, truncated=len(head) < size)
    ):
        return  # a pickle without PROTO: the pickle rule walks it (and reports a break)
    if entry.format in claim.explained_for and not is_lfs_pointer(head):
        return  # e.g. the safetensors rule reads every *.safetensors and says what broke
    if entry.format is Format.EMPTY:
        what = "the file is empty"
    elif is_lfs_pointer(head):
        what = "it is a Git LFS pointer, not the file (run git lfs pull and scan again)"
    else:
        what = f"its content does not parse as one (detected: {entry.format.value})"
    raise FormatError(f"{entry.path}: named like a {claim.family}, but {what}")


def _described_elsewhere(entry: Entry, claim: Claim) -> bool:
    """Whether a file on disk next to ``entry`` describes it as raw tensor bytes."""
    if not claim.raw_if_sibling or entry.is_member or entry.fs_path is None:
        return False
    here = Path(entry.path)
    stem = here.name.rsplit(".", 1)[0]
    return any(
        next(here.parent.glob(pattern.format(stem=glob.escape(stem))), None) is not None
        for pattern in claim.raw_if_sibling
    )
