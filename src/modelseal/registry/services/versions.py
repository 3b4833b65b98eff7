"""Rules about versions that the publish path applies before the gate runs.

- **One signature bundle publishes one version.** A bundle signs a file list, not a
  version name, so without a record anyone who can push could republish signed content
  under another name (or in another namespace trusting the same key). The server
  records an identity of each bundle's signature and refuses it for any other
  version (the same version may be retried). The identity is the SHA-256 of the DSSE
  payload and, for ECDSA, the signature's ``r`` (``s`` can be negated without the key,
  so hashing the raw signature would let a replayer mint a "new" one); an envelope
  must carry exactly one signature, so junk extra signatures cannot change it.
- **A version may not build on a quarantined one.** A declared parent in this registry
  that is quarantined quarantines the child, with that reason.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sqlalchemy import select

from modelseal.errors import ModelsealError
from modelseal.integrity.bundle import Bundle
from modelseal.registry.db.models import Model, Namespace, Version
from modelseal.registry.errors import BadRequestError, ConflictError
from modelseal.registry.names import parse_ref

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["bundle_identity", "check_bundle_unused", "parent_reasons"]


def bundle_identity(bundle: bytes) -> str | None:
    """The replay key of a signature bundle, ``None`` if it is not a parsable bundle
    (the gate then quarantines it for its signature)."""
    try:
        envelope = Bundle.from_json(bundle).envelope
    except (ModelsealError, ValueError, TypeError, KeyError):
        return None
    if len(envelope.signatures) != 1:
        raise BadRequestError(
            f"the signature bundle carries {len(envelope.signatures)} signatures; one is expected",
            advice="sign with `modelseal sign` (one key, one signature)",
        )
    sig = envelope.signatures[0].sig
    try:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, _ = decode_dss_signature(sig)
        material = b"ecdsa-r:" + r.to_bytes((r.bit_length() + 7) // 8 or 1, "big")
    except ValueError:
        material = b"sig:" + sig
    digest = hashlib.sha256()
    for part in (envelope.payload_type.encode("utf-8"), envelope.payload, material):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def check_bundle_unused(
    session: Session, identity: str, namespace_id: int, model: str, version: str
) -> None:
    """Refuse a bundle already used by a version other than ``namespace/model:version``."""
    rows = session.execute(
        select(Namespace.id, Namespace.name, Model.name, Version.name)
        .join(Model, Version.model_id == Model.id)
        .join(Namespace, Model.namespace_id == Namespace.id)
        .where(Version.bundle_id == identity)
        .limit(5)
    ).all()
    for ns_id, ns_name, model_name, version_name in rows:
        if (ns_id, model_name, version_name) != (namespace_id, model, version):
            raise ConflictError(
                "this signature bundle was already used to publish another version "
                f"({ns_name}/{model_name}:{version_name}); a bundle publishes one version",
                advice="sign the model again for this version",
            )


def parent_reasons(session: Session, parent: str | None) -> list[str]:
    """Gate reasons for a declared parent in this registry that is quarantined."""
    if not parent:
        return []
    try:
        ref = parse_ref(parent)
    except ModelsealError:
        return []  # a parent outside this registry (e.g. a Hugging Face id): not ours
    query = (
        select(Version.state)
        .join(Model, Version.model_id == Model.id)
        .join(Namespace, Model.namespace_id == Namespace.id)
        .where(Namespace.name == ref.namespace, Model.name == ref.model)
    )
    if ref.digest:
        query = query.where(Version.digest == ref.digest)
    elif ref.reference:
        query = query.where(Version.name == ref.reference)
    else:
        return []
    states = set(session.scalars(query.limit(10)))
    if "quarantined" in states and "published" not in states:
        return [f"the declared parent {parent} is quarantined in this registry"]
    return []
