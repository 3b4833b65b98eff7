"""`modelseal info` for people: a model or version document as an aligned field table.

The registry's JSON document is shown as ``label  value`` rows like the other tables:
known fields get a label and a readable value (``none`` instead of ``None``, tags as
``latest -> 1.0``, the scan summary in words), unknown fields still show, generically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["render_info"]

#: Field -> label, in display order; fields not listed follow, labelled by their name.
_LABELS = {
    "description": "description",
    "state": "state",
    "digest": "digest",
    "parent": "parent",
    "latest_version": "latest version",
    "tags": "tags",
    "signed_by": "signed by key",
    "signature_digest": "signature",
    "scan_verdict": "scan",
    "scan_summary": "scan summary",
    "scan_threshold": "gate threshold",
    "sbom_digest": "sbom",
    "total_size": "size",
    "uploader": "uploader",
    "created_at": "created",
    "serial": "serial",
    "resolved_by": "resolved by",
}
#: Shown in the heading or in their own section.
_HEADING = ("namespace", "model", "version", "files", "reasons")
_DIGESTS = ("digest", "signature_digest", "sbom_digest")


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    scaled = float(count)
    for unit in ("KB", "MB", "GB"):
        scaled /= 1000
        if scaled < 1000:
            return f"{scaled:.1f} {unit}"
    return f"{scaled / 1000:.1f} TB"


def _scan_summary(summary: Mapping[str, Any]) -> str:
    severities = summary.get("by_severity") or {}
    found = ", ".join(f"{n} {s}" for s, n in severities.items() if n)
    text = f"{summary.get('files', '?')} file(s), {summary.get('findings', '?')} finding(s)"
    return f"{text} ({found})" if found else text


def _value(name: str, value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "none" if name == "parent" else "-"
    if name in _DIGESTS and isinstance(value, str):
        return f"sha256:{value}"
    if name == "total_size" and isinstance(value, int):
        return _size(value)
    if name == "scan_summary" and isinstance(value, Mapping):
        return _scan_summary(value)
    if name == "created_at" and isinstance(value, str):
        return value.replace("T", " ").split(".")[0].removesuffix("+00:00") + " UTC"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} -> {_value(name, v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(name, v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_info(doc: Mapping[str, Any]) -> str:
    """The text of ``modelseal info`` for a model or version document."""
    title = f"{doc.get('namespace', '?')}/{doc.get('model', '?')}"
    if doc.get("version"):
        title += f":{doc['version']}"
    names = [n for n in _LABELS if n in doc]
    names += [n for n in doc if n not in _LABELS and n not in _HEADING]
    rows = [(_LABELS.get(n, n.replace("_", " ")), _value(n, doc[n])) for n in names]
    width = max((len(label) for label, _ in rows), default=0)
    lines = [title, *(f"  {label:<{width}}  {value}" for label, value in rows)]
    for reason in doc.get("reasons") or []:
        lines.append(f"  reason: {reason}")
    files = doc.get("files") or []
    if files:
        lines.append(f"  files ({len(files)})")
        path_width = max(len(str(f.get("path", ""))) for f in files)
        for f in files:
            lines.append(
                f"    {f.get('path', '')!s:<{path_width}}  {_size(int(f.get('size', 0))):>9}"
                f"  sha256:{str(f.get('digest', ''))[:16]}…"
            )
    return "\n".join(lines)
