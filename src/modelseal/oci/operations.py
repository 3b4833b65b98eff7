"""Push, pull and verify models as ModelPack artifacts in any OCI registry.

The guarantees are those of ``modelseal pull`` from our own registry: every layer's
digest is checked while it streams, the OpenSSF model-signing bundle found among
the manifest's referrers must verify with the caller's key over the files, the
files are scanned, and only then is the destination created (one rename); on any
failure nothing lands and every reason is reported.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.errors import UsageError, VerificationError
from modelseal.oci.auth import find_credentials
from modelseal.oci.distribution import (
    OCI_MANIFEST,
    Descriptor,
    DistributionClient,
    OciError,
    canonical_json,
    parse_json_object,
)
from modelseal.oci.modelpack import (
    ARTIFACT_TYPE,
    BUNDLE_TYPE,
    CONFIG_TYPE,
    CYCLONEDX_TYPE,
    INTOTO_TYPE,
    RAW_TYPES,
    Layer,
    build_config,
    build_manifest,
    check_layer_path,
    model_layers,
    referrer_manifest,
)
from modelseal.oci.reference import OciReference, parse_oci_reference

__all__ = [
    "OciPullResult",
    "OciPushResult",
    "connect",
    "fetch_oci",
    "pull_oci",
    "push_oci",
    "verify_oci",
]

#: Signature bundles, SBOMs and attestations larger than this are refused on pull.
_MAX_SIDECAR = 64 * 1024 * 1024

#: Called with (bytes done, bytes in total).
TransferProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class OciPushResult:
    """What ``push_oci`` stored."""

    reference: str
    digest: str
    layers: int
    bytes_uploaded: int
    bytes_skipped: int
    #: Artifact types attached as referrers (signature, SBOM, provenance).
    referrers: tuple[str, ...]
    #: True when the registry has the referrers API; False when the tag fallback was written.
    referrers_api: bool
    seconds: float


@dataclass(frozen=True)
class OciPullResult:
    """What ``pull_oci`` / ``verify_oci`` checked (and wrote, for a pull)."""

    reference: str
    digest: str
    destination: Path | None
    files: int
    bytes_downloaded: int
    checks: tuple[str, ...]
    seconds: float


def connect(
    ref: OciReference, *, plain_http: bool = False, insecure_remote: bool = False
) -> DistributionClient:
    """A client for ``ref``'s registry with the credentials found for it.

    ``plain_http`` is refused for registries off this machine unless
    ``insecure_remote`` (credentials and models would travel in clear).
    """
    if plain_http and not ref.is_loopback and not insecure_remote:
        raise UsageError(
            f"--plain-http is only allowed for a registry on this machine, not {ref.host}",
            advice="use TLS for remote registries",
        )
    return DistributionClient(
        ref.host, plain_http=plain_http, credentials=find_credentials(ref.host)
    )


# -- push ------------------------------------------------------------------------------------------


def push_oci(
    model_dir: str | os.PathLike[str],
    reference: str | OciReference,
    *,
    key: str | os.PathLike[str] | None = None,
    signature: str | os.PathLike[str] | None = None,
    provenance: str | os.PathLike[str] | None = None,
    sbom: bool = True,
    plain_http: bool = False,
    workers: int = 4,
    progress: TransferProgress | None = None,
) -> OciPushResult:
    """Publish ``model_dir`` as a ModelPack artifact with its signature and SBOM as referrers.

    With ``key`` the model is signed first (the bundle is written next to nothing:
    it lives in a temporary directory and in the registry); ``signature`` uses an
    existing bundle instead. The pushed files are exactly the signed ones.
    """
    started = time.perf_counter()
    ref = parse_oci_reference(reference) if isinstance(reference, str) else reference
    if ref.digest:
        raise UsageError("push to a tag, not a digest", advice="write oci://HOST/REPO:TAG")
    root = Path(model_dir)
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    with tempfile.TemporaryDirectory(prefix="modelseal-oci-") as tmp:
        bundle_path = _signature_for(root, key, signature, Path(tmp))
        files = _file_digests(root, bundle_path)
        layers = model_layers([(name, digest, size) for name, _, digest, size in files])
        paths = {name: path for name, path, _, _ in files}
        facts, sbom_doc = _describe(root, bundle_path, key, sbom, files)
        with connect(ref, plain_http=plain_http) as client:
            uploaded, skipped = _upload_layers(client, ref, layers, paths, workers, progress)
            config_doc = build_config(facts, layers, name=ref.repository, version=ref.tag)
            config = client.put_blob_bytes(ref.repository, canonical_json(config_doc))
            config = Descriptor(CONFIG_TYPE, config.digest, config.size)
            annotations = {"org.opencontainers.image.title": ref.repository}
            if facts is not None and facts.base_models:
                annotations["org.opencontainers.image.base.name"] = facts.base_models[0].name
            body = build_manifest(config, layers, annotations)
            tag = ref.tag or "latest"
            digest, _ = client.put_manifest(ref.repository, tag, body, OCI_MANIFEST)
            subject = Descriptor(OCI_MANIFEST, digest, len(body), artifact_type=ARTIFACT_TYPE)
            sidecars: list[tuple[str, bytes]] = []
            if bundle_path is not None:
                sidecars.append((BUNDLE_TYPE, bundle_path.read_bytes()))
            if sbom_doc is not None:
                sidecars.append((CYCLONEDX_TYPE, canonical_json(sbom_doc)))
            if provenance is not None:
                sidecars.append((INTOTO_TYPE, _read_file(Path(provenance), "provenance")))
            api = True
            for artifact_type, data in sidecars:
                api = _attach(client, ref, subject, artifact_type, data) and api
    return OciPushResult(
        reference=str(ref.with_digest(digest)),
        digest=digest,
        layers=len(layers),
        bytes_uploaded=uploaded,
        bytes_skipped=skipped,
        referrers=tuple(t for t, _ in sidecars),
        referrers_api=api if sidecars else False,
        seconds=time.perf_counter() - started,
    )


def _signature_for(
    root: Path,
    key: str | os.PathLike[str] | None,
    signature: str | os.PathLike[str] | None,
    tmp: Path,
) -> Path | None:
    if key is not None and signature is not None:
        raise UsageError("give --key or --signature, not both")
    if signature is not None:
        path = Path(signature)
        _read_file(path, "signature")
        return path
    if key is None:
        return None
    from modelseal.integrity import sign

    output = tmp / "model.sig"
    sign(root, key=key, output=output)
    return output


def _file_digests(root: Path, bundle_path: Path | None) -> list[tuple[str, Path, str, int]]:
    """(name, path, sha256 hex, size) of every file to push: the signed ones when signed."""
    from modelseal.integrity.serialization import DEFAULT_IGNORED, list_model

    signed: dict[str, str] = {}
    ignore: tuple[str, ...] = DEFAULT_IGNORED
    if bundle_path is not None:
        from modelseal.integrity.bundle import Bundle
        from modelseal.integrity.manifest import Manifest

        manifest = Manifest.from_payload(
            Bundle.from_json(bundle_path.read_bytes()).envelope.payload
        )
        for name, pieces in manifest.file_digests().items():
            if len(pieces) == 1 and pieces[0][0] is None and _is_sha256_resource(manifest, name):
                signed[name] = pieces[0][2]
        ignore = (*DEFAULT_IGNORED, *manifest.serialization.ignore_paths)
    listing = list_model(root, ignore_paths=ignore)
    out = []
    todo = []
    for item in listing.files:
        if item.name in signed:
            out.append((item.name, item.path, signed[item.name], item.stat.size))
        else:
            todo.append(item)
    for item, digest in zip(todo, _sha256_files([i.path for i in todo]), strict=True):
        out.append((item.name, item.path, digest, item.stat.size))
    return sorted(out)


def _is_sha256_resource(manifest: Any, name: str) -> bool:
    return any(r.file == name and r.algorithm == "sha256" for r in manifest.resources)


def _sha256_files(paths: Sequence[Path]) -> list[str]:
    import hashlib

    def one(path: Path) -> str:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, paths))


def _describe(
    root: Path,
    bundle_path: Path | None,
    key: str | os.PathLike[str] | None,
    sbom: bool,
    files: Sequence[tuple[str, Path, str, int]],
) -> tuple[Any, dict[str, Any] | None]:
    """The SBOM collector's facts (for the config) and the CycloneDX document."""
    from modelseal.sbom import build_sbom
    from modelseal.sbom.collect import collect

    known = {name: digest for name, _, digest, _ in files}
    if not sbom:
        return collect(root, known_sha256=known), None
    result = build_sbom(root, format="cyclonedx", known_sha256=known)
    return result.facts, result.document


