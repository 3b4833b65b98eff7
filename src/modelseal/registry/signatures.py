"""Signature checks against file digests the registry already verified.

A model-signing bundle made with the ``files`` method and SHA-256 lists the SHA-256
of every file, which is exactly what the registry stores per file and what the
server (on upload) and the client (on download) check against the bytes. So once
those digests are verified, the signature is verified by authenticating the bundle
with the key and comparing its manifest with the file list: no second pass over
the bytes. Any other manifest kind returns ``None`` and the caller runs the full
``modelseal.integrity.verify`` over the files on disk.

The comparison is stricter than a directory verify: every file of the version must
be covered by the signature and every signed file must be present. The one exception
is :data:`UNSIGNED_ALLOWED`: the Git metadata files a Hub folder ships
(``.gitattributes``, ``.gitignore``) at the top level, which model-signing (and so
``modelseal sign``) always leaves out. They are accepted unsigned only when the
signature itself lists them in its ``ignore_paths`` (the signer left them out on
purpose), and the version records them as unsigned. No loader reads them as code; the
rest of the reference's ignore set (the ``.git/`` and ``.github/`` folders, which hold
hooks and workflows) still has to be signed or left out of the upload.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelseal.errors import ModelsealError
from modelseal.registry.manifest import FileEntry

__all__ = ["UNSIGNED_ALLOWED", "check_signature_digests", "signed_file_list", "unsigned_files"]

#: Files a version may carry without a signature over them (top level only).
UNSIGNED_ALLOWED: frozenset[str] = frozenset({".gitattributes", ".gitignore"})


def _left_out(manifest: Any, files: Sequence[FileEntry]) -> list[str]:
    """The files of ``UNSIGNED_ALLOWED`` the manifest deliberately does not cover."""
    ignored = set(manifest.serialization.ignore_paths)
    covered = set(manifest.file_digests())
    return sorted(
        f.path for f in files if f.path in UNSIGNED_ALLOWED & ignored and f.path not in covered
    )


def unsigned_files(bundle: bytes, files: Sequence[FileEntry]) -> list[str]:
    """The files of a version the (already verified) bundle accepts unsigned."""
    from modelseal.integrity.bundle import Bundle
    from modelseal.integrity.manifest import Manifest

    try:
        manifest = Manifest.from_payload(Bundle.from_json(bundle).envelope.payload)
    except (ModelsealError, ValueError, KeyError, TypeError):
        return []
    return _left_out(manifest, files)


def check_signature_digests(
    bundle: bytes, public_key_pem: str, files: Sequence[FileEntry]
) -> list[str] | None:
    """The reasons the bundle does not sign exactly ``files`` with this key (``[]``: it does).

    ``None`` when the manifest cannot be compared by digest (not ``files``/SHA-256).
    """
    from modelseal.integrity.bundle import Bundle
    from modelseal.integrity.operations import make_verifier, read_signed_manifest

    with tempfile.TemporaryDirectory(prefix="modelseal-key-") as tmp:
        pem = Path(tmp) / "key.pub.pem"
        pem.write_text(public_key_pem, encoding="utf-8")
        try:
            verifier = make_verifier(pem)
            manifest = read_signed_manifest(Bundle.from_json(bundle), verifier)
        except ModelsealError as exc:
            return [exc.message]
    params = manifest.serialization
    if params.method != "files" or params.hash_type != "sha256":
        return None
    expected = manifest.file_digests()
    left_out = set(_left_out(manifest, files))
    actual = {f.path: f for f in files if f.path not in left_out}
    reasons = [f"not covered by the signature: {p}" for p in sorted(set(actual) - set(expected))]
    reasons += [f"signed but missing: {p}" for p in sorted(set(expected) - set(actual))]
    for path in sorted(set(actual) & set(expected)):
        pieces, entry = expected[path], actual[path]
        same = entry.size == 0 if not pieces else len(pieces) == 1 and pieces[0][2] == entry.digest
        if not same:
            reasons.append(f"changed since signing: {path}")
    return reasons


def signed_file_list(bundle: bytes, root: Path) -> list[FileEntry] | None:
    """The file list a (not yet authenticated) ``files``/SHA-256 bundle claims for ``root``.

    Used by ``push`` to skip hashing a model it has just signed: the digests are only
    declarations, the server hashes every uploaded byte and refuses a mismatch. ``None``
    when the bundle is of another kind or does not list exactly the regular files under
    ``root`` with their current sizes.
    """
    import os

    from modelseal.integrity.bundle import Bundle
    from modelseal.integrity.manifest import Manifest

    try:
        manifest = Manifest.from_payload(Bundle.from_json(bundle).envelope.payload)
    except (ModelsealError, ValueError, KeyError, TypeError):
        return None
    params = manifest.serialization
    if params.method != "files" or params.hash_type != "sha256":
        return None
    on_disk: dict[str, int] = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                return None
            on_disk[full.relative_to(root).as_posix()] = full.stat().st_size
    expected = manifest.file_digests()
    if set(expected) != set(on_disk):
        return None
    entries: list[FileEntry] = []
    for path, pieces in sorted(expected.items()):
        if not pieces:
            if on_disk[path] != 0:
                return None
            entries.append(FileEntry(path, _EMPTY_SHA256, 0))
        elif len(pieces) == 1:
            entries.append(FileEntry(path, pieces[0][2], on_disk[path]))
        else:
            return None
    return entries


_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
