"""SafeTensors files: strict header validation and suspicious ``__metadata__``.

Loading a safetensors file runs no code, so what matters is that every tool reads
the same tensors from it: any header :func:`modelseal.formats.safetensors.read_header`
refuses (bad lengths, duplicate keys, overlaps, gaps, non-string metadata...) is
reported and makes the file an error. A valid header is then checked for metadata
that carries code or bulky hidden data, and for padding beyond what writers emit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from modelseal.errors import FormatError
from modelseal.formats.claims import is_lfs_pointer
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.formats.safetensors import read_header
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity

__all__ = ["SafetensorsRule"]

_MALFORMED = RuleInfo(
    "MS-ST-MALFORMED",
    "Malformed SafeTensors header",
    "The header breaks the format (lengths, JSON, duplicate keys, dtype/shape/offset "
    "mismatches, overlapping or uncovered bytes, non-string metadata); parsers may "
    "disagree on its tensors.",
    Severity.MEDIUM,
)
_CODE = RuleInfo(
    "MS-ST-METADATA-CODE",
    "SafeTensors metadata contains code",
    "A __metadata__ value looks like Python or shell code; a tool that evaluates "
    "metadata (or a person who copies it) would run it.",
    Severity.MEDIUM,
)
_LARGE = RuleInfo(
    "MS-ST-METADATA-LARGE",
    "Large SafeTensors metadata",
    "__metadata__ holds unusually large values (embedded files or data).",
    Severity.LOW,
)
_PADDING = RuleInfo(
    "MS-ST-HEADER-PADDING",
    "SafeTensors header padding",
    "The JSON header is followed by more padding than writers emit (they pad with at "
    "most 7 spaces to 8-byte alignment).",
    Severity.LOW,
)

#: Metadata values above this many characters are reported as large.
LARGE_VALUE_CHARS = 64 * 1024
#: Total metadata above this is suspicious, not merely large.
HUGE_METADATA_CHARS = 8 * 1024 * 1024
_CODE_PATTERN = re.compile(
    r"__import__|\bimport\s+(?:os|sys|subprocess|socket|base64|pickle|marshal)\b"
    r"|\b(?:exec|eval|compile)\s*\(|\bos\.(?:system|popen|exec\w*|spawn\w*)\b"
    r"|\bsubprocess\.\w+|\b(?:pickle|marshal|dill)\.loads?\b|\bbase64\.b\d\ddecode\b"
    r"|\$\(\s*curl|\bcurl\s+[^|]*\|\s*(?:ba)?sh\b|<script\b",
    re.IGNORECASE,
)
_PAD_WINDOW = 64 * 1024


class SafetensorsRule(Rule):
    """Validates SafeTensors headers and inspects their metadata."""

    formats = frozenset({Format.SAFETENSORS})
    infos = (_MALFORMED, _CODE, _LARGE, _PADDING)

    def applies_to(self, entry: Entry, options: ScanOptions) -> bool:
        """SafeTensors files, and ``*.safetensors`` files too broken to be recognised
        (a header length past the end, a truncated file): those are errors, not unknown."""
        return entry.format is Format.SAFETENSORS or (
            entry.format in (Format.UNKNOWN, Format.TEXT, Format.JSON)
            and entry.name.lower().endswith(".safetensors")
            and entry.problem is None
            and not is_lfs_pointer(entry.head(64))  # the inventory rule says what it is
        )

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Yield a finding and raise for a malformed header; else check metadata."""
        try:
            header = read_header(entry)
        except FormatError as exc:
            yield Finding(_MALFORMED.id, _MALFORMED.default_severity, exc.message, "header")
            raise
        total = 0
        for key, value in header.metadata.items():
            total += len(key) + len(value)
            match = _CODE_PATTERN.search(value) or _CODE_PATTERN.search(key)
            if match:
                yield Finding(
                    _CODE.id,
                    _CODE.default_severity,
                    f"metadata {key!r} contains code-like text {match.group(0)!r}",
                    f"__metadata__.{key}",
                )
            if len(value) > LARGE_VALUE_CHARS:
                yield Finding(
                    _LARGE.id,
                    _LARGE.default_severity,
                    f"metadata {key!r} holds {len(value):,} characters",
                    f"__metadata__.{key}",
                )
        if total > HUGE_METADATA_CHARS:
            yield Finding(
                _LARGE.id,
                Severity.MEDIUM,
                f"__metadata__ holds {total:,} characters in all",
                "__metadata__",
            )
        padding = _trailing_padding(entry, header.header_length)
        if padding > 7:
            yield Finding(
                _PADDING.id,
                _PADDING.default_severity,
                f"the JSON header ends with {padding:,}{'+' if padding >= _PAD_WINDOW else ''} "
                "bytes of whitespace padding",
                "header",
            )


def _trailing_padding(entry: Entry, header_length: int) -> int:
    """Whitespace bytes at the end of the JSON header (up to a window)."""
    window = min(header_length, _PAD_WINDOW)
    with entry.open() as stream:
        stream.seek(8 + header_length - window)
        tail = stream.read(window)
    return len(tail) - len(tail.rstrip(b" \t\r\n"))