def _upload_layers(
    client: DistributionClient,
    ref: OciReference,
    layers: Sequence[Layer],
    paths: dict[str, Path],
    workers: int,
    progress: TransferProgress | None,
) -> tuple[int, int]:
    total = sum(layer.descriptor.size for layer in layers)
    done = 0
    lock = threading.Lock()

    def moved(count: int) -> None:
        nonlocal done
        with lock:
            done += count
            if progress:
                progress(done, total)

    def one(layer: Layer) -> tuple[int, int]:
        d = layer.descriptor
        if client.blob_size(ref.repository, d.digest) == d.size:
            moved(d.size)
            return 0, d.size
        client.put_blob_file(ref.repository, paths[layer.path], d.digest, d.size, moved)
        return d.size, 0

    unique = {layer.descriptor.digest: layer for layer in layers}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        counts = list(pool.map(one, unique.values()))
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _attach(
    client: DistributionClient,
    ref: OciReference,
    subject: Descriptor,
    artifact_type: str,
    data: bytes,
) -> bool:
    """Attach ``data`` to ``subject``; True when the registry indexed it (referrers API)."""
    client.put_blob_bytes(ref.repository, b"{}")  # the empty config every referrer names
    blob = client.put_blob_bytes(ref.repository, data)
    blob = Descriptor(artifact_type, blob.digest, blob.size)
    body = referrer_manifest(artifact_type, blob, subject, {})
    from modelseal.oci.distribution import sha256_digest

    digest = sha256_digest(body)
    _, indexed = client.put_manifest(ref.repository, digest, body, OCI_MANIFEST)
    if not indexed:
        client.add_referrer(
            ref.repository,
            subject.digest,
            Descriptor(OCI_MANIFEST, digest, len(body), artifact_type=artifact_type),
        )
    return indexed


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


