"""Verified loading: read weights only after checking them against a signature.

- :func:`open_verified` returns a lazy reader of a signed safetensors/GGUF file;
  each tensor is checked against the signed per-tensor manifest when it is read,
  at a cost proportional to that tensor (only its bytes are read).
- :func:`load_safetensors` loads every tensor that way.
- :func:`torch_load` reads the whole file once into memory, checks its signed
  digest, scans it statically, and only then calls ``torch.load(weights_only=True)``
  on those same bytes (no window to swap the file in between).

Failures raise :class:`TensorVerificationError` naming the file and tensor.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal.errors import IntegrityError, VerificationError
from modelseal.integrity.manifest import Manifest
from modelseal.integrity.tensors import TensorFileManifest, TensorRecord

if TYPE_CHECKING:
    import numpy as np

    from modelseal.formats.tensors import TensorInfo

__all__ = [
    "TensorVerificationError",
    "VerifiedTensorFile",
    "load_safetensors",
    "open_verified",
    "read_tensor_manifest",
    "torch_load",
]


class TensorVerificationError(VerificationError):
    """A file or tensor does not match its signature."""


def _signed_manifest(
    signature: str | os.PathLike[str], key: Any, trust_roots: Sequence[Any]
) -> Manifest:
    from modelseal.integrity.operations import make_verifier, read_bundle, read_signed_manifest

    return read_signed_manifest(read_bundle(signature), make_verifier(key, trust_roots=trust_roots))


def read_tensor_manifest(
    signature_path: str | os.PathLike[str],
    *,
    key: Any = None,
    trust_roots: Sequence[str | os.PathLike[str]] = (),
) -> Mapping[str, TensorFileManifest]:
    """The signed per-tensor manifests, by file name (relative to the model root).

    Each :class:`~modelseal.integrity.tensors.TensorFileManifest` lists every
    tensor's name, dtype, shape and data digest, and its Merkle root. The bundle
    is authenticated first (raises :class:`VerificationError` if it is not valid).
    """
    return dict(_signed_manifest(signature_path, key, trust_roots).extension.tensors)


def _resource_name(path: Path, root: str | os.PathLike[str] | None) -> str:
    base = Path(root) if root is not None else path.parent
    try:
        return path.resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError as exc:
        raise IntegrityError(f"{path} is not inside the model root {base}") from exc


def _name_in(manifest: Manifest, file: Path, root: str | os.PathLike[str] | None) -> str:
    """The resource name of ``file``: relative to ``root``, or "." for a single-file signature."""
    if root is None and manifest.model_name == file.name and "." in manifest.file_digests():
        return "."
    return _resource_name(file, root)


class VerifiedTensorFile(Mapping[str, "np.ndarray"]):
    """A lazy mapping name -> tensor; each tensor is verified when read."""

    def __init__(self, path: Path, name: str, signed: TensorFileManifest) -> None:
        from modelseal.formats.inventory import walk_files
        from modelseal.formats.tensors import describe_tensors

        self.path, self.name, self.signed = path, name, signed
        entry = next(iter(walk_files(path)))
        self._infos: dict[str, TensorInfo] = {i.name: i for i in describe_tensors(entry)}
        self._records = signed.by_name()
        extra = sorted(set(self._infos) - set(self._records))
        missing = sorted(set(self._records) - set(self._infos))
        if extra or missing:
            raise TensorVerificationError(
                f"{name}: tensors differ from the signature "
                f"(added: {', '.join(extra[:5]) or '-'}; removed: {', '.join(missing[:5]) or '-'})"
            )
        for tname, info in self._infos.items():
            record = self._records[tname]
            if (info.dtype, tuple(info.shape)) != (record.dtype, record.shape):
                raise TensorVerificationError(
                    f"{name}: tensor {tname!r} is {info.dtype}{list(info.shape)}, "
                    f"signed as {record.dtype}{list(record.shape)}"
                )

    def __getitem__(self, tensor: str) -> np.ndarray:
        return self.tensor(tensor)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._infos))

    def __len__(self) -> int:
        return len(self._infos)

    def record(self, tensor: str) -> TensorRecord:
        """The signed record of ``tensor``."""
        return self._records[tensor]

    def read_bytes(self, tensor: str) -> bytes:
        """The verified raw bytes of ``tensor`` (reads only that tensor)."""
        info = self._infos.get(tensor)
        if info is None:
            raise KeyError(tensor)
        with open(info.file, "rb", buffering=0) as handle:
            handle.seek(info.offset)
            data = handle.read(info.nbytes)
        if len(data) != info.nbytes or not self._records[tensor].matches(data):
            raise TensorVerificationError(
                f"{self.name}: tensor {tensor!r} does not match its signature",
                advice="the weights were modified after signing; do not use them",
            )
        return data

    def tensor(self, tensor: str) -> np.ndarray:
        """The verified tensor as a numpy array (bfloat16/fp8 as same-width unsigned ints)."""
        import numpy as np

        from modelseal.formats.tensors import _NUMPY_VIEW

        info = self._infos.get(tensor)
        if info is None:
            raise KeyError(tensor)
        data = self.read_bytes(tensor)
        dtype = _NUMPY_VIEW.get(info.dtype, "|u1")
        array = np.frombuffer(bytearray(data), dtype=dtype)
        return array.reshape(info.shape) if dtype != "|u1" or info.dtype in _NUMPY_VIEW else array


def open_verified(
    path: str | os.PathLike[str],
    *,
    signature: str | os.PathLike[str],
    key: Any = None,
    trust_roots: Sequence[str | os.PathLike[str]] = (),
    root: str | os.PathLike[str] | None = None,
) -> VerifiedTensorFile:
    """Open a signed weight file lazily; tensors are verified as they are read.

    ``root`` is the signed model directory (default: the file's directory).
    """
    file = Path(path)
    manifest = _signed_manifest(signature, key, trust_roots)
    name = _name_in(manifest, file, root)
    signed = manifest.extension.tensors.get(name)
    if signed is None:
        raise TensorVerificationError(
            f"{name}: the signature has no tensor manifest for this file",
            advice="sign the model with modelseal (tensor manifests are on by default)",
        )
    return VerifiedTensorFile(file, name, signed)


def load_safetensors(
    path: str | os.PathLike[str],
    *,
    signature: str | os.PathLike[str],
    key: Any = None,
    trust_roots: Sequence[str | os.PathLike[str]] = (),
    root: str | os.PathLike[str] | None = None,
) -> dict[str, np.ndarray]:
    """Every tensor of a signed safetensors file, each verified."""
    reader = open_verified(path, signature=signature, key=key, trust_roots=trust_roots, root=root)
    return {name: reader.tensor(name) for name in reader}


def torch_load(
    path: str | os.PathLike[str],
    *,
    signature: str | os.PathLike[str],
    key: Any = None,
    trust_roots: Sequence[str | os.PathLike[str]] = (),
    root: str | os.PathLike[str] | None = None,
    map_location: Any = "cpu",
) -> Any:
    """Verify, scan, then ``torch.load(..., weights_only=True)`` a signed checkpoint."""
    from modelseal.integrity.hashing import engine_for

    file = Path(path)
    manifest = _signed_manifest(signature, key, trust_roots)
    name = _name_in(manifest, file, root)
    pieces = manifest.file_digests().get(name)
    if pieces is None:
        raise TensorVerificationError(f"{name}: not covered by the signature")
    data = file.read_bytes()
    engine = engine_for(manifest.serialization.hash_type)
    for start, end, digest in pieces:
        chunk = data[start or 0 : end if end is not None else len(data)]
        if engine.digest(chunk).hex != digest:
            raise TensorVerificationError(
                f"{name}: does not match its signature", advice="do not load this file"
            )
    if sum((e or len(data)) - (s or 0) for s, e, _ in pieces) != len(data):
        raise TensorVerificationError(f"{name}: size differs from the signature")
    from modelseal.scan import scan

    report = scan([file])
    bad = [r for r in report.results if r.verdict.value != "clean"]
    if bad:
        raise TensorVerificationError(
            f"{name}: static scan says {bad[0].verdict.value}; refusing to load",
            advice="run `modelseal scan` on it for details",
        )
    import torch

    return torch.load(io.BytesIO(data), weights_only=True, map_location=map_location)
