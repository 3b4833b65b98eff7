"""Compare two model SBOMs: files and hashes, scan findings, base models, datasets, licenses,
dependencies.

Works across formats (an old CycloneDX BOM against a new SPDX one) because both
are read into a :class:`~modelseal.sbom.view.BomView` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelseal.sbom.view import BomFinding, BomView, read_bom

__all__ = ["Change", "SbomDiff", "diff_sbom"]


@dataclass(frozen=True)
class Change:
    """One difference: ``added``, ``removed`` or ``changed``."""

    #: ``file``, ``finding``, ``base_model``, ``dataset``, ``license``, ``dependency`` or
    #: ``model``. A finding is named ``FILE [location]: RULE``; its value is
    #: ``SEVERITY: MESSAGE``, so a new critical finding shows as an added ``critical: ...``.
    kind: str
    name: str
    change: str
    old: str = ""
    new: str = ""


@dataclass(frozen=True)
class SbomDiff:
    """Every difference between two BOMs, grouped by kind in a stable order."""

    changes: tuple[Change, ...]

    @property
    def identical(self) -> bool:
        """True when nothing that is compared differs."""
        return not self.changes

    def of_kind(self, kind: str) -> tuple[Change, ...]:
        """The changes of one kind."""
        return tuple(c for c in self.changes if c.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready list of changes."""
        return {"identical": self.identical, "changes": [c.__dict__ for c in self.changes]}


def _sets(kind: str, old: tuple[str, ...], new: tuple[str, ...]) -> list[Change]:
    changes = [Change(kind, n, "removed", old=n) for n in sorted(set(old) - set(new))]
    changes += [Change(kind, n, "added", new=n) for n in sorted(set(new) - set(old))]
    return changes


def _maps(kind: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Change]:
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(Change(kind, name, "removed", old=old[name]))
        elif name not in old:
            changes.append(Change(kind, name, "added", new=new[name]))
        elif old[name] != new[name]:
            changes.append(Change(kind, name, "changed", old[name], new[name]))
    return changes


def _file_digest(algs: Mapping[str, str]) -> str:
    return algs.get("sha256") or algs.get("sha512") or next(iter(algs.values()), "")


def _findings(findings: tuple[BomFinding, ...]) -> dict[str, str]:
    """``FILE[!member] [location]: RULE`` -> ``SEVERITY: MESSAGE``; the directory the model
    was scanned in (``at ./v1/model.bin``) is dropped, so two versions' BOMs compare."""
    named = {}
    for f in findings:
        _, found, inside = f.where.removeprefix("at ").partition(f.file)
        named[f"{f.file}{inside if found else ''}: {f.rule}"] = f"{f.severity}: {f.message}"
    return named


def diff_sbom(old: Mapping[str, Any] | BomView, new: Mapping[str, Any] | BomView) -> SbomDiff:
    """What changed from ``old`` to ``new``."""
    before = old if isinstance(old, BomView) else read_bom(old)
    after = new if isinstance(new, BomView) else read_bom(new)
    changes: list[Change] = []
    if before.model != after.model:
        changes.append(Change("model", after.model, "changed", before.model, after.model))
    changes += _maps(
        "file",
        {p: _file_digest(a) for p, a in before.files.items()},
        {p: _file_digest(a) for p, a in after.files.items()},
    )
    changes += _maps("finding", _findings(before.findings), _findings(after.findings))
    changes += _sets("base_model", before.base_models, after.base_models)
    changes += _sets("dataset", before.datasets, after.datasets)
    changes += _sets("license", before.licenses, after.licenses)
    changes += _maps("dependency", before.packages, after.packages)
    return SbomDiff(tuple(changes))
