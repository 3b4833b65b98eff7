"""What the web pages show, computed apart from the templates that render it.

Each function turns registry rows (or stored documents) into small frozen view
objects: a version's signature status, its scan findings, an SBOM's components and
the lineage of base models and derived versions. Visibility rules are those of the
API (:func:`modelseal.registry.auth.allowed_actions`): nothing in a namespace the
viewer cannot read is named or linked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelseal.errors import ModelsealError
from modelseal.registry.auth import allowed_actions
from modelseal.registry.db.models import Version as VersionRow
from modelseal.registry.names import parse_ref
from modelseal.registry.services.catalog import (
    derived_versions,
    find_namespace,
    get_model,
    resolve_version,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.db.models import Namespace, TrustedKey, Version
    from modelseal.registry.identity import Principal

__all__ = [
    "MAX_FINDINGS",
    "FileRow",
    "FindingRow",
    "Lineage",
    "LineageNode",
    "SbomComponent",
    "SbomView",
    "ScanView",
    "SignatureStatus",
    "lineage",
    "model_url",
    "namespace_url",
    "sbom_view",
    "scan_view",
    "signature_status",
    "version_url",
]

#: Findings listed on a version page (the rest are counted, and are in the JSON report).
MAX_FINDINGS = 500
#: SBOM components listed on the SBOM page.
MAX_COMPONENTS = 2000
_SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
_MAX_ANCESTORS = 16
_MAX_DERIVED = 100
_MAX_DERIVED_DEPTH = 6


def namespace_url(namespace: str) -> str:
    """The page of a namespace."""
    return f"/n/{quote(namespace, safe='')}"


def model_url(namespace: str, model: str) -> str:
    """The page of a model."""
    return f"{namespace_url(namespace)}/{quote(model, safe='')}"


def version_url(namespace: str, model: str, version: str) -> str:
    """The page of a version."""
    return f"{model_url(namespace, model)}/v/{quote(version, safe='')}"


@dataclass(frozen=True)
class SignatureStatus:
    """How a version's signature stands, in words and as a state name."""

    #: ``verified``, ``failed`` or ``unsigned``.
    state: str
    label: str
    detail: str
    key_name: str | None = None
    fingerprint: str | None = None
    key_revoked_at: dt.datetime | None = None


def signature_status(
    version: Mapping[str, Any],
    keys: Mapping[str, TrustedKey],
    *,
    require_signature: bool,
) -> SignatureStatus:
    """The signature status of a version document (``services.catalog.version_doc``).

    ``keys`` maps fingerprints to the namespace's trusted keys (revoked ones too).
    """
    fingerprint = version.get("signed_by")
    if fingerprint:
        key = keys.get(fingerprint)
        name = key.name if key is not None else None
        revoked = key.revoked_at if key is not None else None
        detail = f"verified at publish time with trusted key {name or fingerprint[:16]}"
        if revoked is not None:
            detail += f"; that key has been revoked since {revoked:%Y-%m-%d %H:%M} UTC"
        return SignatureStatus(
            "verified",
            "Signature verified" if revoked is None else "Signed by a revoked key",
            detail,
            name,
            fingerprint,
            revoked,
        )
    if version.get("signature_digest"):
        return SignatureStatus(
            "failed",
            "Signature not verified",
            "a signature was uploaded but no key this namespace trusts verifies it",
        )
    if require_signature:
        return SignatureStatus("unsigned", "Unsigned", "no signature was uploaded")
    return SignatureStatus(
        "unsigned", "Unsigned", "no signature was uploaded (this namespace does not require one)"
    )


@dataclass(frozen=True)
class FindingRow:
    """One scan finding."""

    path: str
    severity: str
    rule: str
    message: str
    location: str


@dataclass(frozen=True)
class FileRow:
    """The scan verdict of one file."""

    path: str
    format: str
    verdict: str
    findings: int
    error: str | None


@dataclass(frozen=True)
class ScanView:
    """A version's scan report, ready to show."""

    verdict: str
    files: tuple[FileRow, ...]
    findings: tuple[FindingRow, ...]
    total_findings: int
    by_severity: tuple[tuple[str, int], ...]

    @property
    def hidden_findings(self) -> int:
        """Findings not listed (over :data:`MAX_FINDINGS`)."""
        return self.total_findings - len(self.findings)


