"""Read a CycloneDX or SPDX 3 model SBOM back into one neutral view.

Audit and diff work on :class:`BomView`, so they treat both formats (and BOMs
written by other tools, as far as they follow the same conventions) alike.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelseal.errors import SbomError

__all__ = ["BomFinding", "BomView", "load_bom", "normalize_package", "read_bom"]

#: BOM files larger than this are refused.
MAX_BOM_BYTES = 256 * 1024**2


def normalize_package(name: str) -> str:
    """PEP 503 normalized package name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class BomFinding:
    """A scan finding the BOM records (CycloneDX ``vulnerabilities``, SPDX annotations)."""

    file: str
    rule: str
    severity: str
    #: Where in the file: ``at PATH [LOCATION]`` as the scanner named it.
    where: str
    message: str


#: The statement of an SPDX annotation written for a finding by ``spdx3.py``.
_SPDX_FINDING = re.compile(
    r"modelseal scan (?P<rule>\S+) \((?P<severity>\w+), verdict \w+\) "
    r"(?P<where>at .*?) ?: (?P<message>.*)",
    re.DOTALL,
)


@dataclass(frozen=True)
class BomView:
    """What a model SBOM says, independent of its format."""

    #: ``cyclonedx`` or ``spdx3``.
    format: str
    model: str
    model_purl: str | None = None
    #: File path -> {"sha256": hex, "sha512": hex} (algorithms present only).
    files: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    base_models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    #: Normalized PyPI package name -> version ("" when not pinned).
    packages: Mapping[str, str] = field(default_factory=dict)
    findings: tuple[BomFinding, ...] = ()


