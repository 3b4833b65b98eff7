"""The publish gate: decide whether a committed upload is published or quarantined.

A version is published only when

1. its signature bundle verifies (``modelseal.integrity.verify``) with a key trusted
   for the namespace (unless the namespace's admin switched signatures off),
2. the server's own scan (``modelseal.scan.scan``) finds nothing above the
   namespace's threshold and every file could be analysed, and
3. an SBOM was generated (``modelseal.sbom.generate_sbom``) and is stored with it.

Otherwise it is quarantined, and every reason is kept for its publisher. The gate is
pure computation over a directory on disk; the uploads router materialises the
version's blobs there and stores the result.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from modelseal.errors import ModelsealError
from modelseal.registry.manifest import FileEntry
from modelseal.registry.signatures import check_signature_digests, unsigned_files

__all__ = ["GateResult", "TrustedKeyInfo", "run_gate", "scan_plan"]

_SEVERITIES = ("info", "low", "medium", "high", "critical")
_MAX_REASONS = 20


@dataclass(frozen=True)
class TrustedKeyInfo:
    """A key the namespace trusts (kind ``key``: a PEM public key)."""

    fingerprint: str
    kind: str
    public_key_pem: str | None = None
    identity: str | None = None
    issuer: str | None = None


@dataclass(frozen=True)
class GateResult:
    """The gate's decision and what it produced."""

    published: bool
    reasons: tuple[str, ...]
    #: The scan report (DESIGN.md JSON shape, paths relative to the model).
    scan_report: dict[str, Any] = field(default_factory=dict)
    #: The worst verdict of the scan ("clean" .. "malicious").
    scan_verdict: str = "error"
    #: Fingerprint of the trusted key that verified the signature.
    signed_by: str | None = None
    #: The SBOM document bytes (CycloneDX JSON), when generated.
    sbom: bytes | None = None
    #: Files the verified signature deliberately leaves out (``signatures.UNSIGNED_ALLOWED``).
    unsigned: tuple[str, ...] = ()


def run_gate(
    model_dir: Path,
    *,
    files: Sequence[FileEntry],
    signature: bytes | None,
    trusted_keys: Sequence[TrustedKeyInfo],
    scan_threshold: str = "low",
    require_signature: bool = True,
    require_sbom: bool = True,
    scan_dir: Path | None = None,
    duplicates: Mapping[str, str] | None = None,
    extra_reasons: Sequence[str] = (),
) -> GateResult:
    """Check the model at ``model_dir`` (whose verified file list is ``files``) against the
    three publish conditions.

    ``scan_dir`` holds one copy of each distinct file (see :func:`scan_plan`) and
    ``duplicates`` maps every other path to the path whose bytes it shares: the scan
    runs once per distinct file and its results are reported under every path.
    ``extra_reasons`` (found before the gate, e.g. a quarantined parent) quarantine too.
    """
    from concurrent.futures import ThreadPoolExecutor

    # Import what the workers use before they start: three threads importing the same
    # modules at once can see a partially initialised module.
    importlib.import_module("modelseal.integrity.operations")
    importlib.import_module("modelseal.scan.engine")
    importlib.import_module("modelseal.sbom")

    # The three checks read the same files; hashing releases the GIL, so they overlap.
    with ThreadPoolExecutor(max_workers=3) as pool:
        signature_job = pool.submit(_check_signature, model_dir, files, signature, trusted_keys)
        scan_job = pool.submit(
            _check_scan, scan_dir or model_dir, scan_threshold, dict(duplicates or {})
        )
        sbom_job = pool.submit(_make_sbom, model_dir, files)
        signed_by, signature_reasons = signature_job.result()
        report, verdict, scan_reasons = scan_job.result()
        sbom, sbom_reasons = sbom_job.result()
    reasons: list[str] = list(extra_reasons)
    if require_signature:
        reasons.extend(signature_reasons)
    reasons.extend(scan_reasons)
    if require_sbom:
        reasons.extend(sbom_reasons)
    return GateResult(
        published=not reasons,
        reasons=tuple(reasons[:_MAX_REASONS]),
        scan_report=report,
        scan_verdict=verdict,
        signed_by=signed_by,
        sbom=sbom,
        unsigned=tuple(unsigned_files(signature, files)) if signature and signed_by else (),
    )


def _integrity() -> Any:
    try:
        module = importlib.import_module("modelseal.integrity")
    except ImportError:
        return None
    return module if hasattr(module, "verify") else None


def _check_signature(
    model_dir: Path,
    files: Sequence[FileEntry],
    signature: bytes | None,
    trusted_keys: Sequence[TrustedKeyInfo],
) -> tuple[str | None, list[str]]:
    """The fingerprint of the trusted key that verifies, or the reasons none does."""
    if not signature:
        return None, ["unsigned: no signature bundle was uploaded with the version"]
    keys = [k for k in trusted_keys if k.kind == "key" and k.public_key_pem]
    if not keys:
        return None, [
            "no signing key is trusted for this namespace "
            "(an admin adds one with `modelseal admin trust-key`)"
        ]
    integrity = _integrity()
    if integrity is None:
        return None, ["signature verification is not available on this server"]
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="modelseal-gate-") as tmp:
        sig_path = Path(tmp) / "model.sig"
        sig_path.write_bytes(signature)
        for key in keys:
            quick = check_signature_digests(signature, key.public_key_pem or "", files)
            if quick is not None:
                if not quick:
                    return key.fingerprint, []
                failures.extend(quick[:5])
                continue
            pem_path = Path(tmp) / f"{key.fingerprint}.pem"
            pem_path.write_text(key.public_key_pem or "", encoding="utf-8")
            try:
                result = integrity.verify(model_dir, key=pem_path, signature=sig_path)
            except ModelsealError as exc:
                failures.append(exc.message)
                continue
            if getattr(result, "ok", False):
                return key.fingerprint, []
            failures.extend(_result_reasons(result))
    detail = "; ".join(dict.fromkeys(failures))[:500]
    return None, [
        "signature does not verify with any key trusted for this namespace"
        + (f" ({detail})" if detail else "")
    ]


