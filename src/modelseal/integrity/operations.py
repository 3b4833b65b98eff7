"""``sign`` and ``verify``: hash -> self-describing manifest -> signer, and back."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal._io import atomic_write
from modelseal.errors import SignatureError, UsageError, VerificationError
from modelseal.integrity.bundle import (
    IN_TOTO_PAYLOAD_TYPE,
    Bundle,
    BundleError,
    VerificationMaterial,
)
from modelseal.integrity.manifest import Extension, Manifest
from modelseal.integrity.results import (
    ChangeKind,
    FileChange,
    ProvenanceCheck,
    SignResult,
    UnsignedFile,
    VerifyResult,
)
from modelseal.integrity.serialization import (
    DEFAULT_IGNORED,
    DEFAULT_SHARD_SIZE,
    HashedFile,
    ModelFile,
    ModelListing,
    Serialization,
    Spans,
    hash_files,
    list_model,
)
from modelseal.integrity.signing.interface import Signer, Verifier
from modelseal.integrity.tensors import (
    DEFAULT_TENSOR_HASH,
    TensorChange,
    TensorFileManifest,
    diff_tensors,
    manifest_from_digests,
    tensor_spans,
)

if TYPE_CHECKING:
    from modelseal.formats.tensors import TensorInfo

__all__ = [
    "KeyLike",
    "Progress",
    "default_signature_path",
    "make_signer",
    "make_verifier",
    "read_signed_manifest",
    "sign",
    "verify",
]

#: A key: a path to a PEM file, or a loaded ``cryptography`` key object.
KeyLike = str | os.PathLike[str] | Any
#: Progress callback: (bytes done, bytes in total). Called from worker threads.
Progress = Callable[[int, int], None]

_CODE_SUFFIXES = frozenset(
    {".py", ".pyc", ".pyo", ".pyw", ".sh", ".bash", ".so", ".dll", ".dylib", ".exe", ".bat",
     ".cmd", ".ps1", ".js", ".mjs", ".ipynb", ".pkl", ".pickle", ".pt", ".pth",
     ".joblib", ".ckpt", ".whl", ".jar", ".rb", ".pl"}
)  # fmt: skip
_GLOB_CHARS = frozenset("*?[")


def _is_absolute(path: str) -> bool:
    """Whether an ignore entry is absolute (it would not be portable)."""
    return Path(path).is_absolute()


def default_signature_path(path: str | os.PathLike[str]) -> Path:
    """``DIR.sig`` next to the model (never inside it)."""
    resolved = Path(path).resolve()
    return resolved.with_name(resolved.name + ".sig")


def make_signer(
    key: KeyLike,
    *,
    passphrase: str | bytes | None = None,
    certificate: str | os.PathLike[str] | None = None,
    chain: Sequence[str | os.PathLike[str]] = (),
) -> Signer:
    """A key-mode signer, or a certificate-mode one when ``certificate`` is given."""
    from modelseal.integrity.signing.keys import load_private_key

    private = load_private_key(key, passphrase) if isinstance(key, str | os.PathLike) else key
    if certificate is not None:
        from modelseal.integrity.signing.certificate import CertificateSigner, load_certificates

        leaf, *rest = load_certificates([certificate])
        return CertificateSigner(
            private, leaf, [*rest, *load_certificates(chain)] if chain else rest
        )
    from modelseal.integrity.signing.key import KeySigner

    return KeySigner(private)


def make_verifier(
    key: KeyLike | None = None, *, trust_roots: Sequence[str | os.PathLike[str]] = ()
) -> Verifier:
    """A key-mode verifier for ``key``, or a certificate-mode one for ``trust_roots``."""
    if trust_roots:
        from modelseal.integrity.signing.certificate import CertificateVerifier, load_certificates

        return CertificateVerifier(load_certificates(trust_roots))
    if key is None:
        raise UsageError("give a public key (--key) or trusted roots (--trust-root) to verify")
    from modelseal.integrity.signing.key import KeyVerifier
    from modelseal.integrity.signing.keys import load_public_key

    public = load_public_key(key) if isinstance(key, str | os.PathLike) else key
    if hasattr(public, "private_bytes"):
        public = public.public_key()
    return KeyVerifier(public)


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read a signature file (raises :class:`VerificationError` if it is not a bundle)."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read signature ({exc.strerror})") from exc
    try:
        return Bundle.from_json(text)
    except BundleError as exc:
        raise VerificationError(f"{path}: {exc.message}") from exc


def read_signed_manifest(bundle: Bundle, verifier: Verifier) -> Manifest:
    """Authenticate ``bundle`` and parse its manifest (raises ``VerificationError``)."""
    payload_type, payload = verifier.verify(bundle)
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"signed payload has type {payload_type!r}, not in-toto JSON")
    try:
        return Manifest.from_payload(payload)
    except SignatureError as exc:
        raise VerificationError(exc.message, advice=exc.advice) from exc


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self._progress = total, 0, progress
        self._lock = threading.Lock()

    def __call__(self, count: int) -> None:
        with self._lock:
            self.done += count
            done = self.done
        if self._progress is not None:
            self._progress(done, self.total)


def _model_name(root: Path) -> str:
    return root.name or root.resolve().name


def _relative_inside(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def sign(
    path: str | os.PathLike[str],
    *,
    key: KeyLike,
    output: str | os.PathLike[str] | None = None,
    hash_algorithm: str = "sha256",
    method: str = "files",
    shard_size: int = DEFAULT_SHARD_SIZE,
    ignore: Sequence[str] = (),
    previous: str | os.PathLike[str] | None = None,
    allow_symlinks: bool = False,
    tensors: bool = True,
    tensor_hash: str = DEFAULT_TENSOR_HASH,
    passphrase: str | bytes | None = None,
    certificate: str | os.PathLike[str] | None = None,
    chain: Sequence[str | os.PathLike[str]] = (),
    progress: Progress | None = None,
) -> SignResult:
    """Sign the model at ``path`` and write a model-signing v1 bundle to ``output``.

    ``ignore`` holds paths (recorded as model-signing ``ignore_paths``) or globs
    (recorded in modelseal's extension; the files they match are also listed as
    ignore paths so model-signing verifies the same set). ``previous`` is an
    earlier signature by the same key: files with the same size, mtime and inode
    reuse its digests. ``tensor_hash`` is the data hash of the per-tensor
    manifest's leaves (computed in the same read pass as the file digests).
    Raises :class:`SignatureError` for bad keys and
    :class:`~modelseal.integrity.serialization.FileChangedError` if a file
    changes while it is hashed.
    """
    started = time.perf_counter()
    root = Path(path)
    signer = make_signer(key, passphrase=passphrase, certificate=certificate, chain=chain)
    out = Path(output) if output is not None else default_signature_path(root)
    if method == "shards" and hash_algorithm == "blake3":
        method = "files"  # model-signing also digests whole files with BLAKE3
    prefixes = [p.strip("/") for p in ignore if not _GLOB_CHARS & set(p)]
    for prefix in prefixes:
        if (
            prefix in ("", ".")
            or prefix == ".."
            or prefix.startswith("../")
            or _is_absolute(prefix)
        ):
            raise UsageError(
                f"--ignore {prefix!r} must name a path inside the model",
                advice="give paths relative to the model directory, e.g. --ignore docs/",
            )
    globs = [g for g in ignore if _GLOB_CHARS & set(g)]
    inside = _relative_inside(out, root) if root.is_dir() else None
    ignore_paths = [*DEFAULT_IGNORED, *prefixes] + ([inside] if inside else [])
    listing = list_model(
        root, ignore_paths=ignore_paths, ignore_globs=globs, allow_symlinks=allow_symlinks
    )
    if listing.symlinks:
        raise SignatureError(
            f"{root}: contains symbolic links: {', '.join(listing.symlinks[:5])}",
            advice="pass --allow-symlinks to sign the files they point to",
        )
    if listing.special:
        raise SignatureError(f"{root}: contains special files: {', '.join(listing.special[:5])}")
    glob_matches = [
        name
        for name in listing.ignored
        if not any(name == p or name.startswith(p + "/") for p in ignore_paths)
    ]
    serialization = Serialization(
        method=method,
        hash_type=hash_algorithm,
        shard_size=shard_size if method == "shards" else None,
        allow_symlinks=allow_symlinks,
        ignore_paths=tuple(dict.fromkeys([*ignore_paths, *glob_matches])),
    )
    reuse, reused_tensors = _reusable(previous, signer, serialization, listing.files)
    counter = _Counter(sum(f.stat.size for f in listing.files if f.name not in reuse), progress)
    if tensors:
        from modelseal.integrity.hashing import engine_for

        engine_for(tensor_hash).new()  # a missing or unknown hash fails before any reading
    described = _describe_weights(listing.files, reuse) if tensors else {}
    hashed = hash_files(
        listing.files,
        serialization,
        reuse=reuse,
        spans={
            name: Spans(tensor_hash, tuple(tensor_spans(infos)))
            for name, (_, infos) in described.items()
        },
        progress=counter,
    )
    tensor_manifests = dict(reused_tensors) if tensors else {}
    for item in hashed:
        if item.file.name in described:
            fmt, infos = described[item.file.name]
            tensor_manifests[item.file.name] = manifest_from_digests(
                item.file.name, fmt, infos, item.spans, tensor_hash
            )
    extension = Extension(
        ignore_globs=tuple(globs),
        ignored=tuple(n for n in listing.ignored if n != inside),
        empty_files=tuple(f.name for f in listing.files if f.stat.size == 0),
        stats={f.name: f.stat for f in listing.files},
        tensors=tensor_manifests,
    )
    manifest = Manifest.build(_model_name(root), serialization, hashed, extension)
    bundle = signer.sign(manifest.to_payload(), IN_TOTO_PAYLOAD_TYPE)
    atomic_write(out, bundle.to_json())
    from modelseal.integrity.signing.keys import scheme_for

    reused_files = tuple(h.file.name for h in hashed if h.reused)
    return SignResult(
        signature_path=out,
        model_name=manifest.model_name,
        root_digest=manifest.root_digest,
        method=serialization.method,
        hash_algorithm=serialization.hash_type,
        signer=scheme_for(signer.public_key).describe(signer.public_key),
        files=len(hashed),
        bytes_hashed=counter.total,
        reused=reused_files,
        bytes_reused=sum(h.file.stat.size for h in hashed if h.reused),
        ignored=extension.ignored,
        tensor_files=tuple(sorted(tensor_manifests)),
        seconds=time.perf_counter() - started,
        interoperable=scheme_for(signer.public_key).interoperable
        and hash_algorithm in ("sha256", "blake3"),  # model_signing 1.1 cannot verify blake2b
    )


def _reusable(
    previous: str | os.PathLike[str] | None,
    signer: Signer,
    serialization: Serialization,
    files: Sequence[ModelFile],
) -> tuple[dict[str, tuple[tuple[int, int, bytes], ...]], dict[str, TensorFileManifest]]:
    """Digests from a previous signature for files that provably did not change."""
    if previous is None:
        return {}, {}
    from modelseal.integrity.signing.key import KeyVerifier

    try:
        bundle = read_bundle(previous)
        # Whatever the mode (key or certificate), it must be signed by the signing key.
        bundle = dataclasses.replace(bundle, verification_material=VerificationMaterial())
        old = read_signed_manifest(bundle, KeyVerifier(signer.public_key))
    except VerificationError as exc:
        raise SignatureError(
            f"{previous}: cannot reuse this signature: {exc.message}",
            advice="--previous must be a signature made with the same key",
        ) from exc
    same = (old.serialization.method, old.serialization.hash_type, old.serialization.shard_size)
    if same != (serialization.method, serialization.hash_type, serialization.shard_size):
        return {}, {}
    digests = old.file_digests()
    reuse: dict[str, tuple[tuple[int, int, bytes], ...]] = {}
    tensors: dict[str, TensorFileManifest] = {}
    for file in files:
        if old.extension.stats.get(file.name) != file.stat or file.name not in digests:
            continue
        size = file.stat.size
        reuse[file.name] = tuple(
            (start if start is not None else 0, end if end is not None else size, bytes.fromhex(d))
            for start, end, d in digests[file.name]
        )
        if file.name in old.extension.tensors:
            tensors[file.name] = old.extension.tensors[file.name]
    return reuse, tensors


def _describe_weights(
    files: Sequence[ModelFile], reused: Mapping[str, object]
) -> dict[str, tuple[str, Sequence[TensorInfo]]]:
    """Tensor layouts of the weight files that will be hashed (headers only)."""
    from modelseal.integrity.tensors import describe_weight_file

    out = {}
    for file in files:
        if file.name in reused or not file.path.name.endswith((".safetensors", ".gguf")):
            continue
        described = describe_weight_file(file.path)
        if described is not None:
            out[file.name] = described
    return out


def _is_code(path: Path, name: str) -> bool:
    """Whether an unsigned file would run code: by name, shebang, or sniffed format."""
    if Path(name).suffix.lower() in _CODE_SUFFIXES or name.startswith(".github/workflows/"):
        return True
    from modelseal.errors import ModelsealError
    from modelseal.formats import PICKLE_FORMATS, Format, detect

    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
        if head.startswith(b"#!"):
            return True
        fmt = detect(
            head,
            name=name,
            size=path.stat().st_size,
            open_stream=lambda: open(path, "rb"),  # noqa: SIM115 - the sniffer closes it
        )
    except (OSError, ValueError, ModelsealError):  # unreadable: not shown as code
        return False
    return fmt in PICKLE_FORMATS or fmt == Format.PYTHON


def verify(
    path: str | os.PathLike[str],
    *,
    key: KeyLike | None = None,
    signature: str | os.PathLike[str] | None = None,
    trust_roots: Sequence[str | os.PathLike[str]] = (),
    allow_unsigned: bool = False,
    allow_symlinks: bool = False,
    tensors: bool = False,
    provenance: str | os.PathLike[str] | None = None,
    expect_base_model: str | None = None,
    expect_dataset: Sequence[str] = (),
    progress: Progress | None = None,
) -> VerifyResult:
    """Verify the model at ``path`` against ``signature`` (default ``PATH.sig``).

    Returns a :class:`VerifyResult`; a model that does not match is ``ok=False``
    with reasons, never an exception. Raises :class:`UsageError` or
    :class:`SignatureError` for unusable keys and files, and
    :class:`VerificationError` for a signature file that is not a bundle.
    """
    root = Path(path)
    if not root.exists():
        raise UsageError(f"{root}: no such file or directory")
    sig_path = Path(signature) if signature is not None else default_signature_path(root)
    verifier = make_verifier(key, trust_roots=trust_roots)
    bundle = read_bundle(sig_path)
    try:
        manifest = read_signed_manifest(bundle, verifier)
    except VerificationError as exc:
        return VerifyResult(ok=False, reasons=(exc.message,))
    params = manifest.serialization
    inside = _relative_inside(sig_path, root) if root.is_dir() else None
    prefixes = [*params.ignore_paths] + ([inside] if inside else [])
    listing = list_model(
        root,
        ignore_paths=prefixes,
        ignore_globs=manifest.extension.ignore_globs,
        allow_symlinks=allow_symlinks,
    )
    counter = _Counter(sum(f.stat.size for f in listing.files), progress)
    described = (
        _describe_weights([f for f in listing.files if f.name in manifest.extension.tensors], {})
        if tensors
        else {}
    )
    hashed = hash_files(
        listing.files,
        params,
        spans={  # --tensors: the tensors' digests come from the same read pass
            name: Spans(manifest.extension.tensors[name].algorithm, tuple(tensor_spans(infos)))
            for name, (_, infos) in described.items()
        },
        progress=counter,
    )
    return _compare(
        root,
        manifest,
        verifier.describe(bundle),
        listing,
        hashed,
        inside=inside,
        allow_unsigned=allow_unsigned,
        described=described,
        provenance=_check_provenance(
            provenance, verifier, manifest, expect_base_model, expect_dataset
        )
        if provenance is not None
        else None,
    )


def _compare(
    root: Path,
    manifest: Manifest,
    signer: str,
    listing: ModelListing,
    hashed: Sequence[HashedFile],
    *,
    inside: str | None,
    allow_unsigned: bool,
    described: Mapping[str, tuple[str, Sequence[TensorInfo]]],
    provenance: ProvenanceCheck | None,
) -> VerifyResult:
    whole = manifest.serialization.method == "files" or manifest.serialization.hash_type == "blake3"
    expected = {
        name: ",".join(d for _, _, d in parts) for name, parts in manifest.file_digests().items()
    }
    expected_spans = {
        name: tuple((s, e) for s, e, _ in parts) for name, parts in manifest.file_digests().items()
    }
    actual: dict[str, str] = {}
    actual_spans: dict[str, tuple[tuple[int | None, int | None], ...]] = {}
    unsigned: list[UnsignedFile] = []
    lenient_empty = not whole and not manifest.extension.stats  # a model-signing shards bundle
    for item in hashed:
        if lenient_empty and item.file.stat.size == 0 and item.file.name not in expected:
            unsigned.append(UnsignedFile(item.file.name, False, "empty file (not covered)"))
            continue
        actual[item.file.name] = ",".join(d.hex() for _, _, d in item.pieces)
        actual_spans[item.file.name] = tuple(
            (None, None) if whole else (s, e) for s, e, _ in item.pieces
        )
    removed_names = sorted(set(expected) - set(actual))
    added_names = sorted(set(actual) - set(expected))
    renamed: list[FileChange] = []
    by_digest: dict[str, list[str]] = {}
    for name in removed_names:
        if expected[name]:
            by_digest.setdefault(expected[name], []).append(name)
    for name in list(added_names):
        olds = by_digest.get(actual[name])
        if olds:
            old = olds.pop(0)
            renamed.append(
                FileChange(name, ChangeKind.RENAMED, expected[old], actual[name], renamed_from=old)
            )
            added_names.remove(name)
            removed_names.remove(old)
    added = [FileChange(n, ChangeKind.ADDED, None, actual[n] or _EMPTY) for n in added_names]
    removed = [
        FileChange(n, ChangeKind.REMOVED, expected[n] or _EMPTY, None) for n in removed_names
    ]
    changed = [
        FileChange(n, ChangeKind.CHANGED, expected[n], actual[n])
        for n in sorted(set(expected) & set(actual))
        if expected[n] != actual[n] or expected_spans[n] != actual_spans[n]
    ]
    for name in listing.ignored:
        if name == inside:
            continue
        full = root / name if root.is_dir() else root
        unsigned.append(UnsignedFile(name, _is_code(full, name)))
    reasons: list[str] = []
    for kind, items in (("added", added), ("removed", removed), ("changed", changed)):
        if items:
            reasons.append(f"{len(items)} file(s) {kind}: {', '.join(c.path for c in items[:10])}")
    if renamed:
        reasons.append(
            "file(s) renamed: " + ", ".join(f"{c.renamed_from} -> {c.path}" for c in renamed[:10])
        )
    code = [u.path for u in unsigned if u.is_code]
    if code and not allow_unsigned:
        reasons.append(
            f"unsigned code present: {', '.join(code[:10])} (pass --allow-unsigned to accept)"
        )
    if listing.symlinks:
        reasons.append(
            f"symbolic links refused: {', '.join(listing.symlinks[:10])} "
            "(pass --allow-symlinks to follow them)"
        )
    if listing.special:
        reasons.append(f"special files present: {', '.join(listing.special[:10])}")
    tensor_changes: list[TensorChange] = []
    spans = {item.file.name: item.spans for item in hashed}
    for change in changed:
        signed = manifest.extension.tensors.get(change.path)
        if signed is None or change.path not in described:
            continue
        fmt, infos = described[change.path]
        now = manifest_from_digests(change.path, fmt, infos, spans[change.path], signed.algorithm)
        tensor_changes.extend(diff_tensors(signed, now))
    if provenance is not None and not provenance.ok:
        reasons.extend(f"provenance: {r}" for r in provenance.reasons)
    return VerifyResult(
        ok=not reasons,
        reasons=tuple(reasons),
        model_name=manifest.model_name,
        root_digest=manifest.root_digest,
        signer=signer,
        method=manifest.serialization.method,
        hash_algorithm=manifest.serialization.hash_type,
        files_checked=len(hashed),
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        renamed=tuple(renamed),
        unsigned=tuple(unsigned),
        symlinks=listing.symlinks,
        tensor_changes=tuple(tensor_changes),
        provenance=provenance,
        ignore_paths=manifest.serialization.ignore_paths,
    )


#: Shown as the digest of a file with no resources (an empty file in the shards method).
_EMPTY = "(empty)"


def _check_provenance(
    path: str | os.PathLike[str],
    verifier: Verifier,
    manifest: Manifest,
    expect_base_model: str | None,
    expect_dataset: Sequence[str],
) -> ProvenanceCheck:
    from modelseal.integrity.provenance import check_provenance

    return check_provenance(
        read_bundle(path),
        verifier,
        manifest.root_digest,
        expect_base_model=expect_base_model,
        expect_dataset=expect_dataset,
    )