# -- pull and verify ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Artifact:
    ref: OciReference
    digest: str
    layers: tuple[Layer, ...]
    signatures: tuple[Descriptor, ...]


def pull_oci(
    reference: str | OciReference,
    dest: str | os.PathLike[str],
    *,
    keys: Sequence[str | os.PathLike[str]] = (),
    allow_unsigned: bool = False,
    plain_http: bool = False,
    workers: int = 4,
    progress: TransferProgress | None = None,
) -> OciPullResult:
    """Download a ModelPack artifact, verify and scan it, then create ``dest`` atomically."""
    started = time.perf_counter()
    destination = Path(dest)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise UsageError(f"{destination} exists", advice="pull into a new directory")
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.pull-", dir=destination.parent))
    try:
        result = _fetch_checked(
            reference, work, keys, allow_unsigned, plain_http, workers, progress, scan=True
        )
        with contextlib.suppress(OSError):
            destination.rmdir()
        os.rename(work / "model", destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return OciPullResult(
        result.reference,
        result.digest,
        destination,
        result.files,
        result.bytes_downloaded,
        result.checks,
        time.perf_counter() - started,
    )


def verify_oci(
    reference: str | OciReference,
    *,
    keys: Sequence[str | os.PathLike[str]] = (),
    plain_http: bool = False,
    workers: int = 4,
    progress: TransferProgress | None = None,
) -> OciPullResult:
    """Check a remote artifact as a pull would, writing nothing that stays."""
    with tempfile.TemporaryDirectory(prefix="modelseal-oci-verify-") as tmp:
        return _fetch_checked(
            reference, Path(tmp), keys, False, plain_http, workers, progress, scan=True
        )


@contextlib.contextmanager
def fetch_oci(
    reference: str | OciReference, *, plain_http: bool = False, workers: int = 4
) -> Iterator[Path]:
    """A temporary local copy of the artifact's files (layer digests checked, nothing else),
    for ``scan oci://`` and ``sbom oci://``; removed on exit."""
    with tempfile.TemporaryDirectory(prefix="modelseal-oci-fetch-") as tmp:
        ref = parse_oci_reference(reference) if isinstance(reference, str) else reference
        with connect(ref, plain_http=plain_http) as client:
            artifact = _resolve(client, ref)
            model = Path(tmp) / _model_dir_name(ref)
            _download(client, artifact, model, workers, None)
        yield model


def _model_dir_name(ref: OciReference) -> str:
    return ref.repository.rsplit("/", 1)[-1]


def _fetch_checked(
    reference: str | OciReference,
    work: Path,
    keys: Sequence[str | os.PathLike[str]],
    allow_unsigned: bool,
    plain_http: bool,
    workers: int,
    progress: TransferProgress | None,
    *,
    scan: bool,
) -> OciPullResult:
    started = time.perf_counter()
    ref = parse_oci_reference(reference) if isinstance(reference, str) else reference
    if not keys and not allow_unsigned:
        raise UsageError(
            "pulling from an OCI registry needs --key PUB.pem (the signer's public key)",
            advice="the registry itself is not trusted: only a signature by your key is",
        )
    checks: list[str] = []
    model = work / "model"
    with connect(ref, plain_http=plain_http) as client:
        artifact = _resolve(client, ref)
        checks.append(f"manifest {artifact.digest} is a ModelPack artifact")
        downloaded = _download(client, artifact, model, workers, progress)
        checks.append(f"{len(artifact.layers)} layer digests match while streaming")
        if keys:
            checks.append(_check_signatures(client, artifact, model, work, keys))
        else:
            checks.append("unsigned (allowed by --allow-unsigned)")
    if scan:
        checks.append(_check_scan(model))
    return OciPullResult(
        str(ref.with_digest(artifact.digest)),
        artifact.digest,
        None,
        len(artifact.layers),
        downloaded,
        tuple(checks),
        time.perf_counter() - started,
    )


def _resolve(client: DistributionClient, ref: OciReference) -> _Artifact:
    body, media_type, digest = client.get_manifest(ref.repository, ref.reference)
    manifest = parse_json_object(body, f"manifest of {ref}")
    if media_type and media_type != OCI_MANIFEST and manifest.get("mediaType") != OCI_MANIFEST:
        raise OciError(f"{ref} is a {media_type}, not an OCI image manifest")
    config = Descriptor.from_json(manifest.get("config"), "config descriptor")
    if manifest.get("artifactType") != ARTIFACT_TYPE and config.media_type != CONFIG_TYPE:
        raise OciError(
            f"{ref} is not a ModelPack model artifact "
            f"(artifactType {manifest.get('artifactType')!r}, config {config.media_type!r})"
        )
    raw_layers = manifest.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise OciError(f"{ref}: the manifest lists no layers")
    layers: list[Layer] = []
    seen: set[str] = set()
    for raw in raw_layers:
        d = Descriptor.from_json(raw, "layer descriptor")
        annotations = d.annotations or {}
        path = annotations.get("org.cncf.model.filepath") or annotations.get(
            "org.opencontainers.image.title"
        )
        if d.media_type not in RAW_TYPES:
            raise OciError(
                f"{ref}: layer {d.digest} has media type {d.media_type!r}; only the ModelPack "
                ".raw types (one file per layer) can be verified file by file"
            )
        if not path:
            raise OciError(f"{ref}: layer {d.digest} names no file path")
        check_layer_path(path)
        folded = path.casefold()
        if folded in seen or any(folded.startswith(p + "/") for p in seen):
            raise OciError(f"{ref}: file path {path!r} appears twice (or as file and directory)")
        seen.add(folded)
        layers.append(Layer(path, d))
    signatures = tuple(
        d for d in client.referrers(ref.repository, digest) if d.artifact_type == BUNDLE_TYPE
    )
    return _Artifact(ref, digest, tuple(layers), signatures)


def _download(
    client: DistributionClient,
    artifact: _Artifact,
    model: Path,
    workers: int,
    progress: TransferProgress | None,
) -> int:
    total = sum(layer.descriptor.size for layer in artifact.layers)
    done = 0
    lock = threading.Lock()

    def moved(count: int) -> None:
        nonlocal done
        with lock:
            done += count
            if progress:
                progress(done, total)

    def one(layer: Layer) -> int:
        target = model / layer.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as handle:

            def sink(piece: bytes) -> None:
                handle.write(piece)

            client.read_blob(artifact.ref.repository, layer.descriptor, sink, moved)
        return layer.descriptor.size

    model.mkdir(parents=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return sum(pool.map(one, artifact.layers))


def _check_signatures(
    client: DistributionClient,
    artifact: _Artifact,
    model: Path,
    work: Path,
    keys: Sequence[str | os.PathLike[str]],
) -> str:
    from modelseal.integrity import verify

    if not artifact.signatures:
        raise VerificationError(
            f"{artifact.ref}: no model-signing bundle is attached to manifest {artifact.digest}",
            advice="push with --key, or attach the signature as an OCI referrer",
        )
    reasons: list[str] = []
    for index, descriptor in enumerate(artifact.signatures):
        body, _, _ = client.get_manifest(artifact.ref.repository, descriptor.digest)
        doc = parse_json_object(body, "signature manifest")
        subject = Descriptor.from_json(doc.get("subject"), "signature subject")
        if subject.digest != artifact.digest:
            reasons.append(f"signature {descriptor.digest[:19]} is attached to another manifest")
            continue
        blobs = [Descriptor.from_json(b, "signature layer") for b in doc.get("layers") or []]
        bundles = [b for b in blobs if b.media_type == BUNDLE_TYPE]
        if len(bundles) != 1:
            reasons.append(f"signature {descriptor.digest[:19]} holds no single bundle")
            continue
        data = client.read_small_blob(artifact.ref.repository, bundles[0], _MAX_SIDECAR)
        bundle_path = work / f"signature-{index}.sig"
        bundle_path.write_bytes(data)
        for key in keys:
            if _signed_digests_are_the_layers(bundle_path, key, artifact.layers):
                return (
                    f"signature {descriptor.digest[:19]} verifies with {Path(key).name} "
                    f"over all {len(artifact.layers)} files (their digests checked while streaming)"
                )
            result = verify(model, key=key, signature=bundle_path)
            if result.ok:
                return (
                    f"signature {descriptor.digest[:19]} verifies with {Path(key).name} "
                    f"over all {result.files_checked} files"
                )
            reasons.extend(f"with {Path(key).name}: {r}" for r in result.reasons)
    raise VerificationError(
        f"{artifact.ref}: no attached signature verifies with the given key(s)"
        + "".join(f"\n  - {r}" for r in dict.fromkeys(reasons)),
        advice="the artifact or its signature was changed, or it was signed by another key",
    )


def _signed_digests_are_the_layers(
    bundle_path: Path, key: str | os.PathLike[str], layers: Sequence[Layer]
) -> bool:
    """True when the bundle verifies with ``key`` and signs exactly the layers' files by
    their SHA-256 — the digests already checked while streaming, so nothing is re-read.

    Anything else (another key, serialization or hash, a file more or less) is left
    to the full :func:`modelseal.integrity.verify`, which re-hashes and explains.
    """
    from modelseal.integrity.operations import make_verifier, read_bundle, read_signed_manifest

    try:
        manifest = read_signed_manifest(read_bundle(bundle_path), make_verifier(key))
    except VerificationError:
        return False
    params = manifest.serialization
    if params.method != "files" or params.hash_type != "sha256":
        return False
    signed: dict[str, str] = {}
    for name, pieces in manifest.file_digests().items():
        if len(pieces) != 1 or pieces[0][:2] != (None, None):
            return False
        signed[name] = "sha256:" + pieces[0][2]
    streamed = {layer.path: layer.descriptor.digest for layer in layers}
    return signed == streamed


def _check_scan(model: Path) -> str:
    from modelseal.scan import scan

    report = scan([model])
    bad = [
        f"{r.path.removeprefix(str(model) + '/')}: {r.verdict.value}"
        + (f" ({', '.join(sorted({f.rule for f in r.findings}))})" if r.findings else "")
        + (f" ({r.error})" if r.error else "")
        for r in report.results
        if r.verdict.value != "clean"
    ]
    if bad:
        raise VerificationError(
            "the scan of the pulled files is not clean: " + "; ".join(bad[:10]),
            advice="do not load this model",
        )
    return f"scan clean ({len(report.results)} files)"
