"""Verified pull: resolve by the log, download, check every digest, the signature and the
scan, then create the destination atomically.

How a reference is read is decided by the client, not by the server's ``resolved_by``:
``@sha256:DIGEST`` is a digest; a name is a version when the transparency log holds a
publish entry for it (the registry's own rule: versions first), else a tag, whose target
and serial come from its newest verified ``tag-move`` entry. An answer that disagrees
with that in any way — a missing field, another ``resolved_by``, another version,
digest or serial than the log records — is refused before a byte is downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal.errors import IntegrityError, ModelsealError, UsageError, VerificationError
from modelseal.registry.client.http import Counter, Progress
from modelseal.registry.client.state import Seen
from modelseal.registry.client.trust import RegistryTrust
from modelseal.registry.errors import QuarantinedError, RollbackError
from modelseal.registry.manifest import FileEntry, check_file_list, version_digest
from modelseal.registry.names import ModelRef, check_file_path, parse_ref
from modelseal.registry.schemas import (
    ModelDoc,
    Page,
    ResolvedVersionDoc,
    TrustedKeyDoc,
    VersionDoc,
)

if TYPE_CHECKING:
    from modelseal.transparency.client import VerifiedEntry

__all__ = ["PullResult", "RegistryPull"]

#: Body pieces (as received, 64 KiB each with httpcore) buffered between receiver and writer.
_QUEUED = 256
_SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class PullResult:
    """What a pull verified and wrote."""

    version: VersionDoc
    destination: Path
    bytes_downloaded: int
    signed_by: str | None
    seconds: float
    checks: tuple[str, ...] = field(default_factory=tuple)
    #: Things the caller should know that did not stop the pull (e.g. a log key trusted
    #: on first use).
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Resolved:
    """A version document checked against the log, and what to remember about it."""

    doc: VersionDoc
    kind: str
    checks: list[str]
    #: The state key and record to write after a successful pull (tags, bare names).
    remember: tuple[str, Seen] | None


class RegistryPull(RegistryTrust):
    """The pull side of the client."""

    def resolve(self, ref: ModelRef | str) -> ResolvedVersionDoc:
        """The registry's version document for a reference, parsed strictly (not yet
        checked against the log: :meth:`pull` does that)."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        target = f"sha256:{ref.digest}" if ref.digest else (ref.reference or "latest")
        return self._get(
            ResolvedVersionDoc,
            f"/namespaces/{ref.namespace}/models/{ref.model}/resolve/{target}",
            f"resolving {ref}",
            error=VerificationError,
        )

    def model_info(self, namespace: str, model: str) -> ModelDoc:
        """A model: its tags and newest published version."""
        return self._get(ModelDoc, f"/namespaces/{namespace}/models/{model}", "the model")

    def trusted_keys(self, namespace: str) -> list[TrustedKeyDoc]:
        """The keys the namespace trusts, as published by the registry (each is checked
        against its ``key-trust`` log entry before a pull relies on it)."""
        path = f"/namespaces/{namespace}/keys"
        return list(self._get(Page[TrustedKeyDoc], path, "the trusted keys").items)

    def pull(
        self,
        ref: ModelRef | str,
        dest: str | os.PathLike[str],
        *,
        keys: Sequence[str | os.PathLike[str]] = (),
        allow_rollback: bool = False,
        allow_unsigned: bool = False,
        progress: Progress | None = None,
    ) -> PullResult:
        """Download, verify, then atomically create ``dest``.

        ``NS/MODEL`` alone means the newest published version (the check messages say
        which). ``keys`` pins public keys: the signature must verify with one of them
        (instead of any key the namespace trusts and its log records).
        """
        started = time.perf_counter()
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        destination = Path(dest)
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise UsageError(f"{destination} exists", advice="pull into a new directory")
        resolved = self._resolve_checked(ref, allow_rollback)
        doc, checks = resolved.doc, resolved.checks
        files = [FileEntry(f.path, f.digest, f.size) for f in doc.files]
        destination.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.pull-", dir=destination.parent))
        try:
            model_dir = work / "model"
            model_dir.mkdir()
            downloaded = self._download_all(ref.namespace, files, model_dir, progress)
            checks.append(f"{len(files)} file digests and the version digest match")
            signed_by, message = self._check_signature(
                doc, files, model_dir, work, keys, allow_unsigned
            )
            checks.append(message)
            checks.append(self._check_scan(doc, model_dir))
            os.replace(model_dir, destination) if not destination.exists() else _replace_empty(
                model_dir, destination
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if resolved.remember is not None:
            self.state.record(self.url, *resolved.remember)
        self.state.record_pull(destination, self.url, doc.subject, doc.digest)
        warning = self.log_key_warning
        return PullResult(
            doc,
            destination,
            downloaded,
            signed_by,
            time.perf_counter() - started,
            tuple(checks),
            (warning,) if warning else (),
        )

    # -- resolving --------------------------------------------------------------------------

    def _resolve_checked(self, ref: ModelRef, allow_rollback: bool) -> _Resolved:
        """The version ``ref`` names, every fact taken from verified log entries."""
        checks: list[str] = []
        # every entry below is proven under a fresh head extending this one; an entry at
        # or past its size was logged after this pull began
        began = self.log_tree_head().tree_size
        bare = ref.reference is None and ref.digest is None
        if bare:
            newest = self.model_info(ref.namespace, ref.model).latest_version
            if newest is None:
                raise QuarantinedError(f"{ref} has no published version")
            ref = ModelRef(ref.namespace, ref.model, newest)
            checks.append(f"no version given: chose {newest}, the newest published version")
        doc, kind, tag = self._resolve_once(ref)
        if tag is not None and _moved_since(doc, tag, began):
            # The tag moved while the registry resolved it: its verified newest move names
            # another version than the document, and is newer (logged after this pull
            # began, or with a higher serial). Resolve once more, the version that move
            # names (not the tag again, which may have moved on meanwhile): the registry
            # must serve exactly that version, or the pull is refused.
            doc = self._resolve_logged_target(ref, tag)
            checks.append(
                f"tag {ref.reference} moved while resolving: resolved again as version "
                f"{doc.version}, the target of its newer tag-move entry {tag.index}"
            )
        publish = self.logged_publish(doc)
        checks.append(
            f"publish entry {publish.index} is in the transparency log (tree size "
            f"{publish.tree_head.tree_size}, consistent with the last tree head seen)"
        )
        remember = None
        if tag is not None:
            seen = self._check_tag(ref, doc, tag, publish, allow_rollback, checks)
            remember = (f"{ref.namespace}/{ref.model}:{ref.reference}", seen)
        elif bare:
            serial = _logged_serial(publish, None, doc)
            seen = Seen(serial, doc.version, doc.digest, publish.index)
            key = f"{ref.namespace}/{ref.model}"
            # Publish entries only grow with serials: the serial alone decides, and
            # --allow-rollback can accept a newest version that was withdrawn.
            self._check_not_older(key, seen, allow_rollback, checks, f"model {key}", replay=False)
            remember = (key, seen)
        return _Resolved(doc, kind, checks, remember)

    def _resolve_once(self, ref: ModelRef) -> tuple[VersionDoc, str, VerifiedEntry | None]:
        """The registry's document for ``ref``, checked against how the log classifies the
        reference; with the tag's newest verified tag-move entry when it is a tag."""
        doc = self.resolve(ref)
        self._check_document(ref, doc)
        kind, tag = self._classify(ref)
        if doc.resolved_by != kind:
            raise VerificationError(
                f"{ref}: the registry says it resolved the reference as a {doc.resolved_by}, "
                f"but the transparency log makes it a {kind}",
                advice="the registry (or something in between) is lying about the reference",
            )
        if kind == "version" and doc.version != ref.reference:
            raise VerificationError(f"{ref}: the registry returned version {doc.version}")
        if kind == "digest" and doc.digest != ref.digest:
            raise VerificationError(f"{ref}: the registry returned digest {doc.digest}")
        return doc, kind, tag

    def _resolve_logged_target(self, ref: ModelRef, tag: VerifiedEntry) -> VersionDoc:
        """The document of the version the verified tag-move entry ``tag`` names."""
        fields = tag.entry.fields
        version = fields.get("version")
        if not isinstance(version, str):
            raise VerificationError(f"tag-move entry {tag.index} of {ref} names no version")
        target = ModelRef(ref.namespace, ref.model, version)
        doc = self.resolve(target)
        self._check_document(target, doc)
        if (doc.resolved_by, doc.version, doc.digest) != ("version", version, fields.get("digest")):
            raise VerificationError(
                f"tag {ref} moved to version {version} (tag-move entry {tag.index} of the "
                f"transparency log) while resolving, but asked for that version the registry "
                f"served {doc.resolved_by} {doc.version}",
                advice="the registry (or something in between) serves another version than "
                "the tag names; do not use it",
            )
        return doc

    def _classify(self, ref: ModelRef) -> tuple[str, VerifiedEntry | None]:
        """``digest``, ``version`` or ``tag`` (with the tag's verified tag-move entry)."""
        if ref.digest:
            return "digest", None
        name = ref.reference
        if name is None:  # bare names are replaced by a version before
            raise UsageError(f"{ref}: give a version, a tag or a digest")
        if self.publish_entry(ref.namespace, ref.model, name) is not None:
            return "version", None
        return "tag", self.tag_entry(ref.namespace, ref.model, name)

    def _check_tag(
        self,
        ref: ModelRef,
        doc: VersionDoc,
        tag: VerifiedEntry,
        publish: VerifiedEntry,
        allow_rollback: bool,
        checks: list[str],
    ) -> Seen:
        """The tag's target must be the one its newest logged move names; its serial comes
        from the log, and must not be older than the one this client saw before."""
        fields = tag.entry.fields
        if (fields.get("version"), fields.get("digest")) != (doc.version, doc.digest):
            raise VerificationError(
                f"tag {ref} points to version {fields.get('version')} in the transparency log "
                f"(entry {tag.index}), but the registry served version {doc.version}",
                advice="the registry (or something in between) serves another version than "
                "the tag names; do not use it",
            )
        serial = _logged_serial(publish, tag, doc)
        seen = Seen(serial, doc.version, doc.digest, tag.index)
        checks.append(
            f"tag {ref.reference} → {doc.version} is tag-move entry {tag.index} of the log"
        )
        self._check_not_older(str(ref), seen, allow_rollback, checks, f"tag {ref}")
        return seen

    def _check_not_older(
        self,
        key: str,
        new: Seen,
        allow_rollback: bool,
        checks: list[str],
        what: str,
        *,
        replay: bool = True,
    ) -> None:
        """Refuse ``new`` when it is older than what this client saw for ``key``: always
        when it comes from an older log entry of the same tag (``replay``: a stale view),
        else unless ``allow_rollback`` (the tag was moved back, with a new entry)."""
        before = self.state.seen(self.url, key)
        if before is None:
            checks.append(f"{what}: first pull by this client (nothing to compare with)")
            return
        if (
            replay
            and before.log_index is not None
            and new.log_index is not None
            and new.log_index < before.log_index
        ):
            raise RollbackError(
                f"{what}: the registry shows log entry {new.log_index}, older than entry "
                f"{before.log_index} this client already saw for it (a replayed state)",
                advice="the registry (or something in between) hides the newer entry; "
                "do not trust it",
            )
        if before.serial > new.serial:
            if not allow_rollback:
                raise RollbackError(
                    f"{what} now points to version {new.version}, older than version "
                    f"{before.version} this client pulled for it before",
                    advice="this may be a rollback attack; pass --allow-rollback only "
                    "if it was moved back on purpose",
                )
            checks.append(f"{what}: rollback to an older version allowed explicitly")
        else:
            checks.append(f"{what} did not move to an older version")

    def _check_document(self, ref: ModelRef, doc: VersionDoc) -> None:
        if doc.namespace != ref.namespace or doc.model != ref.model:
            raise VerificationError(f"the registry answered for another model than {ref}")
        if doc.state != "published":
            raise QuarantinedError(
                f"{ref} is {doc.state}, not published"
                + ("".join(f"\n  - {r}" for r in doc.reasons)),
                advice="only published versions can be pulled",
            )
        files = [FileEntry(check_file_path(f.path), f.digest, f.size) for f in doc.files]
        check_file_list(files, max_files=1_000_000, max_file_bytes=1 << 62)
        if version_digest(files) != doc.digest:
            raise VerificationError(
                f"{ref}: the file list does not match the version digest the registry gave"
            )

    # -- downloading ------------------------------------------------------------------------

    def _download_all(
        self, namespace: str, files: list[FileEntry], model_dir: Path, progress: Progress | None
    ) -> int:
        by_digest: dict[str, list[FileEntry]] = {}
        for f in files:
            by_digest.setdefault(f.digest, []).append(f)
        total = sum(group[0].size for group in by_digest.values())
        done = Counter(total, 0, progress)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [
                pool.submit(self._download_blob, namespace, group[0], model_dir, done)
                for group in by_digest.values()
            ]
            for future in futures:
                future.result()
        for group in by_digest.values():
            first = model_dir / group[0].path
            for other in group[1:]:
                target = model_dir / other.path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(first, target)
        return total

    def _download_blob(
        self, namespace: str, entry: FileEntry, model_dir: Path, done: Counter
    ) -> None:
        """Stream one blob to its path, checking size and SHA-256."""
        import httpx

        from modelseal.errors import RegistryError

        target = model_dir / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        try:
            with self._stream_blob(namespace, entry.digest) as response:
                size = _save(response.iter_raw(), target, hasher, entry, done)
        except (OSError, httpx.HTTPError) as exc:
            raise RegistryError(f"download of {entry.path} failed: {exc}") from exc
        if size != entry.size or hasher.hexdigest() != entry.digest:
            raise IntegrityError(
                f"{entry.path}: the downloaded bytes do not match the published digest "
                f"(got {size} bytes, SHA-256 {hasher.hexdigest()[:16]}…)",
                advice="the registry's storage was tampered with or corrupted; tell its admin",
            )

    # -- signature and scan -----------------------------------------------------------------

    def _check_signature(
        self,
        doc: VersionDoc,
        files: list[FileEntry],
        model_dir: Path,
        work: Path,
        pinned: Sequence[str | os.PathLike[str]],
        allow_unsigned: bool,
    ) -> tuple[str | None, str]:
        """The key the signature verifies with (fingerprint, or the pinned key's path;
        ``None``: unsigned) and a check message."""
        if not doc.signature_digest:
            if allow_unsigned:
                return None, "unsigned (allowed by --allow-unsigned)"
            raise VerificationError(
                f"{doc.subject} has no signature",
                advice="pass --allow-unsigned to accept unsigned models from this namespace",
            )
        data = self._fetch_small(doc.namespace, doc.signature_digest)
        if hashlib.sha256(data).hexdigest() != doc.signature_digest:
            raise IntegrityError("the signature bundle does not match its digest")
        sig_path = work / "model.sig"
        sig_path.write_bytes(data)
        # (fingerprint or None for a pinned key, what to call it, its PEM text): keys are
        # verified in memory, never written out
        candidates: list[tuple[str | None, str, str]] = []
        if pinned:
            candidates = [(None, str(p), _read_key(p)) for p in pinned]
        else:
            candidates = [
                (key.fingerprint, f"trusted key {key.fingerprint[:16]}", key.public_key_pem)
                for key in self.trusted_keys(doc.namespace)
                if key.kind == "key" and key.public_key_pem
            ]
        if not candidates:
            raise VerificationError(f"namespace {doc.namespace!r} trusts no signing key")
        reasons: list[str] = []
        for fingerprint, label, pem in candidates:
            problems = _verify_with(data, pem, label, files, model_dir, sig_path)
            if problems:
                reasons.extend(problems)
                continue
            if fingerprint is None:
                return label, f"signature verifies with pinned key {label}"
            entry = self._check_key_logged(doc.namespace, fingerprint, pem)
            return fingerprint, (
                f"signature verifies with trusted key {fingerprint[:16]} "
                f"(key-trust entry {entry.index} of the log)"
            )
        raise VerificationError(
            f"{doc.subject}: the signature does not verify with any trusted key: "
            + "; ".join(dict.fromkeys(reasons))[:500],
            advice="the model or its signature was replaced; do not use it",
        )

    def _check_key_logged(self, namespace: str, fingerprint: str, pem: str) -> VerifiedEntry:
        """The key the signature verified with must be the key its log entry names."""
        from modelseal.registry.identity import key_fingerprint

        if key_fingerprint(pem) != fingerprint:
            raise VerificationError(
                f"the registry lists key {fingerprint[:16]} of {namespace} with another "
                "public key than its fingerprint",
                advice="the registry (or something in between) substituted a key",
            )
        return self.key_trust_entry(namespace, fingerprint)

    def _fetch_small(self, namespace: str, digest: str) -> bytes:
        with self._stream_blob(namespace, digest) as response:
            return response.read()

    def _check_scan(self, doc: VersionDoc, model_dir: Path) -> str:
        from modelseal.scan import scan

        threshold = doc.scan_threshold
        limit = _SEVERITIES.index(threshold) if threshold in _SEVERITIES else 1
        if doc.scan_verdict in ("malicious", "error"):
            raise VerificationError(f"the registry's scan verdict is {doc.scan_verdict}")
        report = scan([model_dir])
        bad = [
            f"{r.path.removeprefix(str(model_dir) + '/')}: {f.severity.value} {f.rule}"
            for r in report.results
            for f in r.findings
            if f.severity.rank > limit
        ] + [f"{r.path}: {r.error}" for r in report.results if r.error]
        if bad:
            raise VerificationError(
                "the local re-scan finds problems the registry did not report: "
                + "; ".join(bad[:5]),
                advice="do not load this model; tell the registry admin",
            )
        return f"scan verdict {doc.scan_verdict}; local re-scan clean at threshold {threshold}"


def _moved_since(doc: VersionDoc, tag: VerifiedEntry, began: int) -> bool:
    """Whether the tag's logged move names another target than ``doc`` and is newer than
    the document: logged at or after tree size ``began`` (the head accepted before
    resolving), or naming a higher serial. Serials are not in log order (concurrent
    commits take version ids before the log lock), so the log index decides too; a move
    logged before the pull began whose serial is not higher is no race, and refused."""
    fields = tag.entry.fields
    if (fields.get("version"), fields.get("digest")) == (doc.version, doc.digest):
        return False
    serial = fields.get("serial")
    higher = isinstance(serial, int) and not isinstance(serial, bool) and serial > doc.serial
    return higher or tag.index >= began


def _logged_serial(publish: VerifiedEntry, tag: VerifiedEntry | None, doc: VersionDoc) -> int:
    """The version's serial as the log records it (tag-move entry, else publish entry);
    a document whose serial disagrees is refused, and no serial means no record."""
    candidates = [e.entry.fields.get("serial") for e in (tag, publish) if e is not None]
    serial = next((s for s in candidates if isinstance(s, int) and not isinstance(s, bool)), None)
    if serial is None:
        raise VerificationError(
            f"{doc.subject}: the transparency log records no serial for this version",
            advice="a client cannot check this version against rollbacks; ask the registry "
            "admin to re-publish it",
        )
    if doc.serial != serial:
        raise VerificationError(
            f"{doc.subject}: the registry's document gives serial {doc.serial}, but the "
            f"transparency log records {serial}",
            advice="the registry (or something in between) forged the serial; do not use it",
        )
    return serial


def _read_key(path: str | os.PathLike[str]) -> str:
    """The PEM text of a key the caller pinned."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read key {path}: {exc}") from exc


def _verify_with(
    bundle: bytes, pem: str, label: str, files: list[FileEntry], model_dir: Path, sig_path: Path
) -> list[str]:
    """Why the bundle does not sign these files with the PEM key ``pem`` (``[]``: it does)."""
    from modelseal import integrity
    from modelseal.integrity.signing.keys import public_key_from_pem
    from modelseal.registry.signatures import check_signature_digests

    # Every file's SHA-256 was checked while downloading: compare those with the signed
    # manifest instead of hashing the bytes a second time.
    quick = check_signature_digests(bundle, pem, files)
    if quick is not None:
        return quick[:5]
    try:
        key = public_key_from_pem(pem, label)
        result = integrity.verify(model_dir, key=key, signature=sig_path)
    except ModelsealError as exc:
        return [exc.message]
    return [] if result.ok else list(result.reasons)


def _save(chunks: Any, target: Path, hasher: Any, entry: FileEntry, done: Counter) -> int:
    """Write the body to ``target``: this thread receives, a second one hashes and writes
    (both release the GIL). Stops reading past the expected size."""
    pipe: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED)
    failure: list[BaseException] = []

    def sink() -> None:
        try:
            with open(target, "wb") as handle:
                while (block := pipe.get()) is not None:
                    hasher.update(block)
                    handle.write(block)
                    done.add(len(block))
        except BaseException as exc:  # reported after the stream ends
            failure.append(exc)
            while pipe.get() is not None:
                pass

    writer = threading.Thread(target=sink, daemon=True)
    writer.start()
    size = 0
    try:
        for block in chunks:
            if failure:
                break
            size += len(block)
            if size > entry.size:
                break
            pipe.put(block)
    finally:
        pipe.put(None)
        writer.join()
    if failure:
        raise failure[0]
    return size


def _replace_empty(source: Path, destination: Path) -> None:
    """Rename ``source`` over the empty directory ``destination`` (atomic on POSIX)."""
    with contextlib.suppress(OSError):
        destination.rmdir()
    os.rename(source, destination)
