"""Model SBOMs: CycloneDX 1.6/1.7 ML-BOM and SPDX 3.0.1 AI/Dataset documents.

>>> from modelseal.sbom import generate_sbom
>>> bom = generate_sbom("path/to/model", format="cyclonedx")   # doctest: +SKIP
>>> bom["metadata"]["component"]["type"]                         # doctest: +SKIP
'machine-learning-model'

Everything is collected offline from the model's own files (see
:mod:`modelseal.sbom.collect`); :func:`audit_sbom` matches a BOM against an
offline OSV advisory set and :func:`diff_sbom` compares two BOMs.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.errors import SbomError
from modelseal.sbom.audit import Advisory, AuditHit, AuditReport, audit_sbom, load_advisories
from modelseal.sbom.collect import ModelFacts, collect
from modelseal.sbom.diff import SbomDiff, diff_sbom
from modelseal.sbom.interface import EmitContext, SbomEmitter, SignatureStatus
from modelseal.sbom.view import BomView, load_bom, read_bom

__all__ = [
    "FORMATS",
    "Advisory",
    "AuditHit",
    "AuditReport",
    "BomView",
    "EmitContext",
    "ModelFacts",
    "SbomDiff",
    "SbomEmitter",
    "SbomResult",
    "SignatureStatus",
    "audit_sbom",
    "build_sbom",
    "collect",
    "diff_sbom",
    "emitter_for",
    "generate_sbom",
    "load_advisories",
    "load_bom",
    "read_bom",
]

#: ``--format`` name -> "module:class" of its emitter.
FORMATS: dict[str, str] = {
    "cyclonedx": "modelseal.sbom.cyclonedx:CycloneDxEmitter",
    "spdx3": "modelseal.sbom.spdx3:Spdx3Emitter",
}


@dataclass(frozen=True)
class SbomResult:
    """A generated document and what was learned on the way."""

    document: dict[str, Any]
    facts: ModelFacts
    #: Things that could not be read or mapped (also recorded in the document).
    warnings: tuple[str, ...]


def emitter_for(name: str) -> SbomEmitter:
    """The emitter for a ``--format`` name; :class:`SbomError` if there is none."""
    import importlib

    target = FORMATS.get(name)
    if target is None:
        raise SbomError(
            f"unknown SBOM format {name!r}", advice=f"use one of: {', '.join(sorted(FORMATS))}"
        )
    module, _, attribute = target.partition(":")
    emitter: SbomEmitter = getattr(importlib.import_module(module), attribute)()
    return emitter


def build_sbom(
    path: str | os.PathLike[str],
    *,
    format: str = "cyclonedx",
    spec_version: str | None = None,
    sha512: bool = False,
    signature: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    scan: bool = True,
    repo_id: str | None = None,
    created: _dt.datetime | None = None,
    known_sha256: Mapping[str, str] | None = None,
) -> SbomResult:
    """Collect the model at ``path`` and write it as a ``format`` document.

    ``scan`` runs the static scanner and records its findings; ``signature`` and
    ``key`` check the model's signature and record the outcome. ``created`` fixes
    the timestamp; the document id is derived from the file hashes and that time,
    so a fixed ``created`` gives an identical document. ``known_sha256`` (relative
    path -> verified digest) spares hashing files again.
    """
    emitter = emitter_for(format)
    version = spec_version or emitter.spec_versions[0]
    if version not in emitter.spec_versions:
        raise SbomError(
            f"{format} spec version {version!r} is not supported",
            advice=f"use one of: {', '.join(emitter.spec_versions)}",
        )
    facts = collect(path, sha512=sha512, repo_id=repo_id, known_sha256=known_sha256)
    warnings = list(facts.warnings)
    report = None
    if scan:
        from modelseal.scan import scan as run_scan

        report = run_scan([path])
    status = None
    if signature is not None:
        status = _signature_status(path, signature, key)
        if status.status != "verified":
            warnings.append(f"signature {status.status}: {status.detail}")
    facts = _with_warnings(facts, tuple(warnings))
    from modelseal import __version__

    when = (created or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    stamp = when.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    context = EmitContext(
        spec_version=version,
        created=stamp,
        document_id=_document_id(facts, stamp),
        tool_version=__version__,
        scan=report,
        signature=status,
    )
    return SbomResult(emitter.emit(facts, context), facts, facts.warnings)


def generate_sbom(
    path: str | os.PathLike[str],
    *,
    format: str = "cyclonedx",
    spec_version: str | None = "1.6",
    sha512: bool = False,
    signature: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    scan: bool = True,
) -> dict[str, Any]:
    """The SBOM document of the model at ``path`` as a JSON-ready dict.

    ``spec_version`` applies to CycloneDX (``1.6`` or ``1.7``); SPDX is always
    3.0.1. Warnings are recorded in the document; use :func:`build_sbom` to get
    them as data.
    """
    if format != "cyclonedx":
        spec_version = None
    return build_sbom(
        path,
        format=format,
        spec_version=spec_version,
        sha512=sha512,
        signature=signature,
        key=key,
        scan=scan,
    ).document


def _with_warnings(facts: ModelFacts, warnings: tuple[str, ...]) -> ModelFacts:
    import dataclasses

    return dataclasses.replace(facts, warnings=warnings)


def _document_id(facts: ModelFacts, stamp: str) -> str:
    """A UUID derived from the content and the creation time: each generation gets its
    own serial number, and a fixed ``created`` reproduces the same document."""
    digest = hashlib.sha256(f"{stamp}\0{facts.name}".encode())
    for file in facts.files:
        digest.update(f"\0{file.path}\0{file.sha256}".encode())
    return str(uuid.UUID(bytes=digest.digest()[:16], version=5))


def _signature_status(
    path: str | os.PathLike[str],
    signature: str | os.PathLike[str],
    key: str | os.PathLike[str] | None,
) -> SignatureStatus:
    """Verify the signature if the integrity package is installed."""
    try:
        from modelseal.integrity import verify
    except ImportError:
        return SignatureStatus(
            "not-checked", str(signature), "modelseal.integrity is not available"
        )
    if not Path(signature).exists():
        raise SbomError(f"{signature}: no such signature bundle")
    kwargs: dict[str, Any] = {"signature": signature}
    if key is not None:
        kwargs["key"] = key
    result = verify(path, **kwargs)
    if getattr(result, "ok", False):
        signer = getattr(result, "signer", None)
        return SignatureStatus("verified", str(signature), f"signer {signer}" if signer else "")
    reasons = getattr(result, "reasons", None) or getattr(result, "errors", None) or ()
    detail = "; ".join(str(r) for r in reasons) if reasons else "verification failed"
    return SignatureStatus("failed", str(signature), detail)