def _result_reasons(result: Any) -> list[str]:
    reasons = [str(r) for r in (getattr(result, "reasons", None) or ())]
    for attribute in ("changed", "added", "removed"):
        names = getattr(result, attribute, None) or ()
        if names:
            reasons.append(f"{attribute}: {', '.join(map(str, list(names)[:5]))}")
    return reasons


def scan_plan(files: Sequence[FileEntry]) -> tuple[list[FileEntry], dict[str, str]]:
    """The files to scan (one per distinct digest and file suffix) and, for every other
    path, the scanned path whose result it takes.

    The suffix is part of the key because readers pick a format partly by name: the same
    bytes under ``a.bin`` and ``a.pkl`` are scanned twice, the same bytes under a
    thousand ``.pkl`` names once.
    """
    chosen: dict[tuple[str, str], str] = {}
    scanned: list[FileEntry] = []
    duplicates: dict[str, str] = {}
    for entry in sorted(files, key=lambda f: f.path):
        key = (entry.digest, PurePosixPath(entry.path).suffix.lower())
        if key in chosen:
            duplicates[entry.path] = chosen[key]
        else:
            chosen[key] = entry.path
            scanned.append(entry)
    return scanned, duplicates


def _expand(report: Any, root: Path, duplicates: dict[str, str]) -> Any:
    """``report`` with the results of each scanned file repeated for the paths sharing it."""
    from dataclasses import replace

    from modelseal.scan.model import ScanReport

    if not duplicates:
        return report
    prefix = str(root).rstrip("/") + "/"
    by_source: dict[str, list[str]] = {}
    for path, source in duplicates.items():
        by_source.setdefault(source, []).append(path)
    results = list(report.results)
    for result in report.results:
        relative = result.path.removeprefix(prefix)
        head, bang, member = relative.partition("!")
        for copy in by_source.get(head, ()):
            results.append(replace(result, path=f"{prefix}{copy}{bang}{member}"))
    results.sort(key=lambda r: r.path)
    return ScanReport(tuple(results), report.rules)


def _check_scan(
    model_dir: Path, threshold: str, duplicates: dict[str, str] | None = None
) -> tuple[dict[str, Any], str, list[str]]:
    """Scan the model; reasons for every finding above ``threshold`` and every error."""
    from modelseal.scan import scan

    limit = _SEVERITIES.index(threshold) if threshold in _SEVERITIES else 1
    try:
        report = _expand(scan([model_dir]), model_dir, duplicates or {})
    except ModelsealError as exc:
        return {}, "error", [f"scan failed: {exc.message}"]
    document = report.to_dict()
    prefix = str(model_dir).rstrip("/") + "/"
    for result in document["results"]:
        result["path"] = result["path"].removeprefix(prefix)
        for finding in result["findings"]:
            finding["location"] = str(finding.get("location", "")).removeprefix(prefix)
    reasons: list[str] = []
    worst = "clean"
    order = ("clean", "suspicious", "error", "malicious")
    for result in document["results"]:
        if order.index(result["verdict"]) > order.index(worst):
            worst = result["verdict"]
        if "error" in result:
            reasons.append(f"scan: {result['path']} could not be fully analysed: {result['error']}")
        for finding in result["findings"]:
            if _SEVERITIES.index(finding["severity"]) > limit:
                reasons.append(
                    f"scan: {result['path']}: {finding['severity']} {finding['rule']}: "
                    f"{finding['message']}"
                )
    return document, worst, reasons


def _make_sbom(model_dir: Path, files: Sequence[FileEntry]) -> tuple[bytes | None, list[str]]:
    """The SBOM bytes, or why there are none."""
    try:
        module = importlib.import_module("modelseal.sbom")
        build = module.build_sbom
    except (ImportError, AttributeError):
        return None, ["no SBOM: the SBOM generator is not available on this server"]
    try:
        # The gate scans on its own, and every file's SHA-256 is already verified:
        # the SBOM needs neither a second scan nor a second hash pass.
        document = build(
            model_dir,
            format="cyclonedx",
            scan=False,
            known_sha256={f.path: f.digest for f in files},
        ).document
    except ModelsealError as exc:
        return None, [f"no SBOM: {exc.message}"]
    return _sbom_bytes(document), []


def _sbom_bytes(document: Any) -> bytes:
    if isinstance(document, bytes):
        return document
    if isinstance(document, str):
        return document.encode("utf-8")
    for method in ("to_json", "to_dict"):
        if hasattr(document, method):
            value = getattr(document, method)()
            return _sbom_bytes(value)
    return json.dumps(document, sort_keys=True, indent=1).encode("utf-8")
