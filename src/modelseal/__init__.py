"""modelseal: secure the supply chain of machine-learning models.

The public API is importable from here; heavy parts load on first use, so
``import modelseal`` (and ``modelseal --help``) stays fast::

    import modelseal

    report = modelseal.scan(["path/to/model"])
    for result in report.results:
        print(result.path, result.verdict)
"""

from __future__ import annotations

from modelseal._lazy import lazy_exports

__version__ = "0.1.0"

# Public name -> "module:attribute", imported on first access.
_LAZY: dict[str, str] = {
    "scan": "modelseal.scan:scan",
    "ScanOptions": "modelseal.scan:ScanOptions",
    "ScanReport": "modelseal.scan:ScanReport",
    "Severity": "modelseal.scan:Severity",
    "Verdict": "modelseal.scan:Verdict",
    "walk": "modelseal.formats:walk",
    "ModelsealError": "modelseal.errors:ModelsealError",
    "sign": "modelseal.integrity:sign",
    "verify": "modelseal.integrity:verify",
    "generate_keypair": "modelseal.integrity:generate_keypair",
    "attest": "modelseal.integrity:attest",
    "open_verified": "modelseal.integrity:open_verified",
    "load_safetensors": "modelseal.integrity:load_safetensors",
    "torch_load": "modelseal.integrity:torch_load",
    "read_tensor_manifest": "modelseal.integrity:read_tensor_manifest",
    "generate_sbom": "modelseal.sbom:generate_sbom",
    "audit_sbom": "modelseal.sbom:audit_sbom",
    "diff_sbom": "modelseal.sbom:diff_sbom",
    "check": "modelseal.policy:check",
    "watch": "modelseal.monitor:watch",
    "Monitor": "modelseal.monitor:Monitor",
    "Policy": "modelseal.policy:Policy",
}

__all__ = ["__version__", *sorted(_LAZY)]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
