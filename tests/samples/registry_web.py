"""Registry contents for the web-page tests, written straight into the database.

The rows look like what the publish gate stores (scan reports in the DESIGN.md JSON
shape, CycloneDX SBOM blobs, quarantine reasons), so pages can be rendered without
running pushes. Hostile strings (markup in names, paths and messages) check escaping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["XSS", "WebData", "sbom_document", "scan_report", "seed_web_data"]

#: Markup that must come out escaped wherever a user-controlled string is shown.
XSS = "<script>alert('pwned')</script>"
_FP_RELEASE = hashlib.sha256(b"release key").hexdigest()
_FP_OLD = hashlib.sha256(b"old key").hexdigest()


@dataclass
class WebData:
    """Tokens of the seeded users and a few names the tests look for."""

    tokens: dict[str, str] = field(default_factory=dict)
    release_fingerprint: str = _FP_RELEASE


def scan_report(files: list[dict[str, Any]], findings: list[dict[str, Any]]) -> dict[str, Any]:
    """A stored scan report: ``findings`` items carry a ``path`` and finding fields."""
    results = []
    for entry in files:
        own = [
            {k: f[k] for k in ("rule", "severity", "message", "location")}
            for f in findings
            if f["path"] == entry["path"]
        ]
        worst = {f["severity"] for f in own}
        verdict = "malicious" if "critical" in worst else "suspicious" if own and worst else "clean"
        results.append(
            {"path": entry["path"], "format": "pickle", "verdict": verdict, "findings": own}
        )
    return {"version": 1, "results": results, "summary": {"files": len(files)}}


def sbom_document(name: str, files: list[dict[str, Any]]) -> bytes:
    """A small CycloneDX 1.6 SBOM naming ``files``."""
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{hashlib.sha256(name.encode()).hexdigest()[:32]}",
        "version": 1,
        "metadata": {
            "timestamp": "2026-11-27T07:00:00Z",
            "component": {
                "type": "machine-learning-model",
                "name": name,
                "properties": [{"name": "modelseal:parameter_count", "value": "64"}],
            },
            "properties": [{"name": "modelseal:warning", "value": "no README.md model card"}],
        },
        "components": [
            {
                "type": "file",
                "name": f["path"],
                "hashes": [{"alg": "SHA-256", "content": f["digest"]}],
                "properties": [{"name": "modelseal:size", "value": str(f["size"])}],
            }
            for f in files
        ]
        + [{"type": "library", "name": "safetensors", "purl": "pkg:pypi/safetensors"}],
    }
    return json.dumps(doc, indent=1).encode()


def _files(*names: str, salt: str = "") -> list[dict[str, Any]]:
    return [
        {
            "path": n,
            "digest": hashlib.sha256((salt + n).encode()).hexdigest(),
            "size": 1000 + 10 * i,
        }
        for i, n in enumerate(sorted(names))
    ]


def seed_web_data(
    sessions: Any, store: Any, *, bulk_models: int = 60, bulk_versions: int = 80
) -> WebData:
    """Fill a migrated registry database.

    * ``acme`` (private): alice admin, bob publisher; model ``bert`` 1.0 (signed) and
      1.1 (derived from 1.0, tag ``latest``), ``bert-ft`` 2.0 derived from 1.1,
      ``evil`` 0.1 (bob's, quarantined: critical pickle finding, unverified signature)
      and 0.2 (alice's, quarantined: unsigned), ``many`` with ``bulk_versions``
      versions, one carrying 600 findings over 300 files; dave is a reader there.
    * ``open`` (public): ``llama`` 1.0 derived from ``acme/bert:1.0``, plus
      ``bulk_models`` more models; ``carol`` has no role anywhere but her own namespace.
    """
    from modelseal.registry import identity
    from modelseal.registry.db.models import Blob, Model, Tag, TrustedKey, Version
    from modelseal.registry.transparency_store import log_event
    from modelseal.transparency.entries import EntryKind

    data = WebData()
    now = dt.datetime(2026, 11, 27, 7, 0, tzinfo=dt.timezone.utc)
    with sessions() as session:
        users = {
            name: identity.create_user(session, name, admin=(name == "root"))
            for name in ("root", "alice", "bob", "carol", "dave")
        }
        acme = identity.create_namespace(session, "acme", owner=users["alice"])
        identity.set_role(session, acme, users["bob"], "publisher")
        identity.set_role(session, acme, users["dave"], "reader")
        public = identity.create_namespace(session, "open", public=True, owner=users["root"])
        for name, user in users.items():
            data.tokens[name] = identity.create_token(
                session, user, actions=("read", "push", "admin")
            )[1]
        session.add_all(
            [
                TrustedKey(
                    namespace_id=acme.id,
                    name="release",
                    public_key_pem="(test)",
                    fingerprint=_FP_RELEASE,
                ),
                TrustedKey(
                    namespace_id=acme.id,
                    name="old-release",
                    public_key_pem="(test)",
                    fingerprint=_FP_OLD,
                    revoked_at=now,
                ),
            ]
        )
        for name, fingerprint in (("release", _FP_RELEASE), ("old-release", _FP_OLD)):
            log_event(
                session, EntryKind.KEY_TRUST, namespace="acme", name=name, fingerprint=fingerprint
            )
        log_event(
            session, EntryKind.KEY_REVOKE, namespace="acme", name="old-release", fingerprint=_FP_OLD
        )
        spare, _ = identity.create_token(session, users["carol"])
        identity.revoke_token(session, spare.id)  # logs a token-revoke entry

        def blob(payload: bytes) -> str:
            digest = hashlib.sha256(payload).hexdigest()
            store.put_bytes(digest, payload)
            if session.get(Blob, digest) is None:
                session.add(Blob(digest=digest, size=len(payload)))
            return digest

        def model(namespace: Any, name: str, description: str = "") -> Model:
            row = Model(namespace_id=namespace.id, name=name, description=description)
            session.add(row)
            session.flush()
            return row

        def version(m: Model, name: str, **fields: Any) -> Version:
            files = fields.pop("files", None) or _files(
                "config.json", "model.safetensors", salt=f"{m.name}:{name}"
            )
            fields.setdefault("state", "published")
            fields.setdefault("scan_verdict", "clean")
            fields.setdefault("scan_report", scan_report(files, []))
            fields.setdefault("signed_by", _FP_RELEASE)
            fields.setdefault("uploader_id", users["alice"].id)
            if fields.pop("sbom", True):
                fields["sbom_digest"] = blob(sbom_document(f"{m.name}-{name}", files))
            if fields.get("signed_by") or fields.pop("bundle", False):
                fields["signature_digest"] = blob(f"bundle {m.name} {name}".encode())
            digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()
            row = Version(
                model_id=m.id,
                name=name,
                digest=digest,
                files=files,
                total_size=sum(f["size"] for f in files),
                created_at=now,
                **fields,
            )
            session.add(row)
            session.flush()
            log_event(
                session,
                EntryKind.PUBLISH if row.state == "published" else EntryKind.QUARANTINE,
                namespace=m.namespace.name,
                model=m.name,
                version=name,
                digest=digest,
                serial=row.id,
            )
            return row

        def tag(m: Model, name: str, target: Version) -> None:
            session.add(Tag(model_id=m.id, name=name, version_id=target.id))
            log_event(
                session,
                EntryKind.TAG_MOVE,
                namespace=m.namespace.name,
                model=m.name,
                tag=name,
                version=target.name,
            )

        bert = model(acme, "bert", description=f"Base model {XSS}")
        model(acme, "empty")
        v10 = version(bert, "1.0")
        v11 = version(bert, "1.1", parent="acme/bert:1.0")
        tag(bert, "latest", v11)
        tag(bert, "stable", v10)
        version(model(acme, "bert-ft"), "2.0", parent="acme/bert:1.1")
        evil_files = _files("config.json", "pytorch_model.bin", f"weights/{XSS}.bin")
        version(
            model(acme, "evil"),
            "0.1",
            files=evil_files,
            state="quarantined",
            signed_by=None,
            bundle=True,
            uploader_id=users["bob"].id,
            scan_verdict="malicious",
            scan_report=scan_report(
                evil_files,
                [
                    {
                        "path": "pytorch_model.bin",
                        "rule": "pickle.dangerous-global",
                        "severity": "critical",
                        "message": "imports os.system, which runs a shell command",
                        "location": "pytorch_model.bin",
                    },
                    {
                        "path": f"weights/{XSS}.bin",
                        "rule": "pickle.unknown-global",
                        "severity": "medium",
                        "message": f"imports {XSS}",
                        "location": f"weights/{XSS}.bin",
                    },
                ],
            ),
            reasons=[
                "signature does not verify with any key trusted for this namespace",
                "scan: pytorch_model.bin: critical pickle.dangerous-global: imports os.system",
                f"scan: weights/{XSS}.bin: medium pickle.unknown-global",
            ],
        )
        evil = session.query(Model).filter_by(namespace_id=acme.id, name="evil").one()
        version(
            evil,
            "0.2",
            state="quarantined",
            signed_by=None,
            reasons=["unsigned: no signature bundle was uploaded with the version"],
        )
        version(model(public, "llama"), "1.0", parent="acme/bert:1.0", signed_by=None)

        many = model(acme, "many")
        big_files = _files(*(f"shard-{i:04d}.bin" for i in range(300)))
        big_findings = [
            {
                "path": f["path"],
                "rule": "pickle.unknown-global",
                "severity": ("high", "medium", "low")[i % 3],
                "message": f"unusual import number {i}",
                "location": f["path"],
            }
            for i, f in enumerate(big_files)
            for _ in range(2)
        ]
        for i in range(bulk_versions):
            fields: dict[str, Any] = {}
            if i == bulk_versions - 1:
                fields = {
                    "files": big_files,
                    "scan_report": scan_report(big_files, big_findings),
                    "scan_verdict": "suspicious",
                }
            version(many, f"0.{i}", parent=f"acme/bert:1.{i % 2}", **fields)
        for i in range(bulk_models):
            version(model(public, f"bulk-{i:03d}"), "1.0", sbom=False, signed_by=None)
        session.commit()
    return data
