"""Weight integrity: sign and verify models in the OpenSSF model-signing v1 format.

>>> from modelseal.integrity import generate_keypair, sign, verify     # doctest: +SKIP
>>> keys = generate_keypair("release")                                  # doctest: +SKIP
>>> sign("model_dir", key=keys.private_key)                             # doctest: +SKIP
>>> verify("model_dir", key=keys.public_key).ok                         # doctest: +SKIP
True

Layout (mirroring model_signing): ``hashing/`` (one engine per algorithm),
``serialization`` (files and shards), ``manifest`` (self-describing manifest),
``signing/`` (one backend per key type, certificate mode), ``bundle`` (wire
types), ``tensors`` (per-tensor Merkle manifests), ``provenance`` (SLSA v1),
``loading`` (verified loading). Public names load lazily: importing this
package does not import ``cryptography``.
"""

from __future__ import annotations

from modelseal._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "sign": "modelseal.integrity.operations:sign",
    "verify": "modelseal.integrity.operations:verify",
    "default_signature_path": "modelseal.integrity.operations:default_signature_path",
    "generate_keypair": "modelseal.integrity.signing.keys:generate_keypair",
    "KeyPair": "modelseal.integrity.signing.keys:KeyPair",
    "attest": "modelseal.integrity.provenance:attest",
    "AttestResult": "modelseal.integrity.provenance:AttestResult",
    "Provenance": "modelseal.integrity.provenance:Provenance",
    "open_verified": "modelseal.integrity.loading:open_verified",
    "load_safetensors": "modelseal.integrity.loading:load_safetensors",
    "torch_load": "modelseal.integrity.loading:torch_load",
    "read_tensor_manifest": "modelseal.integrity.loading:read_tensor_manifest",
    "TensorVerificationError": "modelseal.integrity.loading:TensorVerificationError",
    "SignResult": "modelseal.integrity.results:SignResult",
    "VerifyResult": "modelseal.integrity.results:VerifyResult",
    "FileChange": "modelseal.integrity.results:FileChange",
    "UnsignedFile": "modelseal.integrity.results:UnsignedFile",
    "ProvenanceCheck": "modelseal.integrity.results:ProvenanceCheck",
    "Manifest": "modelseal.integrity.manifest:Manifest",
    "Bundle": "modelseal.integrity.bundle:Bundle",
    "TensorFileManifest": "modelseal.integrity.tensors:TensorFileManifest",
    "tensor_data_digest": "modelseal.integrity.tensors:tensor_data_digest",
    "tensor_leaf": "modelseal.integrity.tensors:tensor_leaf",
    "FileChangedError": "modelseal.integrity.serialization:FileChangedError",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
