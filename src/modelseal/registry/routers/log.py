"""The transparency log: signed tree heads, proofs, entries and the log's public key.

Tree heads, proofs and the key are hashes and signatures only, so they are public.
Entry contents name namespaces, models and users: listing them needs a token, and a
caller sees the contents only of entries it may read
(:class:`~modelseal.registry.services.log.LogVisibility`, the web log page's rule);
the others show their index and leaf hash, so proofs still verify.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from modelseal.registry.auth import ReadNamespace, RequiredPrincipal, SessionDep
from modelseal.registry.errors import BadRequestError, NotFoundError
from modelseal.registry.names import check_name, check_version
from modelseal.registry.schemas import (
    KeyEntriesDoc,
    LogEntriesPage,
    LogKeyDoc,
    ProvenEntryDoc,
)
from modelseal.registry.services.log import LogVisibility
from modelseal.registry.transparency_store import (
    RegistryLog,
    find_entry,
    open_log,
    stored_tree_heads,
)
from modelseal.transparency.entries import EntryKind

__all__ = ["router"]

router = APIRouter(prefix="/log", tags=["transparency log"])


def _service(request: Request) -> RegistryLog:
    service: RegistryLog = request.app.state.log
    return service


def _check_size(size: int, current: int, what: str) -> None:
    if size > current:
        raise BadRequestError(
            f"{what} {size} is beyond the log's size {current}",
            advice="ask for a size the log has reached (see GET /v1/log/tree-head)",
        )


@router.get("/key", response_model=LogKeyDoc)
def log_key(request: Request) -> dict[str, Any]:
    """The public key that signs the tree heads, and its key id."""
    signer = _service(request).signer
    return {"key_id": signer.key_id, "public_key_pem": signer.public_key_pem()}


@router.get("/tree-head")
def tree_head(request: Request, session: SessionDep) -> dict[str, Any]:
    """The latest signed tree head (size, root hash, timestamp, signature)."""
    return _service(request).tree_head(session).to_json()


@router.get("/tree-heads")
def tree_heads(
    request: Request,
    session: SessionDep,
    max_size: int | None = Query(None, ge=0, description="Only heads of at most this size."),
) -> dict[str, Any]:
    """Every tree head the server issued with its current key, oldest first."""
    key_id = _service(request).signer.key_id
    heads = stored_tree_heads(session, key_id=key_id, max_size=max_size)
    return {"items": [sth.to_json() for sth in heads]}


@router.get("/proof/inclusion")
def inclusion_proof(
    session: SessionDep,
    index: int = Query(..., ge=0, description="The entry's index."),
    tree_size: int = Query(..., ge=1, description="The size of the tree the proof is for."),
) -> dict[str, Any]:
    """The audit path of entry ``index`` in the tree of ``tree_size`` entries."""
    log = open_log(session)
    _check_size(tree_size, log.size, "tree size")
    if index >= tree_size:
        raise BadRequestError(f"entry {index} is not in a tree of size {tree_size}")
    path = log.inclusion_proof(index, tree_size)
    return {"index": index, "tree_size": tree_size, "audit_path": [h.hex() for h in path]}


@router.get("/proof/consistency")
def consistency_proof(
    session: SessionDep,
    first: int = Query(..., ge=0, description="The older tree size."),
    second: int = Query(..., ge=0, description="The newer tree size."),
) -> dict[str, Any]:
    """The proof that the tree of ``second`` entries extends the one of ``first``."""
    log = open_log(session)
    _check_size(second, log.size, "tree size")
    if first > second:
        raise BadRequestError(f"no consistency proof from size {first} down to {second}")
    proof = log.consistency_proof(first, second)
    return {"first": first, "second": second, "proof": [h.hex() for h in proof]}


@router.get("/entries", response_model=LogEntriesPage)
def entries(
    session: SessionDep,
    principal: RequiredPrincipal,
    start: int = Query(0, ge=0, description="First index."),
    end: int | None = Query(None, ge=0, description="Stop before this index (default: size)."),
    limit: int = Query(500, ge=1, le=1000, description="Entries per page."),
) -> dict[str, Any]:
    """Entries ``[start, min(end, start + limit))`` as canonical JSON text (signed-in users)."""
    log = open_log(session)
    size = log.size
    stop = min(size if end is None else end, start + limit, size)
    items = []
    if start < stop:
        visibility = LogVisibility(session, principal)
        items = [
            visibility.document(start + i, data)
            for i, data in enumerate(log.iter_entries(start, stop))
        ]
    last = size if end is None else min(end, size)
    return {"tree_size": size, "items": items, "next": stop if stop < last else None}


@router.get("/entries/{index}")
def entry(
    index: int, session: SessionDep, principal: RequiredPrincipal, tree_size: int | None = None
) -> dict[str, Any]:
    """One entry with its audit path (in the tree of ``tree_size``, default: the whole log)."""
    log = open_log(session)
    size = log.size if tree_size is None else tree_size
    _check_size(size, log.size, "tree size")
    if not 0 <= index < size:
        raise NotFoundError(f"no log entry {index} in a tree of size {size}")
    return {
        **LogVisibility(session, principal).document(index, log.entry_bytes(index)),
        "tree_size": size,
        "audit_path": [h.hex() for h in log.inclusion_proof(index, size)],
    }


@router.get("/versions/{namespace}/{model}/{version}", response_model=ProvenEntryDoc)
def version_entry(
    row: ReadNamespace,
    model: str,
    version: str,
    session: SessionDep,
    tree_size: int | None = Query(None, ge=1, description="Prove against this tree size."),
) -> dict[str, Any]:
    """The publish (or quarantine) entry of a version and its audit path."""
    check_name(model, "model name")
    check_version(version)
    subject = f"{row.name}/{model}:{version}"
    log = open_log(session)
    size = log.size if tree_size is None else tree_size
    _check_size(size, log.size, "tree size")
    found = None
    for kind in (EntryKind.PUBLISH, EntryKind.QUARANTINE):
        found = find_entry(session, kind, subject)
        if found is not None:
            break
    if found is None or found[0] >= size:
        raise NotFoundError(
            f"{subject} has no entry in the transparency log"
            + (f" of size {size}" if found is not None else ""),
            advice="a version the log does not hold must not be trusted",
        )
    return _proven(log, found, size)


def _proven(log: Any, found: tuple[int, bytes], size: int) -> dict[str, Any]:
    """An entry with its audit path in the tree of ``size``."""
    index, data = found
    return {
        "index": index,
        "entry": data.decode("utf-8"),
        "tree_size": size,
        "audit_path": [h.hex() for h in log.inclusion_proof(index, size)],
    }


def _sized(session: SessionDep, tree_size: int | None) -> tuple[Any, int]:
    log = open_log(session)
    size = log.size if tree_size is None else tree_size
    _check_size(size, log.size, "tree size")
    return log, size


@router.get("/tags/{namespace}/{model}/{tag}", response_model=ProvenEntryDoc)
def tag_entry(
    row: ReadNamespace,
    model: str,
    tag: str,
    session: SessionDep,
    tree_size: int | None = Query(None, ge=1, description="Prove against this tree size."),
) -> dict[str, Any]:
    """The newest ``tag-move`` entry of a tag within ``tree_size`` and its audit path.

    A client takes a tag's target and serial from this entry (checked against a signed
    tree head), never from the resolve document.
    """
    subject = f"{row.name}/{check_name(model, 'model name')}#{check_version(tag, 'tag')}"
    log, size = _sized(session, tree_size)
    found = find_entry(session, EntryKind.TAG_MOVE, subject, below=size)
    if found is None:
        raise NotFoundError(f"tag {subject} has no entry in the transparency log of size {size}")
    return _proven(log, found, size)


@router.get("/keys/{namespace}/{fingerprint}", response_model=KeyEntriesDoc)
def key_entries(
    row: ReadNamespace,
    fingerprint: str,
    session: SessionDep,
    tree_size: int | None = Query(None, ge=1, description="Prove against this tree size."),
) -> dict[str, Any]:
    """The newest ``key-trust`` entry of a namespace's key and its newest ``key-revoke``
    entry (``null`` if none), each with its audit path."""
    subject = f"{row.name} key {fingerprint[:64]}"
    log, size = _sized(session, tree_size)
    trusted = find_entry(session, EntryKind.KEY_TRUST, subject, below=size)
    if trusted is None:
        raise NotFoundError(
            f"key {fingerprint[:16]} of {row.name} has no key-trust entry in the log",
            advice="a key the log does not hold must not be trusted",
        )
    revoked = find_entry(session, EntryKind.KEY_REVOKE, subject, below=size)
    return {
        "trust": _proven(log, trusted, size),
        "revoke": None if revoked is None else _proven(log, revoked, size),
    }
