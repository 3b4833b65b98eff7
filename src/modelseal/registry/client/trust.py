"""What the client believes, and why: the transparency log checked from the client side.

Every answer the client relies on for trust is taken from a verified log entry, not
from the server's document: the version a name or digest resolves to (its ``publish``
entry), where a tag points and the tag's serial (its newest ``tag-move`` entry), and
the keys the signature may be made with (their ``key-trust`` entries). Each entry is
proven to be in the log under a signed tree head that verifies with the log key
(pinned by ``modelseal login --log-key``, or trusted on first use), is younger than
``max_log_age`` and extends the last tree head this client accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelseal.errors import RegistryError, UsageError
from modelseal.registry.client.http import RegistryHttp
from modelseal.registry.errors import NotFoundError
from modelseal.registry.schemas import (
    KeyEntriesDoc,
    LogEntriesPage,
    LogKeyDoc,
    ProvenEntryDoc,
    VersionDoc,
)

if TYPE_CHECKING:
    from pathlib import Path

    from modelseal.transparency.audit import AuditReport
    from modelseal.transparency.client import LogMonitor, VerifiedEntry
    from modelseal.transparency.sth import SignedTreeHead

__all__ = ["RegistryTrust"]

_LOG_PAGE = 1000
_TOFU_WARNING = (
    "the transparency-log key of {url} was trusted on first use, not pinned: pin it with "
    "`modelseal login {url} --log-key PUB` (a registry that lies from the first contact "
    "is not detected)"
)


class RegistryTrust(RegistryHttp):
    """The transparency-log side of the client."""

    # -- the log key ------------------------------------------------------------------------

    def log_public_key(self) -> Any:
        """The log's tree-head key: the ``log_key`` file, else the key remembered for this
        registry (pinned, or trusted on first use), else fetched now and remembered as
        trusted on first use."""
        from modelseal.integrity.signing.keys import key_hint, load_public_key
        from modelseal.transparency.errors import LogVerificationError

        if self._log_key_path is not None:
            return load_public_key(self._log_key_path)
        record = self.state.log_key(self.url)
        if record is not None:
            return _public_key_from_pem(record.pem, f"the log key remembered for {self.url}")
        served = self._get(LogKeyDoc, "/log/key", "the log key request")
        key = _public_key_from_pem(served.public_key_pem, "the registry's log key")
        if key_hint(key) != served.key_id:
            raise LogVerificationError("the registry's log key does not match its key id")
        self.state.pin_log_key(self.url, served.public_key_pem, "first-use")
        return key

    @property
    def log_key_warning(self) -> str | None:
        """A warning when the log key is trusted on first use rather than pinned."""
        if self._log_key_path is not None:
            return None
        record = self.state.log_key(self.url)
        if record is not None and record.source == "pinned":
            return None
        return _TOFU_WARNING.format(url=self.url)

    def pin_log_key(self, path: str | Path) -> str:
        """Pin the log key in ``path`` (PEM) for this registry after checking that the
        registry's newest tree head verifies with it; returns the key id."""
        from cryptography.hazmat.primitives import serialization

        from modelseal.integrity.signing.keys import key_hint, load_public_key
        from modelseal.transparency.client import LogMonitor

        key = load_public_key(path)
        try:
            pem: bytes = key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except AttributeError as exc:
            raise UsageError(f"{path} is not a public key usable for the log") from exc
        monitor = LogMonitor(
            _HttpLogSource(self), key, self.state.tree_heads, self.url, max_age=self.max_log_age
        )
        monitor.update()  # refuses a key that does not sign this registry's tree heads
        self.state.pin_log_key(self.url, pem.decode("ascii"), "pinned")
        with self._monitor_lock:
            self._monitor = monitor
        return key_hint(key)

    # -- tree heads and entries -------------------------------------------------------------

    def log_monitor(self) -> LogMonitor:
        """The client-side checker of this registry's log (state in the client state file)."""
        from modelseal.transparency.client import LogMonitor

        with self._monitor_lock:
            if self._monitor is None:
                self._monitor = LogMonitor(
                    _HttpLogSource(self),
                    self.log_public_key(),
                    self.state.tree_heads,
                    self.url,
                    max_age=self.max_log_age,
                )
            return self._monitor

    def log_tree_head(self) -> SignedTreeHead:
        """Fetch the newest tree head, check it (signature, age, extends the last one
        seen) and remember it.

        Raises :class:`~modelseal.transparency.errors.SplitViewError` if the registry's
        history contradicts what it showed this client before.
        """
        monitor = self.log_monitor()
        with self._monitor_lock:
            return monitor.update()

    def _current_head(self) -> SignedTreeHead:
        with self._monitor_lock:
            current = self.log_monitor().tree_head
        return current if current is not None else self.log_tree_head()

    def _proven(self, path: str, what: str) -> VerifiedEntry | None:
        """The entry at ``path`` (a log lookup) proven under a freshly fetched and checked
        tree head, or ``None`` when the registry says there is none.

        Fresh, not the head this client accepted earlier: under an older head a version
        published since has no entry yet, and a tag's newest move is an older one."""

        sth = self.log_tree_head()
        try:
            found = self._get(ProvenEntryDoc, path, what, params={"tree_size": sth.tree_size})
        except NotFoundError:
            return None
        return self._verify(found, sth)

    def _verify(self, found: ProvenEntryDoc, sth: SignedTreeHead) -> VerifiedEntry:
        from modelseal.transparency.entries import LogEntry

        data = found.entry.encode("utf-8")
        LogEntry.from_bytes(data)  # canonical, known kind, required fields
        with self._monitor_lock:
            return self.log_monitor().verify_entry(data, found.index)

    def publish_entry(self, namespace: str, model: str, version: str) -> VerifiedEntry | None:
        """The verified publish (or quarantine) entry of a version, ``None`` if not logged."""
        return self._proven(
            f"/log/versions/{namespace}/{model}/{version}", f"the log entry of {version}"
        )

    def tag_entry(self, namespace: str, model: str, tag: str) -> VerifiedEntry:
        """The newest verified ``tag-move`` entry of a tag (its target and serial)."""
        from modelseal.transparency.entries import EntryKind
        from modelseal.transparency.errors import LogVerificationError

        subject = f"{namespace}/{model}:{tag}"
        found = self._proven(f"/log/tags/{namespace}/{model}/{tag}", f"the log entry of {tag}")
        if found is None:
            raise LogVerificationError(
                f"tag {subject} has no tag-move entry in the transparency log",
                advice="the registry serves a tag it did not log; do not use it",
            )
        fields = found.entry.fields
        if found.entry.kind is not EntryKind.TAG_MOVE or (
            fields.get("namespace"),
            fields.get("model"),
            fields.get("tag"),
        ) != (namespace, model, tag):
            raise LogVerificationError(
                f"the registry answered log entry {found.index} ({found.entry.kind.value}) "
                f"for tag {subject}, which it does not record",
                advice="the registry serves something it did not log; do not use it",
            )
        return found

    def key_trust_entry(self, namespace: str, fingerprint: str) -> VerifiedEntry:
        """The verified ``key-trust`` entry of a namespace's key; refused when the key has
        no such entry or a verified ``key-revoke`` entry after it."""
        from modelseal.transparency.entries import EntryKind
        from modelseal.transparency.errors import LogVerificationError

        sth = self._current_head()
        try:
            found = self._get(
                KeyEntriesDoc,
                f"/log/keys/{namespace}/{fingerprint}",
                "the key's log entries",
                params={"tree_size": sth.tree_size},
            )
        except NotFoundError:
            found = None
        trusted = None if found is None else self._verify(found.trust, sth)
        expected = (namespace, fingerprint)
        if (
            trusted is None
            or trusted.entry.kind is not EntryKind.KEY_TRUST
            or (
                trusted.entry.fields.get("namespace"),
                trusted.entry.fields.get("fingerprint"),
            )
            != expected
        ):
            raise LogVerificationError(
                f"key {fingerprint[:16]} of {namespace} has no key-trust entry in the "
                "transparency log",
                advice="the registry trusts a key it did not log; do not use this model",
            )
        revoked = None if found is None or found.revoke is None else self._verify(found.revoke, sth)
        if (
            revoked is not None
            and revoked.entry.kind is EntryKind.KEY_REVOKE
            and (revoked.entry.fields.get("namespace"), revoked.entry.fields.get("fingerprint"))
            == expected
            and revoked.index > trusted.index
        ):
            raise LogVerificationError(
                f"key {fingerprint[:16]} of {namespace} was revoked (log entry {revoked.index})",
                advice="the registry still lists a key its log records as revoked",
            )
        return trusted

    def logged_publish(self, doc: VersionDoc) -> VerifiedEntry:
        """The verified publish entry of ``doc``: same namespace, model, version and digest."""
        from modelseal.transparency.entries import EntryKind
        from modelseal.transparency.errors import LogVerificationError

        found = self.publish_entry(doc.namespace, doc.model, doc.version)
        if found is None:
            raise LogVerificationError(
                f"{doc.subject} has no entry in the registry's transparency log",
                advice="a version the log does not hold must not be trusted",
            )
        expected = {
            "namespace": doc.namespace,
            "model": doc.model,
            "version": doc.version,
            "digest": doc.digest,
        }
        actual = {k: found.entry.fields.get(k) for k in expected}
        if found.entry.kind is not EntryKind.PUBLISH or actual != expected:
            raise LogVerificationError(
                f"the transparency log records {found.entry.kind.value} {actual}, "
                f"not the publication of {doc.subject} with digest {doc.digest[:16]}",
                advice="the registry serves something it did not log; do not use it",
            )
        return found

    def verify_logged(self, doc: VersionDoc) -> str:
        """Accept the newest tree head, then check that ``doc`` has its publish entry in the
        log; a check message."""
        self.log_tree_head()
        found = self.logged_publish(doc)
        return (
            f"publish entry {found.index} is in the transparency log (tree size "
            f"{found.tree_head.tree_size}, consistent with the last tree head seen)"
        )

    # -- export and audit -------------------------------------------------------------------

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
            page = self._get(
                LogEntriesPage,
                "/log/entries",
                "the log listing",
                params={"start": start, "end": sth.tree_size, "limit": _LOG_PAGE},
            )
            for item in page.items:
                if item.index != len(entries):
                    raise RegistryError("the registry's log entries came out of order")
                if item.entry is None:
                    raise RegistryError(
                        f"log entry {item.index} is hidden from this token",
                        advice="export the log with a site admin's token",
                    )
                entries.append(item.entry)
            start = page.next if page.items else None
        heads = self._request("GET", "/log/tree-heads", params={"max_size": sth.tree_size})
        tree_heads = list(heads.get("items") or []) if isinstance(heads, dict) else []
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


class _HttpLogSource:
    """The registry's log endpoints as a :class:`~modelseal.transparency.client.LogSource`."""

    def __init__(self, client: RegistryHttp) -> None:
        self._client = client

    def tree_head(self) -> SignedTreeHead:
        from modelseal.transparency.sth import SignedTreeHead

        return SignedTreeHead.from_json(self._client._request("GET", "/log/tree-head"))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        answer = self._client._request(
            "GET", "/log/proof/consistency", params={"first": old_size, "second": new_size}
        )
        return _hashes(answer.get("proof") if isinstance(answer, dict) else None)

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        answer = self._client._request(
            "GET", "/log/proof/inclusion", params={"index": index, "tree_size": tree_size}
        )
        return _hashes(answer.get("audit_path") if isinstance(answer, dict) else None)


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
