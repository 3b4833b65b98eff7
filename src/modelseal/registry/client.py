"""The registry client: login state, push with resumable parallel uploads, verified pull.

>>> client = RegistryClient.from_login()                      # doctest: +SKIP
>>> client.push("my-model", "acme/bert:1.0", key="release.priv.pem")   # doctest: +SKIP
>>> client.pull("acme/bert:latest", "models/bert")            # doctest: +SKIP

A pull downloads into a temporary directory next to ``DEST``, checks every file's
SHA-256, the version digest, the signature against the namespace's trusted keys
(and any keys the caller pins), the server's scan verdict and a local re-scan, and
only then renames the directory to ``DEST``. Pulling by tag refuses a version older
than the newest this client has seen for that tag (TUF-style rollback protection);
what was seen is kept in ``$MODELSEAL_HOME/registry-state.json``.

Every pull (and push) also checks the registry's transparency log: the newest signed
tree head must verify with the log key (pinned on first contact) and extend the last
tree head this client accepted (a consistency proof; a rewritten or forked history
raises :class:`~modelseal.transparency.errors.SplitViewError`), and the version's
publish entry must be in it (an inclusion proof) with the same name and digest.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelseal._io import atomic_write
from modelseal.errors import (
    IntegrityError,
    ModelsealError,
    RegistryError,
    UsageError,
    VerificationError,
)
from modelseal.registry.errors import (
    ConflictError,
    QuarantinedError,
    RollbackError,
    error_from_payload,
)
from modelseal.registry.manifest import FileEntry, check_file_list, version_digest, walk_model
from modelseal.registry.names import ModelRef, check_file_path, parse_ref

if TYPE_CHECKING:
    from modelseal.transparency.audit import AuditReport
    from modelseal.transparency.client import LogMonitor, TreeHeadState
    from modelseal.transparency.sth import SignedTreeHead

__all__ = [
    "ClientState",
    "Progress",
    "PullResult",
    "PushResult",
    "RegistryClient",
    "modelseal_home",
]

#: Called with (bytes done, bytes in total).
Progress = Callable[[int, int], None]

_CHUNK = 64 * 1024 * 1024
_READ = 4 * 1024 * 1024
_RETRIES = 5
_SEND_BLOCK = 1024 * 1024
_SEVERITIES = ("info", "low", "medium", "high", "critical")
#: Key of the pinned transparency-log public key under a registry URL in the state file.
_LOG_KEY = "transparency-log-key"
#: Section of the state file recording pulled destinations.
_PULLS = "pulled-into"
_LOG_PAGE = 1000


def modelseal_home() -> Path:
    """``$MODELSEAL_HOME``, default ``~/.modelseal``."""
    return Path(os.environ.get("MODELSEAL_HOME") or Path.home() / ".modelseal")


class ClientState:
    """Login credentials (``credentials.json``, mode 0600) and seen tags
    (``registry-state.json``) under ``$MODELSEAL_HOME``."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home) if home is not None else modelseal_home()
        self._lock = threading.Lock()

    @property
    def credentials_path(self) -> Path:
        """Where tokens are kept."""
        return self.home / "credentials.json"

    @property
    def state_path(self) -> Path:
        """Where the newest version seen per tag is kept."""
        return self.home / "registry-state.json"

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"{path}: unreadable client state ({exc})", advice="fix or delete the file"
            ) from exc
        return data if isinstance(data, dict) else {}

    def save_login(self, url: str, token: str, user: str) -> None:
        """Remember ``token`` for ``url`` and make it the default registry."""
        with self._lock:
            data = self._read(self.credentials_path)
            data.setdefault("registries", {})[url] = {"token": token, "user": user}
            data["default"] = url
            self.home.mkdir(parents=True, exist_ok=True)
            atomic_write(self.credentials_path, json.dumps(data, indent=2), mode=0o600)

    def login_for(self, url: str | None) -> tuple[str, str | None]:
        """The registry URL (given or default) and its stored token, if any."""
        data = self._read(self.credentials_path)
        url = url or data.get("default")
        if not url:
            raise UsageError(
                "no registry given and none logged in",
                advice="run `modelseal login URL --token TOKEN` or pass --registry URL",
            )
        url = url.rstrip("/")
        entry = data.get("registries", {}).get(url, {})
        return url, entry.get("token") if isinstance(entry, dict) else None

    @property
    def tree_heads(self) -> TreeHeadState:
        """The last transparency-log tree head accepted per registry (same file and lock)."""
        from modelseal.transparency.client import TreeHeadState

        return TreeHeadState(self.state_path, lock=self._lock)

    def log_key_pem(self, url: str) -> str | None:
        """The transparency-log public key pinned for ``url`` (PEM), if any."""
        section = self._read(self.state_path).get(url, {})
        pem = section.get(_LOG_KEY) if isinstance(section, dict) else None
        return pem if isinstance(pem, str) else None

    def pin_log_key(self, url: str, pem: str) -> None:
        """Remember ``url``'s transparency-log public key (trust on first use)."""
        with self._lock:
            data = self._read(self.state_path)
            data.setdefault(url, {})[_LOG_KEY] = pem
            self.home.mkdir(parents=True, exist_ok=True)
            atomic_write(self.state_path, json.dumps(data, indent=2, sort_keys=True), mode=0o600)

    def record_pull(self, destination: Path, url: str, doc: dict[str, Any]) -> None:
        """Remember where the model at ``destination`` was pulled from (read by the deploy
        gate's ``registry.required_origin``)."""
        with self._lock:
            data = self._read(self.state_path)
            data.setdefault(_PULLS, {})[str(destination.resolve())] = {
                "registry": url,
                "model": f"{doc['namespace']}/{doc['model']}:{doc['version']}",
                "digest": doc["digest"],
            }
            self.home.mkdir(parents=True, exist_ok=True)
            atomic_write(self.state_path, json.dumps(data, indent=2, sort_keys=True), mode=0o600)

    def pulled(self, destination: Path) -> dict[str, str] | None:
        """What was pulled into ``destination``: registry URL, model reference, version digest."""
        entry = self._read(self.state_path).get(_PULLS, {}).get(str(destination.resolve()))
        return entry if isinstance(entry, dict) else None

    def seen(self, url: str, key: str) -> dict[str, Any] | None:
        """The newest version recorded for ``key`` (``ns/model:tag``) at ``url``."""
        entry = self._read(self.state_path).get(url, {}).get(key)
        return entry if isinstance(entry, dict) else None

    def record(self, url: str, key: str, doc: dict[str, Any]) -> None:
        """Record that ``key`` resolved to ``doc`` (never moves backwards)."""
        with self._lock:
            data = self._read(self.state_path)
            current = data.setdefault(url, {}).get(key)
            if isinstance(current, dict) and int(current.get("serial", 0)) > doc["serial"]:
                return
            data[url][key] = {
                "serial": doc["serial"],
                "version": doc["version"],
                "digest": doc["digest"],
            }
            self.home.mkdir(parents=True, exist_ok=True)
            atomic_write(self.state_path, json.dumps(data, indent=2, sort_keys=True), mode=0o600)


