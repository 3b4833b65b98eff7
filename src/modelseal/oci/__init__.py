"""Models in OCI registries: CNCF ModelPack artifacts with the model-signing bundle,
the CycloneDX SBOM and the training provenance attached as OCI 1.1 referrers.

``push_oci`` writes one ``.raw`` layer per signed file; ``pull_oci`` verifies every
layer digest while streaming, the signature with the caller's key and the scan, then
renames the staged directory into place; ``verify_oci`` does the same checks and
keeps nothing. See docs/oci.md. httpx is imported only when a registry is contacted.
"""

from modelseal._lazy import lazy_exports

_LAZY = {
    "OciReference": "modelseal.oci.reference:OciReference",
    "parse_oci_reference": "modelseal.oci.reference:parse_oci_reference",
    "is_oci_reference": "modelseal.oci.reference:is_oci_reference",
    "OciError": "modelseal.oci.distribution:OciError",
    "OciPullResult": "modelseal.oci.operations:OciPullResult",
    "OciPushResult": "modelseal.oci.operations:OciPushResult",
    "fetch_oci": "modelseal.oci.operations:fetch_oci",
    "pull_oci": "modelseal.oci.operations:pull_oci",
    "push_oci": "modelseal.oci.operations:push_oci",
    "verify_oci": "modelseal.oci.operations:verify_oci",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
