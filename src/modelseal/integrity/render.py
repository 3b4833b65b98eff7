"""Render integrity results for people (text) or programs (JSON). The core never prints."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from modelseal.integrity.results import VerifyResult

__all__ = ["render_verify", "verify_to_dict"]

_MAX_UNSIGNED = 20


def verify_to_dict(result: VerifyResult) -> dict[str, Any]:
    """The stable JSON shape of a verification result (``version`` 1)."""
    data = dataclasses.asdict(result)
    return {"version": 1, **data}


def _short(digest: str | None) -> str:
    if digest is None:
        return "-"
    parts = digest.split(",")
    return parts[0] if len(parts) == 1 else f"{parts[0]},... ({len(parts)} shards)"


def render_verify(result: VerifyResult, fmt: str = "table") -> str:
    """Text or JSON for ``result``."""
    if fmt == "json":
        return json.dumps(verify_to_dict(result), indent=2)
    reasons = result.reasons
    if result.model_name is None and reasons:
        # nothing of the signature could be trusted (e.g. the wrong key): the reason is the news
        lines = [f"{'VALID' if result.ok else 'INVALID'}: {reasons[0]}"]
        reasons = reasons[1:]
    else:
        lines = [
            f"{'VALID' if result.ok else 'INVALID'}: {result.model_name or '?'}"
            + (f" (root sha256:{result.root_digest})" if result.root_digest else "")
        ]
    if result.signer:
        lines.append(
            f"  signed by {result.signer}; {result.method}/{result.hash_algorithm}; "
            f"{result.files_checked} file(s) checked"
        )
    for reason in reasons:
        lines.append(f"  reason: {reason}")
    for change in result.added:
        lines.append(f"  added    {change.path}  {_short(change.actual)}")
    for change in result.removed:
        lines.append(f"  removed  {change.path}  (signed {_short(change.expected)})")
    for change in result.changed:
        lines.append(
            f"  changed  {change.path}  signed {_short(change.expected)}"
            f" now {_short(change.actual)}"
        )
    for change in result.renamed:
        lines.append(f"  renamed  {change.renamed_from} -> {change.path}  {_short(change.actual)}")
    for tensor in result.tensor_changes:
        lines.append(f"  tensor {tensor.kind:<8} {tensor.file}: {tensor.name}")
    if result.ignore_paths:
        lines.append(f"  ignore paths recorded in the signature: {', '.join(result.ignore_paths)}")
    # Code first; long listings (a .git directory) are cut, JSON keeps everything.
    unsigned = sorted(result.unsigned, key=lambda u: (not u.is_code, u.path))
    for item in unsigned[:_MAX_UNSIGNED]:
        flag = " [code]" if item.is_code else ""
        lines.append(f"  unsigned {item.path}{flag} ({item.reason})")
    if len(unsigned) > _MAX_UNSIGNED:
        lines.append(f"  ... and {len(unsigned) - _MAX_UNSIGNED} more unsigned file(s)")
    for link in result.symlinks:
        lines.append(f"  symlink  {link} (refused)")
    if result.provenance is not None:
        prov = result.provenance
        lines.append(
            f"  provenance: {'ok' if prov.ok else 'FAILED'}; builder {prov.builder or '?'}"
        )
        lines.extend(f"    base model {b}" for b in prov.base_models)
        lines.extend(f"    dataset    {d}" for d in prov.datasets)
    return "\n".join(lines)
