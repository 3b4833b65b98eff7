"""Match a model SBOM against an offline OSV advisory set.

Advisories are OSV JSON documents (one per file, a list, or an OSV
``{"vulns": [...]}`` batch), in a file or a directory tree. What is matched:

* PyPI packages (``affected[].package.ecosystem == "PyPI"``) by normalized name
  and version, using the ``versions`` list and ``ECOSYSTEM``/``SEMVER`` ranges
  (``introduced``/``fixed``/``last_affected`` events) compared with ``packaging``.
  A package without a pinned version in the BOM is a *possible* hit.
* Models (ecosystem ``HuggingFace``, or a ``pkg:huggingface/`` purl) by repo id,
  against the model itself and its base models; and any file of the model by
  SHA-256, listed in ``affected[].ecosystem_specific.sha256`` (or
  ``database_specific.sha256``).
* Datasets (ecosystem ``HuggingFace-Datasets``, or a ``datasets/`` name prefix)
  by name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.errors import SbomError
from modelseal.sbom.view import BomView, normalize_package, read_bom

__all__ = [
    "Advisory",
    "AuditHit",
    "AuditReport",
    "audit_sbom",
    "load_advisories",
    "version_affected",
]

#: The most advisory files read from one directory.
MAX_ADVISORY_FILES = 200_000
MAX_ADVISORY_BYTES = 32 * 1024**2


@dataclass(frozen=True)
class Affected:
    """One ``affected`` entry of an advisory."""

    ecosystem: str
    name: str
    versions: tuple[str, ...] = ()
    #: (range type, events as (kind, version) pairs) per range.
    ranges: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    sha256: tuple[str, ...] = ()


@dataclass(frozen=True)
class Advisory:
    """An OSV advisory reduced to what matching needs."""

    id: str
    summary: str
    severity: str
    affected: tuple[Affected, ...]
    aliases: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class AuditHit:
    """One BOM component matched by one advisory."""

    advisory: str
    severity: str
    #: ``pypi``, ``model``, ``dataset`` or ``file``.
    kind: str
    component: str
    version: str
    summary: str
    #: False for a package whose version is not pinned in the BOM (it may be affected).
    certain: bool = True
    #: Why it matched (``version 4.8.2 in range <4.36.0``, ``sha256 ...``).
    reason: str = ""


@dataclass(frozen=True)
class AuditReport:
    """The outcome of one audit."""

    hits: tuple[AuditHit, ...]
    advisories: int
    components: int
    warnings: tuple[str, ...] = ()

    def failed(self, *, include_possible: bool = False) -> bool:
        """True when something is affected (possible hits count if asked)."""
        return any(h.certain or include_possible for h in self.hits)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "hits": [h.__dict__ for h in self.hits],
            "advisories": self.advisories,
            "components": self.components,
            "warnings": list(self.warnings),
        }


def _eco(value: str) -> str:
    return re.sub(r"[^a-z]", "", value.lower())


def _severity(raw: Mapping[str, Any]) -> str:
    for holder in (raw.get("database_specific"), raw):
        if isinstance(holder, dict) and isinstance(holder.get("severity"), str):
            return str(holder["severity"]).lower()
    scores = raw.get("severity")
    if isinstance(scores, list) and scores and isinstance(scores[0], dict):
        return str(scores[0].get("score", "unknown"))[:80]
    return "unknown"


def _affected(raw: Any) -> Affected | None:
    if not isinstance(raw, dict):
        return None
    package: dict[str, Any] = raw["package"] if isinstance(raw.get("package"), dict) else {}
    ecosystem, name = str(package.get("ecosystem", "")), str(package.get("name", ""))
    purl = str(package.get("purl", ""))
    if purl.startswith("pkg:huggingface/") and not name:
        ecosystem, name = "HuggingFace", purl.removeprefix("pkg:huggingface/").split("@")[0]
    elif purl.startswith("pkg:huggingface/"):
        ecosystem = ecosystem or "HuggingFace"
    ranges = []
    for item in raw.get("ranges") or []:
        if not isinstance(item, dict):
            continue
        events = tuple(
            (kind, str(value))
            for event in item.get("events") or []
            if isinstance(event, dict)
            for kind, value in event.items()
            if kind in ("introduced", "fixed", "last_affected")
        )
        ranges.append((str(item.get("type", "")), events))
    hashes: list[str] = []
    for holder in (raw.get("ecosystem_specific"), raw.get("database_specific")):
        if isinstance(holder, dict) and isinstance(holder.get("sha256"), list):
            hashes += [str(h).lower() for h in holder["sha256"]]
    versions = tuple(str(v) for v in raw.get("versions") or [] if isinstance(v, (str, int)))
    return Affected(ecosystem, name, versions, tuple(ranges), tuple(hashes))


def _advisory(raw: Any, source: str) -> Advisory | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        return None
    affected = tuple(a for a in map(_affected, raw.get("affected") or []) if a is not None)
    return Advisory(
        id=raw["id"],
        summary=str(raw.get("summary") or raw.get("details") or "")[:300],
        severity=_severity(raw),
        affected=affected,
        aliases=tuple(str(a) for a in raw.get("aliases") or []),
        source=source,
    )


def _documents(path: Path) -> Iterator[tuple[Path, Any]]:
    files: Iterable[Path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
    elif path.exists():
        files = [path]
    else:
        raise SbomError(f"{path}: no such advisory file or directory")
    for count, file in enumerate(files):
        if count >= MAX_ADVISORY_FILES:
            raise SbomError(f"{path}: more than {MAX_ADVISORY_FILES:,} advisory files")
        try:
            if file.stat().st_size > MAX_ADVISORY_BYTES:
                yield file, SbomError(f"{file}: advisory file too large; skipped")
                continue
            yield file, json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            yield file, SbomError(f"{file}: not OSV JSON ({exc.__class__.__name__}); skipped")


def load_advisories(
    path: str | os.PathLike[str],
) -> tuple[tuple[Advisory, ...], tuple[str, ...]]:
    """Read OSV advisories from a file or directory: (advisories, warnings).

    Files that cannot be read are warnings, but when not one advisory could be read the
    whole load fails (``SbomError``): an audit against nothing would report "no match".
    """
    advisories: list[Advisory] = []
    warnings: list[str] = []
    for file, data in _documents(Path(path)):
        if isinstance(data, SbomError):
            warnings.append(data.message)
            continue
        items = data.get("vulns") if isinstance(data, dict) and "vulns" in data else data
        for raw in items if isinstance(items, list) else [items]:
            advisory = _advisory(raw, str(file))
            if advisory is None:
                warnings.append(f"{file}: an entry without an OSV id was skipped")
            else:
                advisories.append(advisory)
    if not advisories:
        why = ""
        if warnings:
            more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
            first = warnings[0].removeprefix(f"{path}: ").removesuffix("; skipped")
            why = f": {first}{more}"
        raise SbomError(
            f"{path}: no OSV advisory could be read{why}",
            advice="give an OSV JSON file (or a directory of them), e.g. an osv.dev export",
        )
    return tuple(advisories), tuple(warnings)


def _parse(version: str, semver: bool = False) -> Any:
    from packaging.version import InvalidVersion, Version

    text = version.lstrip("v") if semver else version
    try:
        return Version(text)
    except InvalidVersion:
        return None


def version_affected(version: str, affected: Affected) -> str | None:
    """Why ``version`` is affected (a short reason), or None if it is not."""
    parsed = _parse(version)
    for listed in affected.versions:
        if listed == version or (parsed is not None and _parse(listed) == parsed):
            return f"version {version} listed"
    if parsed is None:
        return None
    for kind, events in affected.ranges:
        if kind not in ("ECOSYSTEM", "SEMVER"):
            continue
        state, opened = False, ""
        ordered = sorted(
            ((k, v, _parse(v, kind == "SEMVER")) for k, v in events if v != "0"),
            key=lambda e: e[2] if e[2] is not None else parsed,
        )
        if any(k == "introduced" and v == "0" for k, v in events):
            state, opened = True, "0"
        for event, raw, bound in ordered:
            if bound is None:
                continue
            if event == "introduced" and parsed >= bound:
                state, opened = True, raw
            elif (event == "fixed" and parsed >= bound) or (
                event == "last_affected" and parsed > bound
            ):
                state = False
        if state:
            limits = [f"{k} {v}" for k, v in events if k != "introduced"]
            return f"version {version} in range (introduced {opened}; {', '.join(limits)})"
    return None


def audit_sbom(
    bom: Mapping[str, Any] | BomView,
    advisories: str | os.PathLike[str] | Iterable[Advisory],
) -> AuditReport:
    """Match every component of ``bom`` against ``advisories`` (a path or loaded ones)."""
    view = bom if isinstance(bom, BomView) else read_bom(bom)
    warnings: tuple[str, ...] = ()
    if isinstance(advisories, (str, os.PathLike)):
        loaded, warnings = load_advisories(advisories)
    else:
        loaded = tuple(advisories)
    models = {name.lower(): name for name in (view.model, *view.base_models) if name}
    if view.model_purl and view.model_purl.startswith("pkg:huggingface/"):
        repo = view.model_purl.removeprefix("pkg:huggingface/").split("@")[0]
        models.setdefault(repo.lower(), repo)
    datasets = {name.lower(): name for name in view.datasets}
    hashes = {digest.lower(): path for path, algs in view.files.items() for digest in algs.values()}
    hits: list[AuditHit] = []
    for advisory in loaded:
        for affected in advisory.affected:
            hits.extend(_match(advisory, affected, view, models, datasets, hashes))
    unique = list(dict.fromkeys(hits))
    unique.sort(key=lambda h: (not h.certain, h.kind, h.component, h.advisory))
    components = len(view.packages) + len(models) + len(datasets) + len(view.files)
    return AuditReport(tuple(unique), len(loaded), components, warnings)


def _match(
    advisory: Advisory,
    affected: Affected,
    view: BomView,
    models: Mapping[str, str],
    datasets: Mapping[str, str],
    hashes: Mapping[str, str],
) -> Iterator[AuditHit]:
    def hit(kind: str, component: str, version: str, reason: str, certain: bool = True) -> AuditHit:
        return AuditHit(
            advisory.id,
            advisory.severity,
            kind,
            component,
            version,
            advisory.summary,
            certain,
            reason,
        )

    for digest in affected.sha256:
        if digest in hashes:
            yield hit("file", hashes[digest], "", f"sha256 {digest[:16]}...")
    ecosystem = _eco(affected.ecosystem)
    name = affected.name
    if ecosystem == "pypi":
        key = normalize_package(name)
        if key not in view.packages:
            return
        version = view.packages[key]
        if not version:
            yield hit("pypi", key, "", "version not pinned in the BOM", certain=False)
            return
        reason = version_affected(version, affected)
        if reason is None and not affected.versions and not affected.ranges:
            reason = "all versions"
        if reason:
            yield hit("pypi", key, version, reason)
    elif ecosystem in ("huggingfacedatasets", "huggingfacedataset") or (
        ecosystem == "huggingface" and name.lower().startswith("datasets/")
    ):
        key = name.lower().removeprefix("datasets/")
        if key in datasets:
            yield hit("dataset", datasets[key], "", "dataset name")
    elif ecosystem == "huggingface" and name.lower() in models:
        yield hit("model", models[name.lower()], "", "model name")