@dataclass(frozen=True)
class PushResult:
    """What a push did."""

    version: dict[str, Any]
    bytes_uploaded: int
    bytes_skipped: int
    seconds: float
    #: What the transparency-log check found (the publish entry and the tree head).
    logged: str = ""


@dataclass(frozen=True)
class PullResult:
    """What a pull verified and wrote."""

    version: dict[str, Any]
    destination: Path
    bytes_downloaded: int
    signed_by: str | None
    seconds: float
    checks: tuple[str, ...] = field(default_factory=tuple)


class RegistryClient:
    """An HTTP client for one registry."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        state: ClientState | None = None,
        workers: int = 4,
        chunk_size: int = _CHUNK,
        timeout: float = 300.0,
        log_key: str | os.PathLike[str] | None = None,
    ) -> None:
        """``log_key`` pins the registry's transparency-log public key (PEM file); without
        it the key is fetched on first contact and remembered in the client state."""
        import httpx

        self.url = url.rstrip("/")
        self.token = token
        self.state = state or ClientState()
        self.workers = max(1, workers)
        self.chunk_size = max(1, chunk_size)
        self._timeout = timeout
        self._log_key_path = log_key
        self._monitor: LogMonitor | None = None
        self._monitor_lock = threading.RLock()
        headers = {"user-agent": "modelseal-client", "accept-encoding": "identity"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        limits = httpx.Limits(max_connections=self.workers + 4)
        self._http = httpx.Client(
            base_url=self.url + "/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=limits,
        )
        # Presigned URLs get no registry credentials.
        self._plain = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), limits=limits)

    @classmethod
    def from_login(
        cls, url: str | None = None, *, home: Path | None = None, **kwargs: Any
    ) -> RegistryClient:
        """A client for ``url`` (default: the last registry logged in to) with its stored token."""
        state = ClientState(home)
        resolved, token = state.login_for(url)
        return cls(resolved, token, state=state, **kwargs)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()
        self._plain.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP helpers -------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                # A kept-alive connection the server has just closed as idle fails on
                # reuse; a read is safe to send once more on a fresh connection.
                if method not in ("GET", "HEAD"):
                    raise
                response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"cannot reach the registry at {self.url}: {exc}",
                advice="check the URL and that `modelseal serve` is running",
            ) from exc
        return self._decode(response)

    def _decode(self, response: Any) -> Any:
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            raise error_from_payload(response.status_code, payload)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- simple calls --------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """The identity behind the token."""
        result: dict[str, Any] = self._request("GET", "/whoami")
        return result

    def search(self, query: str = "", *, limit: int = 50) -> list[dict[str, Any]]:
        """Models whose names contain ``query``."""
        page = self._request("GET", "/search", params={"q": query, "limit": limit})
        return list(page["items"])

    def resolve(self, ref: ModelRef | str) -> dict[str, Any]:
        """The version document for a reference (``resolved_by`` says how it was found)."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        target = f"sha256:{ref.digest}" if ref.digest else (ref.reference or "latest")
        doc: dict[str, Any] = self._request(
            "GET", f"/namespaces/{ref.namespace}/models/{ref.model}/resolve/{target}"
        )
        return doc

    def info(self, ref: ModelRef | str) -> dict[str, Any]:
        """A model (no version given) or a version."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        if ref.reference is None and ref.digest is None:
            doc: dict[str, Any] = self._request(
                "GET", f"/namespaces/{ref.namespace}/models/{ref.model}"
            )
            return doc
        return self.resolve(ref)

    def trusted_keys(self, namespace: str) -> list[dict[str, Any]]:
        """The keys the namespace trusts, as published by the registry."""
        return list(self._request("GET", f"/namespaces/{namespace}/keys")["items"])

    # -- transparency log ----------------------------------------------------------------------

    def log_public_key(self) -> Any:
        """The log's tree-head key: pinned by ``log_key``, else remembered, else fetched
        from the registry and remembered (trust on first use)."""
        from modelseal.transparency.errors import LogVerificationError

        if self._log_key_path is not None:
            from modelseal.integrity.signing.keys import load_public_key

            return load_public_key(self._log_key_path)
        pem = self.state.log_key_pem(self.url)
        if pem is not None:
            return _public_key_from_pem(pem, f"the log key remembered for {self.url}")
        served = self._request("GET", "/log/key")
        key = _public_key_from_pem(str(served.get("public_key_pem", "")), "the registry's log key")
        from modelseal.integrity.signing.keys import key_hint

        if key_hint(key) != served.get("key_id"):
            raise LogVerificationError("the registry's log key does not match its key id")
        self.state.pin_log_key(self.url, served["public_key_pem"])
        return key

    def log_monitor(self) -> LogMonitor:
        """The client-side checker of this registry's log (state in the client state file)."""
        from modelseal.transparency.client import LogMonitor

        with self._monitor_lock:
            if self._monitor is None:
                self._monitor = LogMonitor(
                    _HttpLogSource(self), self.log_public_key(), self.state.tree_heads, self.url
                )
            return self._monitor

    def log_tree_head(self) -> SignedTreeHead:
        """Fetch the newest tree head, check it extends the last one seen, and remember it.

        Raises :class:`~modelseal.transparency.errors.SplitViewError` if the registry's
        history contradicts what it showed this client before.
        """
        monitor = self.log_monitor()
        with self._monitor_lock:
            return monitor.update()

    def verify_logged(self, doc: dict[str, Any]) -> str:
        """Check that the version ``doc`` has its publish entry in the log; a check message.

        The newest tree head is accepted first (:meth:`log_tree_head`); the entry must
        name the same namespace, model, version and digest, and its inclusion proof must
        verify against that head.
        """
        from modelseal.transparency.entries import EntryKind, LogEntry
        from modelseal.transparency.errors import LogVerificationError

        sth = self.log_tree_head()
        subject = f"{doc['namespace']}/{doc['model']}:{doc['version']}"
        if sth.tree_size == 0:
            raise LogVerificationError(f"{subject} is not in the registry's (empty) log")
        found = self._request(
            "GET",
            f"/log/versions/{doc['namespace']}/{doc['model']}/{doc['version']}",
            params={"tree_size": sth.tree_size},
        )
        data = str(found.get("entry", "")).encode("utf-8")
        entry = LogEntry.from_bytes(data)
        expected = {
            "namespace": doc["namespace"],
            "model": doc["model"],
            "version": doc["version"],
            "digest": doc["digest"],
        }
        actual = {k: entry.fields.get(k) for k in expected}
        if entry.kind is not EntryKind.PUBLISH or actual != expected:
            raise LogVerificationError(
                f"the transparency log records {entry.kind.value} {actual}, "
                f"not the publication of {subject} with digest {doc['digest'][:16]}",
                advice="the registry serves something it did not log; do not use it",
            )
        index = found.get("index")
        if not isinstance(index, int):
            raise LogVerificationError("the registry's log answer has no entry index")
        with self._monitor_lock:
            self.log_monitor().verify_entry(data, index)
        return (
            f"publish entry {index} is in the transparency log (tree size {sth.tree_size}, "
            "consistent with the last tree head seen)"
        )

    def log_export(self) -> dict[str, Any]:
        """The whole log as an export document (:func:`modelseal.transparency.audit_export`).

        Holds every entry up to the newest tree head (accepted as in
        :meth:`log_tree_head`), every tree head the server issued up to it, and the
        last head this client had accepted before, so an audit also checks the
        registry's history against what it showed this client.
        """
        from modelseal.transparency.log import EXPORT_FORMAT

        previous = self.state.tree_heads.get(self.url)
        sth = self.log_tree_head()
        entries: list[str] = []
        start: int | None = 0
        while start is not None and start < sth.tree_size:
            page = self._request(
                "GET",
                "/log/entries",
                params={"start": start, "end": sth.tree_size, "limit": _LOG_PAGE},
            )
            items = page.get("items") or []
            for item in items:
                if item.get("index") != len(entries):
                    raise RegistryError("the registry's log entries came out of order")
                entries.append(str(item["entry"]))
            start = page.get("next") if items else None
        heads = self._request("GET", "/log/tree-heads", params={"max_size": sth.tree_size})
        tree_heads = list(heads.get("items") or [])
        for own in (previous, sth):
            if own is not None and own.to_json() not in tree_heads:
                tree_heads.append(own.to_json())
        return {
            "format": EXPORT_FORMAT,
            "registry": self.url,
            "entries": entries,
            "tree_heads": tree_heads,
        }

    def audit_log(self) -> AuditReport:
        """Fetch the whole log (:meth:`log_export`) and audit it with the log's key.

        A split view against this client's last accepted head is reported as a
        problem of the audit rather than raised.
        """
        import dataclasses

        from modelseal.transparency.audit import AuditProblem, AuditReport, audit_export
        from modelseal.transparency.errors import LogVerificationError

        key = self.log_public_key()
        try:
            export = self.log_export()
        except LogVerificationError as exc:
            problem = AuditProblem("latest tree head", exc.message)
            return AuditReport(0, 0, b"", (problem,), None)
        report = audit_export(export, key)
        if len(export["entries"]) != (report.latest.tree_size if report.latest else 0):
            extra = AuditProblem("export", "the entries do not end at the latest tree head")
            report = dataclasses.replace(report, problems=(*report.problems, extra))
        return report

    # -- push ----------------------------------------------------------------------------------

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
        signature_bytes = self._signature_for(root, key, signature)
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
        status = self._request("POST", f"{base}/uploads", json=body)
        paths = {f.digest: root / f.path for f in reversed(files)}
        total = sum(b["size"] for b in status["blobs"])
        skipped = sum(b["offset"] for b in status["blobs"])
        done = _Counter(total, skipped, progress)
        pending = [b for b in status["blobs"] if not b["complete"]]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = [
                pool.submit(self._upload_blob, status["id"], b, paths[b["digest"]], done)
                for b in pending
            ]
            for future in futures:
                future.result()
        commit = {
            "signature": base64.b64encode(signature_bytes).decode("ascii")
            if signature_bytes
            else None
        }
        version: dict[str, Any] = self._request(
            "POST", f"/uploads/{status['id']}/commit", json=commit
        )
        if version["state"] != "published":
            raise QuarantinedError(
                f"{ref} was stored but QUARANTINED:\n  - " + "\n  - ".join(version["reasons"]),
                advice="fix the reasons above and push a new version",
            )
        logged = self.verify_logged(version)
        return PushResult(
            version, done.value - skipped, skipped, time.perf_counter() - started, logged
        )

    def _signature_for(
        self,
        root: Path,
        key: str | os.PathLike[str] | None,
        signature: str | os.PathLike[str] | None,
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

    def _upload_blob(
        self, upload_id: str, blob: dict[str, Any], path: Path, done: _Counter
    ) -> None:
        """Send one blob in chunks from the server's offset; on a cut connection or an
        offset conflict, ask the server where it stands and go on from there."""
        import http.client

        digest, size, offset = blob["digest"], blob["size"], blob["offset"]
        attempts = 0
        while True:
            try:
                while True:
                    length = min(self.chunk_size, size - offset)
                    answer = self._patch_chunk(upload_id, digest, offset, path, length)
                    done.add(answer["offset"] - offset)
                    offset = answer["offset"]
                    if answer["complete"] or offset >= size:
                        return
            except (OSError, http.client.HTTPException, ConflictError) as exc:
                attempts += 1
                if attempts > _RETRIES:
                    raise RegistryError(
                        f"upload of {path.name} failed after {_RETRIES} retries: {exc}",
                        advice="run the same push again: it resumes where it stopped",
                    ) from exc
                time.sleep(min(2.0, 0.2 * attempts))
                status = self._request("GET", f"/uploads/{upload_id}")
                current = next(b for b in status["blobs"] if b["digest"] == digest)
                done.add(current["offset"] - offset)
                offset = current["offset"]
                if current["complete"]:
                    return

    def _patch_chunk(
        self, upload_id: str, digest: str, offset: int, path: Path, length: int
    ) -> dict[str, Any]:
        """One ``PATCH`` with ``length`` bytes of ``path`` from ``offset``, streamed
        with ``http.client`` (large send blocks, no per-chunk overhead)."""
        import urllib.parse

        parts = urllib.parse.urlsplit(f"{self.url}/v1/uploads/{upload_id}/blobs/{digest}")
        connection = _connection(parts, self._timeout)
        headers = {
            **dict(self._http.headers),
            "content-type": "application/octet-stream",
            "content-length": str(length),
        }
        try:
            connection.putrequest(
                "PATCH", f"{parts.path}?offset={offset}", skip_accept_encoding=True
            )
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            _send_range(connection, path, offset, length)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        try:
            payload = json.loads(data) if data else None
        except ValueError:
            payload = None
        if response.status >= 400:
            raise error_from_payload(response.status, payload)
        if not isinstance(payload, dict):
            raise RegistryError(f"unexpected answer to an upload chunk: HTTP {response.status}")
        return payload

    # -- pull ----------------------------------------------------------------------------------

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

        ``keys`` pins public keys: the signature must verify with one of them (instead
        of any key the namespace trusts).
        """
        started = time.perf_counter()
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        destination = Path(dest)
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise UsageError(f"{destination} exists", advice="pull into a new directory")
        doc = self.resolve(ref)
        checks = self._check_document(ref, doc, allow_rollback)
        checks.append(self.verify_logged(doc))
        files = [FileEntry.from_dict(f) for f in doc["files"]]
        destination.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.pull-", dir=destination.parent))
        try:
            model_dir = work / "model"
            model_dir.mkdir()
            downloaded = self._download_all(ref.namespace, files, model_dir, progress)
            checks.append(f"{len(files)} file digests and the version digest match")
            signed_by = self._check_signature(
                ref.namespace, doc, model_dir, work, keys, allow_unsigned
            )
            checks.append(
                f"signature verifies with trusted key {signed_by[:16]}"
                if signed_by
                else "unsigned (allowed by --allow-unsigned)"
            )
            checks.append(self._check_scan(doc, model_dir))
            os.replace(model_dir, destination) if not destination.exists() else _replace_empty(
                model_dir, destination
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if doc.get("resolved_by") == "tag" and ref.reference:
            self.state.record(self.url, f"{ref.namespace}/{ref.model}:{ref.reference}", doc)
        self.state.record_pull(destination, self.url, doc)
        return PullResult(
            doc, destination, downloaded, signed_by, time.perf_counter() - started, tuple(checks)
        )

    def _check_document(
        self, ref: ModelRef, doc: dict[str, Any], allow_rollback: bool
    ) -> list[str]:
        checks: list[str] = []
        if doc.get("namespace") != ref.namespace or doc.get("model") != ref.model:
            raise VerificationError(f"the registry answered for another model than {ref}")
        if doc.get("state") != "published":
            reasons = doc.get("reasons") or []
            raise QuarantinedError(
                f"{ref} is {doc.get('state')}, not published"
                + ("".join(f"\n  - {r}" for r in reasons)),
                advice="only published versions can be pulled",
            )
        files = [FileEntry.from_dict(f) for f in doc["files"]]
        for f in files:
            check_file_path(f.path)
        check_file_list(files, max_files=1_000_000, max_file_bytes=1 << 62)
        if version_digest(files) != doc.get("digest"):
            raise VerificationError(
                f"{ref}: the file list does not match the version digest the registry gave"
            )
        if ref.digest and doc["digest"] != ref.digest:
            raise VerificationError(f"{ref}: the registry returned digest {doc['digest']}")
        if ref.reference and not ref.digest:
            if doc.get("resolved_by") == "version" and doc.get("version") != ref.reference:
                raise VerificationError(f"{ref}: the registry returned version {doc['version']}")
            if doc.get("resolved_by") == "tag":
                key = f"{ref.namespace}/{ref.model}:{ref.reference}"
                seen = self.state.seen(self.url, key)
                if seen is not None and int(seen.get("serial", 0)) > int(doc["serial"]):
                    if not allow_rollback:
                        raise RollbackError(
                            f"tag {key} now points to version {doc['version']}, older than "
                            f"version {seen.get('version')} this client pulled for it before",
                            advice="this may be a rollback attack; pass --allow-rollback only "
                            "if the tag was moved back on purpose",
                        )
                    checks.append("rollback to an older version allowed explicitly")
                else:
                    checks.append("tag did not move to an older version")
        return checks

    def _download_all(
        self, namespace: str, files: list[FileEntry], model_dir: Path, progress: Progress | None
    ) -> int:
        by_digest: dict[str, list[FileEntry]] = {}
        for f in files:
            by_digest.setdefault(f.digest, []).append(f)
        total = sum(group[0].size for group in by_digest.values())
        done = _Counter(total, 0, progress)
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
        self, namespace: str, entry: FileEntry, model_dir: Path, done: _Counter
    ) -> None:
        """Stream one blob to its path, checking size and SHA-256.

        Blob bodies go through ``http.client`` with large reads (much less per-chunk
        overhead than httpx for gigabyte files); a redirect (presigned S3 URL) is
        followed without the registry's credentials.
        """
        import http.client
        import urllib.parse

        target = model_dir / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        url = f"{self.url}/v1/namespaces/{namespace}/blobs/{entry.digest}"
        headers = dict(self._http.headers)
        size = 0
        try:
            for _hop in range(3):
                parts = urllib.parse.urlsplit(url)
                connection = _connection(parts, self._timeout)
                try:
                    path = parts.path + (f"?{parts.query}" if parts.query else "")
                    connection.request("GET", path or "/", headers=headers)
                    response = connection.getresponse()
                    if response.status in (301, 302, 303, 307, 308):
                        url = urllib.parse.urljoin(url, response.getheader("location", ""))
                        response.read()
                        headers = {
                            "user-agent": headers.get("user-agent", ""),
                            "accept-encoding": "identity",
                        }
                        continue
                    if response.status >= 400:
                        body = response.read(1024 * 1024)
                        try:
                            payload = json.loads(body)
                        except ValueError:
                            payload = None
                        raise error_from_payload(response.status, payload)
                    size = self._save(response, target, hasher, entry, done)
                    break
                finally:
                    connection.close()
            else:
                raise RegistryError(f"download of {entry.path}: too many redirects")
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryError(f"download of {entry.path} failed: {exc}") from exc
        if size != entry.size or hasher.hexdigest() != entry.digest:
            raise IntegrityError(
                f"{entry.path}: the downloaded bytes do not match the published digest "
                f"(got {size} bytes, SHA-256 {hasher.hexdigest()[:16]}…)",
                advice="the registry's storage was tampered with or corrupted; tell its admin",
            )

    def _save(
        self, response: Any, target: Path, hasher: Any, entry: FileEntry, done: _Counter
    ) -> int:
        """Stream the body to ``target`` through a few recycled buffers: this thread
        receives, a second one hashes and writes (both release the GIL)."""
        import queue

        free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(4):
            free.put(bytearray(_READ))
        pipe: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        failure: list[BaseException] = []

        def sink() -> None:
            try:
                with open(target, "wb") as handle:
                    while (item := pipe.get()) is not None:
                        buffer, length = item
                        view = memoryview(buffer)[:length]
                        hasher.update(view)
                        handle.write(view)
                        view.release()
                        free.put(buffer)
                        done.add(length)
            except BaseException as exc:  # reported after the stream ends
                failure.append(exc)
                while (item := pipe.get()) is not None:
                    free.put(item[0])

        writer = threading.Thread(target=sink, daemon=True)
        writer.start()
        size = 0
        try:
            while not failure:
                buffer = free.get()
                length = _fill(response, buffer)
                if length == 0:
                    break
                size += length
                if size > entry.size:
                    break
                pipe.put((buffer, length))
                if length < len(buffer):
                    break
        finally:
            pipe.put(None)
            writer.join()
        if failure:
            raise failure[0]
        return size

    def _check_signature(
        self,
        namespace: str,
        doc: dict[str, Any],
        model_dir: Path,
        work: Path,
        pinned: Sequence[str | os.PathLike[str]],
        allow_unsigned: bool,
    ) -> str | None:
        if not doc.get("signature_digest"):
            if allow_unsigned:
                return None
            raise VerificationError(
                f"{doc['namespace']}/{doc['model']}:{doc['version']} has no signature",
                advice="pass --allow-unsigned to accept unsigned models from this namespace",
            )
        sig_entry = FileEntry("model.sig", doc["signature_digest"], 0)
        sig_path = work / "model.sig"
        data = self._fetch_small(namespace, sig_entry.digest)
        if hashlib.sha256(data).hexdigest() != sig_entry.digest:
            raise IntegrityError("the signature bundle does not match its digest")
        sig_path.write_bytes(data)
        candidates: list[tuple[str, Path]] = []
        if pinned:
            candidates = [(str(p), Path(p)) for p in pinned]
        else:
            for number, key in enumerate(self.trusted_keys(namespace)):
                if key.get("kind") == "key" and key.get("public_key_pem"):
                    pem = work / f"trusted-{number}.pem"
                    pem.write_text(key["public_key_pem"], encoding="utf-8")
                    candidates.append((key["fingerprint"], pem))
        if not candidates:
            raise VerificationError(f"namespace {namespace!r} trusts no signing key")
        from modelseal import integrity
        from modelseal.registry.signatures import check_signature_digests

        # Every file's SHA-256 was checked while downloading: compare those with the
        # signed manifest instead of hashing the bytes a second time.
        files = [FileEntry.from_dict(f) for f in doc["files"]]
        reasons: list[str] = []
        for name, pem in candidates:
            try:
                pem_text = pem.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read key {pem}: {exc}") from exc
            quick = check_signature_digests(data, pem_text, files)
            if quick is not None:
                if not quick:
                    return name
                reasons.extend(quick[:5])
                continue
            try:
                result = integrity.verify(model_dir, key=pem, signature=sig_path)
            except ModelsealError as exc:
                reasons.append(exc.message)
                continue
            if result.ok:
                return name
            reasons.extend(result.reasons)
        raise VerificationError(
            f"{doc['namespace']}/{doc['model']}:{doc['version']}: the signature does not verify "
            "with any trusted key: " + "; ".join(dict.fromkeys(reasons))[:500],
            advice="the model or its signature was replaced; do not use it",
        )

    def _fetch_small(self, namespace: str, digest: str) -> bytes:
        response = self._http.get(f"/namespaces/{namespace}/blobs/{digest}")
        if response.status_code in (301, 302, 303, 307, 308):
            response = self._plain.get(response.headers["location"])
        if response.status_code >= 400:
            self._decode(response)
        data: bytes = response.content
        return data

    def _check_scan(self, doc: dict[str, Any], model_dir: Path) -> str:
        from modelseal.scan import scan

        threshold = doc.get("scan_threshold", "low")
        limit = _SEVERITIES.index(threshold) if threshold in _SEVERITIES else 1
        if doc.get("scan_verdict") in ("malicious", "error"):
            raise VerificationError(f"the registry's scan verdict is {doc['scan_verdict']}")
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
        return (
            f"scan verdict {doc.get('scan_verdict')}; local re-scan clean at threshold {threshold}"
        )


class _HttpLogSource:
    """The registry's log endpoints as a :class:`~modelseal.transparency.client.LogSource`."""

    def __init__(self, client: RegistryClient) -> None:
        self._client = client

    def tree_head(self) -> SignedTreeHead:
        from modelseal.transparency.sth import SignedTreeHead

        return SignedTreeHead.from_json(self._client._request("GET", "/log/tree-head"))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        answer = self._client._request(
            "GET", "/log/proof/consistency", params={"first": old_size, "second": new_size}
        )
        return _hashes(answer.get("proof"))

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        answer = self._client._request(
            "GET", "/log/proof/inclusion", params={"index": index, "tree_size": tree_size}
        )
        return _hashes(answer.get("audit_path"))


def _hashes(value: Any) -> list[bytes]:
    """Hex hashes from a proof answer (a malformed answer is a failed verification)."""
    from modelseal.transparency.errors import LogVerificationError

    if not isinstance(value, list) or len(value) > 128:
        raise LogVerificationError("the registry answered a malformed log proof")
    try:
        return [bytes.fromhex(h) for h in value]
    except (TypeError, ValueError):
        raise LogVerificationError("the registry answered a malformed log proof") from None


def _public_key_from_pem(pem: str, what: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    from modelseal.transparency.errors import LogError

    try:
        return serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise LogError(f"{what} is not a PEM public key") from exc


class _Counter:
    """Thread-safe byte counter feeding a progress callback."""

    def __init__(self, total: int, start: int, progress: Progress | None) -> None:
        self.total = total
        self.value = start
        self.progress = progress
        self._lock = threading.Lock()
        if progress is not None:
            progress(start, total)

    def add(self, amount: int) -> None:
        with self._lock:
            self.value += amount
            value = self.value
        if self.progress is not None:
            self.progress(value, self.total)


def _fill(response: Any, buffer: bytearray) -> int:
    """Read into ``buffer`` until it is full or the body ends; the number of bytes read."""
    view = memoryview(buffer)
    filled = 0
    try:
        while filled < len(buffer):
            count = response.readinto(view[filled:])
            if not count:
                break
            filled += count
    finally:
        view.release()
    return filled


def _send_range(connection: Any, path: Path, offset: int, length: int) -> None:
    """Send ``length`` bytes of ``path`` from ``offset`` through one reused buffer."""
    buffer = bytearray(_SEND_BLOCK)
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as handle:
            handle.seek(offset)
            left = length
            while left > 0:
                count = handle.readinto(view[: min(left, len(buffer))])
                if not count:
                    raise UsageError(f"{path} shrank while it was being pushed")
                connection.sock.sendall(view[:count])
                left -= count
    finally:
        view.release()


def _connection(parts: Any, timeout: float) -> Any:
    """An ``http.client`` connection for a split URL, with 1 MiB send blocks."""
    import http.client

    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=timeout, blocksize=_SEND_BLOCK)
    return http.client.HTTPConnection(parts.netloc, timeout=timeout, blocksize=_SEND_BLOCK)


def _replace_empty(source: Path, destination: Path) -> None:
    """Rename ``source`` over the empty directory ``destination`` (atomic on POSIX)."""
    with contextlib.suppress(OSError):
        destination.rmdir()
    os.rename(source, destination)