def load_bom(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a BOM JSON file; :class:`SbomError` if it is missing or not JSON."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_BOM_BYTES:
            raise SbomError(f"{file}: larger than {MAX_BOM_BYTES:,} bytes")
        document = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SbomError(f"{file}: no such file") from exc
    except OSError as exc:
        raise SbomError(f"{file}: cannot read ({exc.strerror})") from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SbomError(
            f"{file}: not a JSON document ({exc.__class__.__name__})",
            advice="pass a CycloneDX JSON or SPDX 3 JSON-LD file written by `modelseal sbom`",
        ) from exc
    if not isinstance(document, dict):
        raise SbomError(f"{file}: not a BOM (the top level is not a JSON object)")
    return document


def read_bom(document: Mapping[str, Any]) -> BomView:
    """The neutral view of a CycloneDX or SPDX 3 document."""
    if document.get("bomFormat") == "CycloneDX":
        return _cyclonedx(document)
    if "@graph" in document:
        return _spdx3(document)
    raise SbomError(
        "not a CycloneDX or SPDX 3 JSON document",
        advice="expected `bomFormat: CycloneDX` or a JSON-LD `@graph`",
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _cdx_license(choice: Mapping[str, Any]) -> str | None:
    if isinstance(choice.get("expression"), str):
        return str(choice["expression"])
    body = _dict(choice.get("license"))
    value = body.get("id") or body.get("name")
    return str(value) if value else None


def _purl_pypi(purl: str) -> tuple[str, str] | None:
    match = re.match(r"^pkg:pypi/([^@?#]+)(?:@([^?#]+))?", purl)
    if not match:
        return None
    return normalize_package(match.group(1)), match.group(2) or ""


def _cyclonedx(bom: Mapping[str, Any]) -> BomView:
    model = _dict(_dict(bom.get("metadata")).get("component"))
    files: dict[str, dict[str, str]] = {}
    datasets: list[str] = []
    packages: dict[str, str] = {}
    names: dict[str, str] = {}
    for component in _list(bom.get("components")):
        component = _dict(component)
        kind, name = component.get("type"), str(component.get("name", ""))
        names[str(component.get("bom-ref", ""))] = name
        if kind == "file":
            files[name] = {
                str(h.get("alg", "")).lower().replace("-", ""): str(h.get("content", ""))
                for h in map(_dict, _list(component.get("hashes")))
            }
        elif kind == "data":
            datasets.append(name)
        elif isinstance(component.get("purl"), str):
            parsed = _purl_pypi(component["purl"])
            if parsed:
                packages[parsed[0]] = parsed[1] or str(component.get("version", ""))
    ancestors = _list(_dict(model.get("pedigree")).get("ancestors"))
    licenses = [_cdx_license(_dict(c)) for c in _list(model.get("licenses"))]
    findings = []
    for vulnerability in map(_dict, _list(bom.get("vulnerabilities"))):
        ratings = [_dict(r).get("severity") for r in _list(vulnerability.get("ratings"))]
        for affects in map(_dict, _list(vulnerability.get("affects"))):
            findings.append(
                BomFinding(
                    file=names.get(str(affects.get("ref")), str(affects.get("ref", ""))),
                    rule=str(vulnerability.get("id", "")),
                    severity=str(ratings[0] if ratings else "unknown"),
                    where=str(vulnerability.get("detail", "")),
                    message=str(vulnerability.get("description", "")),
                )
            )
    return BomView(
        format="cyclonedx",
        model=str(model.get("name", "")),
        model_purl=model.get("purl") if isinstance(model.get("purl"), str) else None,
        files=files,
        base_models=tuple(str(_dict(a).get("name", "")) for a in ancestors),
        datasets=tuple(datasets),
        licenses=tuple(x for x in licenses if x),
        packages=packages,
        findings=tuple(findings),
    )


def _spdx3(document: Mapping[str, Any]) -> BomView:
    nodes = [_dict(n) for n in _list(document.get("@graph"))]
    by_id = {n.get("spdxId"): n for n in nodes if n.get("spdxId")}
    spdx_doc = next((n for n in nodes if n.get("type") == "SpdxDocument"), {})
    roots = _list(spdx_doc.get("rootElement"))
    model = _dict(by_id.get(roots[0])) if roots else {}
    model_id = model.get("spdxId")
    relations: dict[str, list[tuple[str, list[str]]]] = {}
    for node in nodes:
        if node.get("type") == "Relationship":
            relations.setdefault(str(node.get("relationshipType")), []).append(
                (str(node.get("from")), [str(t) for t in _list(node.get("to"))])
            )
    files: dict[str, dict[str, str]] = {}
    datasets: list[str] = []
    packages: dict[str, str] = {}
    for node in nodes:
        kind, name = node.get("type"), str(node.get("name", ""))
        if kind == "software_File":
            files[name] = {
                str(h.get("algorithm", "")).lower(): str(h.get("hashValue", ""))
                for h in map(_dict, _list(node.get("verifiedUsing")))
            }
        elif kind == "dataset_DatasetPackage":
            datasets.append(name)
        elif kind == "software_Package":
            purl = node.get("software_packageUrl")
            parsed = _purl_pypi(purl) if isinstance(purl, str) else None
            if parsed:
                packages[parsed[0]] = parsed[1] or str(node.get("software_packageVersion", ""))
    base_models = [
        str(_dict(by_id.get(source)).get("name", source))
        for source, targets in relations.get("ancestorOf", [])
        if model_id in targets
    ]
    licenses = [
        str(_dict(by_id.get(t)).get("simplelicensing_licenseExpression", t))
        for source, targets in relations.get("hasDeclaredLicense", [])
        if source == model_id
        for t in targets
    ]
    findings = [
        BomFinding(
            file=str(_dict(by_id.get(node.get("subject"))).get("name", node.get("subject"))),
            rule=found["rule"],
            severity=found["severity"],
            where=found["where"],
            message=found["message"],
        )
        for node in nodes
        if node.get("type") == "Annotation"
        and (found := _SPDX_FINDING.fullmatch(str(node.get("statement", ""))))
    ]
    return BomView(
        format="spdx3",
        model=str(model.get("name", "")),
        model_purl=model.get("software_packageUrl"),
        files=files,
        base_models=tuple(base_models),
        datasets=tuple(datasets),
        licenses=tuple(licenses),
        packages=packages,
        findings=tuple(findings),
    )