def _text(value: Any, limit: int = 2000) -> str:
    return str(value if value is not None else "")[:limit]


def scan_view(report: Mapping[str, Any] | None, verdict: str) -> ScanView:
    """Files and findings of a stored scan report (DESIGN.md JSON), worst findings first."""
    files: list[FileRow] = []
    rows: list[FindingRow] = []
    for result in (report or {}).get("results", ()) or ():
        if not isinstance(result, Mapping):
            continue
        findings = [f for f in result.get("findings", ()) or () if isinstance(f, Mapping)]
        path = _text(result.get("path"), 1024)
        error = result.get("error")
        files.append(
            FileRow(
                path,
                _text(result.get("format"), 64),
                _text(result.get("verdict"), 32),
                len(findings),
                _text(error) if error else None,
            )
        )
        for finding in findings:
            rows.append(
                FindingRow(
                    path,
                    _text(finding.get("severity"), 16),
                    _text(finding.get("rule"), 128),
                    _text(finding.get("message")),
                    _text(finding.get("location"), 1024),
                )
            )

    def rank(row: FindingRow) -> int:
        sev = row.severity
        return _SEVERITY_ORDER.index(sev) if sev in _SEVERITY_ORDER else len(_SEVERITY_ORDER)

    rows.sort(key=rank)
    counts = {s: 0 for s in _SEVERITY_ORDER}
    for row in rows:
        if row.severity in counts:
            counts[row.severity] += 1
    return ScanView(
        verdict,
        tuple(sorted(files, key=lambda f: f.path)),
        tuple(rows[:MAX_FINDINGS]),
        len(rows),
        tuple((s, n) for s, n in counts.items() if n),
    )


@dataclass(frozen=True)
class SbomComponent:
    """One component of an SBOM."""

    name: str
    type: str
    version: str
    purl: str
    sha256: str
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SbomView:
    """The parts of a CycloneDX SBOM worth reading in a browser."""

    spec: str
    serial: str
    timestamp: str
    subject: str
    subject_properties: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]
    components: tuple[SbomComponent, ...]
    total_components: int
    error: str | None = None


