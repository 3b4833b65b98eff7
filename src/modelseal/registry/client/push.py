"""Push: sign (optionally), declare the files, upload what the registry lacks in
resumable parallel chunks, commit, and check the new version's publish entry."""

from __future__ import annotations

import base64
import os
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modelseal.errors import RegistryError, UsageError
from modelseal.registry.client.http import Counter, Progress
from modelseal.registry.client.trust import RegistryTrust
from modelseal.registry.errors import ConflictError, QuarantinedError
from modelseal.registry.manifest import walk_model
from modelseal.registry.names import ModelRef, check_file_path, parse_ref
from modelseal.registry.schemas import ChunkDoc, UploadBlobDoc, UploadDoc, VersionDoc, parse

__all__ = ["PushResult", "RegistryPush"]

_RETRIES = 5


@dataclass(frozen=True)
class PushResult:
    """What a push did."""

    version: VersionDoc
    bytes_uploaded: int
    bytes_skipped: int
    seconds: float
    #: What the transparency-log check found (the publish entry and the tree head).
    logged: str = ""
    #: Things the caller should know (e.g. a log key trusted on first use).
    warnings: tuple[str, ...] = ()


class RegistryPush(RegistryTrust):
    """The push side of the client."""

    def push(
        self,
        model_dir: str | os.PathLike[str],
        ref: ModelRef | str,
        *,
        key: str | os.PathLike[str] | None = None,
        signature: str | os.PathLike[str] | None = None,
        parent: str | None = None,
        tags: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> PushResult:
        """Upload ``model_dir`` as ``NS/MODEL:VERSION``; sign it first when ``key`` is given.

        Blobs the registry has already are skipped; interrupted uploads resume where
        the server stopped. Raises :class:`QuarantinedError` (with the gate's reasons)
        when the version was stored but not published.
        """
        started = time.perf_counter()
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        if not ref.reference or ref.digest:
            raise UsageError(f"push needs NS/MODEL:VERSION, not {ref}")
        root = Path(model_dir)
        signature_bytes = _signature_for(root, key, signature)
        files = None
        if signature_bytes and key is not None and signature is None:
            # Signed just now: the bundle's digests are fresh, so do not hash twice.
            from modelseal.registry.signatures import signed_file_list

            files = signed_file_list(signature_bytes, root)
        if files is None:
            files = walk_model(root, workers=self.workers)
        else:
            for entry in files:
                check_file_path(entry.path)
        body = {
            "version": ref.reference,
            "files": [f.to_dict() for f in files],
            "parent": parent,
            "tags": list(tags),
        }
        base = f"/namespaces/{ref.namespace}/models/{ref.model}"
        status = parse(UploadDoc, self._request("POST", f"{base}/uploads", json=body), "upload")
        paths = {f.digest: root / f.path for f in reversed(files)}
        total = sum(b.size for b in status.blobs)
        skipped = sum(b.offset for b in status.blobs)
        done = Counter(total, skipped, progress)
        pending = [b for b in status.blobs if not b.complete]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [
                pool.submit(self._upload_blob, status.id, b, paths[b.digest], done) for b in pending
            ]
            for future in futures:
                future.result()
        commit = {
            "signature": base64.b64encode(signature_bytes).decode("ascii")
            if signature_bytes
            else None
        }
        version = parse(
            VersionDoc,
            self._request("POST", f"/uploads/{status.id}/commit", json=commit),
            "the commit",
        )
        if version.state != "published":
            raise QuarantinedError(
                f"{ref} was stored but QUARANTINED:\n  - " + "\n  - ".join(version.reasons),
                advice="fix the reasons above and push a new version",
            )
        logged = self.verify_logged(version)
        warning = self.log_key_warning
        return PushResult(
            version,
            done.value - skipped,
            skipped,
            time.perf_counter() - started,
            logged,
            (warning,) if warning else (),
        )

    def _upload_blob(self, upload_id: str, blob: UploadBlobDoc, path: Path, done: Counter) -> None:
        """Send one blob in chunks from the server's offset; on a cut connection or an
        offset conflict, ask the server where it stands and go on from there."""
        import httpx

        digest, size, offset = blob.digest, blob.size, blob.offset
        attempts = 0
        while True:
            try:
                while True:
                    length = min(self.chunk_size, size - offset)
                    answer = parse(
                        ChunkDoc,
                        self._patch_chunk(upload_id, digest, offset, path, length),
                        "an upload chunk",
                    )
                    done.add(answer.offset - offset)
                    offset = answer.offset
                    if answer.complete or offset >= size:
                        return
            except (OSError, httpx.TransportError, ConflictError) as exc:
                attempts += 1
                if attempts > _RETRIES:
                    raise RegistryError(
                        f"upload of {path.name} failed after {_RETRIES} retries: {exc}",
                        advice="run the same push again: it resumes where it stopped",
                    ) from exc
                time.sleep(min(2.0, 0.2 * attempts))
                status = parse(UploadDoc, self._request("GET", f"/uploads/{upload_id}"), "upload")
                current = next((b for b in status.blobs if b.digest == digest), None)
                if current is None:
                    raise RegistryError(f"the upload no longer lists blob {digest[:16]}") from exc
                done.add(current.offset - offset)
                offset = current.offset
                if current.complete:
                    return


def _signature_for(
    root: Path, key: str | os.PathLike[str] | None, signature: str | os.PathLike[str] | None
) -> bytes | None:
    if signature is not None:
        try:
            return Path(signature).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read signature {signature}: {exc.strerror}") from exc
    if key is None:
        return None
    from modelseal import integrity

    with tempfile.TemporaryDirectory(prefix="modelseal-sign-") as tmp:
        output = Path(tmp) / "model.sig"
        integrity.sign(root, key=key, output=output)
        return output.read_bytes()