def _properties(item: Mapping[str, Any], drop: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    skip = set(drop)
    pairs = []
    for prop in item.get("properties", ()) or ():
        if isinstance(prop, Mapping) and prop.get("name") not in skip:
            name = _text(prop.get("name"), 200).removeprefix("modelseal:")
            pairs.append((name, _text(prop.get("value"), 500)))
    return tuple(pairs)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def sbom_view(data: bytes) -> SbomView:
    """Summarise a stored SBOM; a document that is not CycloneDX JSON gives ``error``."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, Mapping) or doc.get("bomFormat") != "CycloneDX":
        return SbomView("", "", "", "", (), (), (), 0, error="not a CycloneDX JSON document")
    metadata = _mapping(doc.get("metadata"))
    subject = _mapping(metadata.get("component"))
    warnings = tuple(
        value for name, value in _properties(metadata) if name in ("warning", "modelseal:warning")
    )
    components: list[SbomComponent] = []
    raw = [c for c in doc.get("components", ()) or () if isinstance(c, Mapping)]
    for item in raw[:MAX_COMPONENTS]:
        sha256 = next(
            (
                _text(h.get("content"), 128)
                for h in item.get("hashes", ()) or ()
                if isinstance(h, Mapping) and h.get("alg") == "SHA-256"
            ),
            "",
        )
        components.append(
            SbomComponent(
                _text(item.get("name"), 500),
                _text(item.get("type"), 64),
                _text(item.get("version"), 128),
                _text(item.get("purl"), 500),
                sha256,
                _properties(item),
            )
        )
    return SbomView(
        f"CycloneDX {_text(doc.get('specVersion'), 16)}",
        _text(doc.get("serialNumber"), 200),
        _text(metadata.get("timestamp"), 64),
        _text(subject.get("name"), 500),
        _properties(subject),
        warnings,
        tuple(components),
        len(raw),
    )


@dataclass(frozen=True)
class LineageNode:
    """A version in a lineage: linked when the viewer may read it."""

    label: str
    url: str | None
    state: str | None
    note: str = ""
    children: tuple[LineageNode, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Lineage:
    """Base models (oldest first, ending with the version's direct parent) and derived versions."""

    ancestors: tuple[LineageNode, ...]
    derived: tuple[LineageNode, ...]
    truncated: bool = False


class _Visibility:
    """Caches whether the viewer may read each namespace."""

    def __init__(self, session: Session, principal: Principal | None) -> None:
        self.session = session
        self.principal = principal
        self._cache: dict[int, bool] = {}

    def readable(self, namespace: Namespace) -> bool:
        if namespace.id not in self._cache:
            self._cache[namespace.id] = "read" in allowed_actions(
                self.session, self.principal, namespace
            )
        return self._cache[namespace.id]


def _node(version: Version, note: str = "", children: Sequence[LineageNode] = ()) -> LineageNode:
    model = version.model
    label = f"{model.namespace.name}/{model.name}:{version.name}"
    url = version_url(model.namespace.name, model.name, version.name)
    return LineageNode(label, url, version.state, note, tuple(children))


def _resolve_parent(session: Session, reference: str, seen: _Visibility) -> Version | None:
    """The version a parent reference names, if it exists here and the viewer may read it."""
    try:
        ref = parse_ref(reference)
    except ModelsealError:
        return None
    namespace = find_namespace(session, ref.namespace)
    if namespace is None or not seen.readable(namespace):
        return None
    target = f"sha256:{ref.digest}" if ref.digest else ref.reference
    if target is None:
        return None
    try:
        model = get_model(session, namespace, ref.model)
        found, _ = resolve_version(session, model.id, target)
    except ModelsealError:
        return None
    return found


def _references(version: Version) -> list[str]:
    """The parent strings a derived version may use to name ``version``."""
    model = version.model
    base = f"{model.namespace.name}/{model.name}"
    return [f"{base}:{version.name}", f"{base}@sha256:{version.digest}"]


def lineage(session: Session, principal: Principal | None, version: Version) -> Lineage:
    """The declared base models of ``version`` and the versions derived from it.

    Parents are followed up to 16 levels; derived versions (whose declared parent
    names this version by version name or digest) down to 6 levels and 100 nodes.
    Versions in namespaces the viewer cannot read are left out; a parent that cannot
    be shown keeps its declared text, unlinked.
    """

    seen = _Visibility(session, principal)
    ancestors: list[LineageNode] = []
    visited = {version.id}
    current = version
    for _ in range(_MAX_ANCESTORS):
        if not current.parent:
            break
        found = _resolve_parent(session, current.parent, seen)
        if found is None:
            ancestors.append(
                LineageNode(
                    current.parent,
                    None,
                    None,
                    "not in this registry, or not visible to you",
                )
            )
            break
        if found.id in visited:
            ancestors.append(_node(found, "cycle in declared parents"))
            break
        visited.add(found.id)
        ancestors.append(_node(found))
        current = found
    ancestors.reverse()

    derived, truncated = _derived(session, version, seen, visited)
    return Lineage(tuple(ancestors), derived, truncated)


def _derived(
    session: Session, version: Version, seen: _Visibility, visited: set[int]
) -> tuple[tuple[LineageNode, ...], bool]:
    """Versions whose declared parent names ``version``, level by level (one query each)."""
    kids: dict[int, list[VersionRow]] = {}
    level = [version]
    truncated = False
    count = 0
    for _ in range(_MAX_DERIVED_DEPTH):
        by_reference = {ref: row.id for row in level for ref in _references(row)}
        rows = derived_versions(session, list(by_reference), _MAX_DERIVED + 1)
        level = []
        for row in rows:
            if row.id in visited or not seen.readable(row.model.namespace):
                continue
            if count >= _MAX_DERIVED:
                truncated = True
                break
            count += 1
            visited.add(row.id)
            kids.setdefault(by_reference[row.parent or ""], []).append(row)
            level.append(row)
        if not level or truncated:
            break
    else:
        truncated = bool(level)

    def build(of: int) -> tuple[LineageNode, ...]:
        return tuple(_node(row, children=build(row.id)) for row in kids.get(of, ()))

    return build(version.id), truncated
