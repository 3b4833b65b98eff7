"""The web pages' router: server-rendered HTML over the same data and rights as the API.

Pages reuse the API's authorisation (``auth.authorize`` / ``allowed_actions``) and
documents (``services.catalog``), so a browser sees exactly what the
same token sees through ``/v1``: private namespaces are invisible without rights,
quarantine reasons need push rights. Every page answers with a ``Server-Timing``
header (``app;dur=MS``) and a strict Content-Security-Policy (no scripts at all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from modelseal.errors import ModelsealError, RegistryError
from modelseal.registry.auth import SessionDep, allowed_actions, authorize, record_refusal
from modelseal.registry.db.models import Namespace, TrustedKey, Version
from modelseal.registry.errors import (
    ForbiddenError,
    NotFoundError,
    UnauthenticatedError,
)
from modelseal.registry.identity import Principal
from modelseal.registry.services import catalog, tags
from modelseal.registry.services.catalog import require_full_view, version_doc
from modelseal.registry.transparency_store import recent_tree_heads
from modelseal.registry.web import logview, views
from modelseal.registry.web import session as web_session

__all__ = ["router"]

_log = logging.getLogger("modelseal.registry.web")

_HERE = Path(__file__).resolve().parent
_STATIC = _HERE / "static"
_PAGE_SIZE = 50
_MAX_SBOM_VIEW = 8 * 1024 * 1024
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_STATUS_TEXT = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    429: "Too many attempts",
    500: "Server error",
}


class _WebRoute(APIRoute):
    """Times each page, adds security headers, and renders errors as HTML pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            start = time.perf_counter()
            try:
                response = await handler(request)
            except ModelsealError as exc:
                response = _error_page(request, exc)
            except RequestValidationError:
                response = _error_page(request, NotFoundError("no such page"))
            except HTTPException as exc:
                response = _error_page(
                    request, ModelsealError(str(exc.detail)), status=exc.status_code
                )
            except Exception:
                _log.exception("internal error on %s %s", request.method, request.url.path)
                response = _error_page(
                    request,
                    ModelsealError("internal server error", advice="try again later"),
                    status=500,
                )
            elapsed = (time.perf_counter() - start) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
            response.headers.setdefault("Content-Security-Policy", _CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return route


router = APIRouter(route_class=_WebRoute, include_in_schema=False)


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=True,
        undefined=StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        namespace_url=views.namespace_url,
        model_url=views.model_url,
        version_url=views.version_url,
        quote=quote,
    )
    env.filters.update(
        size=_format_size, when=_format_time, short=_short, capfirst=_capfirst, sentence=_sentence
    )
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)  # compile every template now, not on some visitor's request
    return env


def _format_size(value: int | None) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


def _format_time(value: Any) -> str:
    import datetime as dt

    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ""


def _capfirst(value: str | None) -> str:
    text = value or ""
    return text[:1].upper() + text[1:]


def _sentence(value: str | None) -> str:
    text = _capfirst(value).rstrip()
    return text if not text or text[-1] in ".!?)" else text + "."


def _short(value: str | None, length: int = 12) -> str:
    return (value or "")[:length]


#: Built when the app mounts the router (``create_app`` imports this module).
_ENV: Any = _environment()


def _templates() -> Any:
    return _ENV


# --- session and rendering ---------------------------------------------------------


def _web_key(request: Request) -> bytes:
    key: bytes | None = getattr(request.app.state, "web_key", None)
    if key is None:
        key = web_session.load_web_key(request.app.state.settings.data_dir)
        request.app.state.web_key = key
    return key


def _viewer(request: Request, session: SessionDep) -> Principal | None:
    """The signed-in user of the session cookie (``None`` when anonymous)."""
    raw = request.cookies.get(web_session.SESSION_COOKIE)
    principal = None
    if raw:
        ref = web_session.read_session(_web_key(request), raw)
        principal = web_session.principal_for(session, ref) if ref else None
        if principal is None:
            request.state.clear_session = True
    request.state.viewer = principal
    return principal


Viewer = Annotated[Principal | None, Depends(_viewer)]


def _secure_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict"
    )


def _nonce(request: Request) -> str:
    nonce = getattr(request.state, "csrf_nonce", None) or request.cookies.get(
        web_session.CSRF_COOKIE
    )
    if not nonce or len(nonce) > 64:
        nonce = web_session.new_nonce()
        request.state.new_csrf_nonce = nonce
    request.state.csrf_nonce = nonce
    return str(nonce)


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    viewer = getattr(request.state, "viewer", None)
    try:
        key = _web_key(request)
        csrf = web_session.csrf_token(key, _nonce(request))
    except OSError:  # the data directory is not writable: pages still render
        csrf = ""
    html = (
        _templates()
        .get_template(template)
        .render(request_path=request.url.path, viewer=viewer, csrf=csrf, **context)
    )
    response = HTMLResponse(html, status_code=status)
    new_nonce = getattr(request.state, "new_csrf_nonce", None)
    if new_nonce:
        _secure_cookie(response, web_session.CSRF_COOKIE, new_nonce, 24 * 3600)
    if getattr(request.state, "clear_session", False):
        response.delete_cookie(
            web_session.SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
        )
    return response


def _error_page(request: Request, exc: ModelsealError, status: int | None = None) -> Response:
    from modelseal.registry.errors import http_status

    if status is None:
        status = http_status(exc) if isinstance(exc, RegistryError) else 400
    if isinstance(exc, UnauthenticatedError) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _render(
            request,
            "error.html",
            401,
            title="Sign in needed",
            message="This page is not public, or does not exist. Sign in to see it if you may.",
            advice=None,
            login_next=target,
        )
    return _render(
        request,
        "error.html",
        status,
        title=_STATUS_TEXT.get(status, "Error"),
        message=exc.message,
        advice=exc.advice,
        login_next=None,
    )


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 0x20 for ch in target):
        return "/"
    return target


def _check_form(request: Request, csrf: str) -> None:
    origin = request.headers.get("origin")
    # Hosts only: behind a TLS proxy the app may see http while the browser says https.
    if origin and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
        raise ForbiddenError("cross-site form post refused", advice="use the registry's page")
    nonce = request.cookies.get(web_session.CSRF_COOKIE)
    if not web_session.valid_csrf(_web_key(request), nonce, csrf):
        raise ForbiddenError(
            "the form has expired or did not come from this site",
            advice="reload the page and submit the form again",
        )


def _authorize(
    request: Request, session: SessionDep, viewer: Principal | None, namespace: str, action: str
) -> Namespace:
    """``auth.authorize`` for a signed-in viewer or a public read.

    An anonymous visitor asking for anything else is asked to sign in without a
    failed-authentication record: not being signed in is no bad credential, and the
    record would count towards the address's rate limit.
    """
    if viewer is None:
        row = catalog.find_namespace(session, namespace)
        if row is None or not row.public or action != "read":
            raise UnauthenticatedError(f"{action} on namespace {namespace!r} needs signing in")
    return authorize(request, session, viewer, namespace, action)


# --- static -------------------------------------------------------------------------


@router.get("/static/style.css")
def stylesheet() -> Response:
    """The one stylesheet (cached for a day)."""
    data = (_STATIC / "style.css").read_bytes()
    return Response(
        data,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=86400"},
    )


# --- sign in and out ----------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, viewer: Viewer, next: str = "/") -> Response:
    """The sign-in form: paste an API token."""
    return _render(request, "login.html", title="Sign in", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form(max_length=300)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the token, then set the session cookie and go to ``next``."""
    from modelseal.registry.auth import check_rate_limit  # shared failed-login limit
    from modelseal.registry.db.models import Token

    request.state.viewer = None
    _check_form(request, csrf)
    check_rate_limit(request, session, request.app.state.settings)
    principal = request.app.state.identity.authenticate(session, token.strip())
    row = session.get(Token, principal.token_id) if principal and principal.token_id else None
    if principal is None or row is None:
        record_refusal(request, "unauthenticated", "web sign-in with an invalid token")
        return _render(
            request,
            "login.html",
            401,
            title="Sign in",
            next=_safe_next(next),
            error="That token is unknown, expired or revoked.",
        )
    value, max_age = web_session.sign_session(_web_key(request), row)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _secure_cookie(response, web_session.SESSION_COOKIE, value, max_age)
    _secure_cookie(response, web_session.CSRF_COOKIE, web_session.new_nonce(), 24 * 3600)
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """End the browser session (the API token itself stays valid)."""
    _check_form(request, csrf)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(
        web_session.SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict"
    )
    _secure_cookie(response, web_session.CSRF_COOKIE, web_session.new_nonce(), 24 * 3600)
    return response


# --- browsing -----------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The namespaces the viewer can read."""
    items, next_after = catalog.readable_namespaces(session, viewer, after, _PAGE_SIZE)
    counts = catalog.model_counts(session, [n.id for n, _ in items])
    rows = [
        {
            "name": n.name,
            "public": n.public,
            "models": counts.get(n.id, 0),
            "role": _role_label(actions),
            "threshold": n.scan_threshold,
            "require_signature": n.require_signature,
        }
        for n, actions in items
    ]
    return _render(
        request, "index.html", title="Namespaces", namespaces=rows, next_after=next_after, q=""
    )


def _role_label(actions: set[str]) -> str:
    if "admin" in actions:
        return "admin"
    if "push" in actions:
        return "publisher"
    return "reader"


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Models whose name contains ``q`` in namespaces the viewer can read."""
    found = catalog.search_models(session, viewer, q, 0, _PAGE_SIZE)[0] if q.strip() else []
    results = [catalog.model_doc(session, model) for model in found]
    return _render(request, "search.html", title=f"Search: {q}", q=q, results=results)


def _keys(session: SessionDep, namespace: Namespace) -> dict[str, TrustedKey]:
    return {k.fingerprint: k for k in catalog.trusted_keys(session, namespace, revoked=True)}


@router.get("/n/{namespace}", response_class=HTMLResponse)
def namespace_page(
    namespace: str,
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """A namespace: its models, settings and trusted keys."""
    row = _authorize(request, session, viewer, namespace, "read")
    actions = allowed_actions(session, viewer, row)
    models, next_after = catalog.list_models(session, row, after, _PAGE_SIZE)
    ids = [m.id for m in models]
    latest = catalog.latest_published(session, ids)
    counts = catalog.version_counts(session, ids)
    quarantined = catalog.quarantine_count(session, row, viewer) if "push" in actions else None
    keys = sorted(_keys(session, row).values(), key=lambda k: (k.revoked_at is not None, k.name))
    return _render(
        request,
        "namespace.html",
        title=row.name,
        ns=row,
        role=_role_label(actions),
        models=[
            {
                "name": m.name,
                "description": m.description,
                "latest": latest.get(m.id),
                "versions": counts.get(m.id, 0),
            }
            for m in models
        ],
        next_after=next_after,
        keys=keys,
        quarantined=quarantined,
    )


@router.get("/n/{namespace}/-/quarantine", response_class=HTMLResponse)
def quarantine_page(
    namespace: str,
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    before: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Quarantined uploads with their reasons (namespace admins; publishers see their own)."""
    row = _authorize(request, session, viewer, namespace, "push")
    actions = allowed_actions(session, viewer, row)
    versions, next_before = catalog.quarantined_versions(
        session, row, viewer, before=before, limit=_PAGE_SIZE
    )
    keys = _keys(session, row)
    items = []
    for version in versions:
        doc = version_doc(session, version, show_reasons=True)
        items.append(
            {
                "doc": doc,
                "signature": views.signature_status(
                    doc, keys, require_signature=row.require_signature
                ),
            }
        )
    return _render(
        request,
        "quarantine.html",
        title=f"Quarantine of {row.name}",
        ns=row,
        all_uploads="admin" in actions,
        items=items,
        next_before=next_before,
    )


@router.get("/n/{namespace}/{model}", response_class=HTMLResponse)
def model_page(
    namespace: str,
    model: str,
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    before: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """A model: its tags and versions, newest first."""
    row = _authorize(request, session, viewer, namespace, "read")
    actions = allowed_actions(session, viewer, row)
    found = catalog.get_model(session, row, model)
    versions, next_before = catalog.newest_versions(session, found, before=before, limit=_PAGE_SIZE)
    model_tags = tags.list_tags(session, found)
    by_version: dict[int, list[str]] = {}
    for tag in model_tags:
        by_version.setdefault(tag.version_id, []).append(tag.name)
    uploaders = catalog.user_names(session, {v.uploader_id for v in versions if v.uploader_id})
    keys = _keys(session, row)
    items = []
    for version in versions:
        doc = {
            "signed_by": version.signed_by,
            "signature_digest": version.signature_digest,
        }
        items.append(
            {
                "name": version.name,
                "state": version.state,
                "verdict": version.scan_verdict,
                "size": version.total_size,
                "created_at": version.created_at,
                "uploader": uploaders.get(version.uploader_id or -1),
                "tags": by_version.get(version.id, []),
                "signature": views.signature_status(
                    doc, keys, require_signature=row.require_signature
                ),
            }
        )
    return _render(
        request,
        "model.html",
        title=f"{row.name}/{found.name}",
        ns=row,
        model=found,
        tags=[(tag.name, tag.version.name) for tag in model_tags],
        versions=items,
        next_before=next_before,
        can_push="push" in actions,
    )


def _find_version(
    request: Request,
    session: SessionDep,
    viewer: Principal | None,
    namespace: str,
    model: str,
    ref: str,
) -> tuple[Namespace, Version, set[str]]:
    row = _authorize(request, session, viewer, namespace, "read")
    found, _ = catalog.resolve_version(session, catalog.get_model(session, row, model).id, ref)
    return row, found, allowed_actions(session, viewer, row)


@router.get("/n/{namespace}/{model}/v/{version}", response_class=HTMLResponse)
def version_page(
    namespace: str,
    model: str,
    version: str,
    request: Request,
    session: SessionDep,
    viewer: Viewer,
) -> Response:
    """A version: state, signature, scan findings, files, SBOM and lineage."""
    row, found, actions = _find_version(request, session, viewer, namespace, model, version)
    doc = version_doc(session, found, show_reasons="push" in actions)
    keys = _keys(session, row)
    full = found.state == "published" or "push" in actions  # readers: only the state
    scan = views.scan_view(found.scan_report if full else None, found.scan_verdict)
    return _render(
        request,
        "version.html",
        title=f"{row.name}/{found.model.name}:{found.name}",
        ns=row,
        v=doc,
        can_push="push" in actions,
        signature=views.signature_status(doc, keys, require_signature=row.require_signature),
        scan=scan,
        file_scan={f.path: f for f in scan.files},
        lineage=views.lineage(session, viewer, found),
        max_findings=views.MAX_FINDINGS,
        log_index=logview.version_entry(session, row.name, found.model.name, found.name),
    )


def _sbom_bytes(request: Request, found: Version, actions: set[str]) -> bytes:
    require_full_view(found, "push" in actions, "SBOM")
    if not found.sbom_digest:
        raise NotFoundError(f"version {found.name!r} has no SBOM")
    data: bytes = request.app.state.store.read_bytes(found.sbom_digest)
    return data


@router.get("/n/{namespace}/{model}/v/{version}/sbom", response_class=HTMLResponse)
def sbom_page(
    namespace: str,
    model: str,
    version: str,
    request: Request,
    session: SessionDep,
    viewer: Viewer,
) -> Response:
    """The SBOM of a version: its subject, warnings and components."""
    row, found, actions = _find_version(request, session, viewer, namespace, model, version)
    data = _sbom_bytes(request, found, actions)
    view = (
        views.sbom_view(data)
        if len(data) <= _MAX_SBOM_VIEW
        else views.SbomView("", "", "", "", (), (), (), 0, error="too large to show; download it")
    )
    return _render(
        request,
        "sbom.html",
        title=f"SBOM of {row.name}/{found.model.name}:{found.name}",
        ns=row,
        model=found.model,
        version=found,
        sbom=view,
        size=len(data),
    )


@router.get("/n/{namespace}/{model}/v/{version}/sbom.json")
def sbom_download(
    namespace: str,
    model: str,
    version: str,
    request: Request,
    session: SessionDep,
    viewer: Viewer,
) -> Response:
    """The stored SBOM document, as a download."""
    row, found, actions = _find_version(request, session, viewer, namespace, model, version)
    data = _sbom_bytes(request, found, actions)
    filename = f"{row.name}-{found.model.name}-{found.name}.cdx.json"
    return Response(
        data,
        media_type="application/vnd.cyclonedx+json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"; '
            f"filename*=UTF-8''{quote(filename)}"
        },
    )


# --- transparency log ---------------------------------------------------------------


def _tree_head(request: Request, session: SessionDep) -> Any:
    return request.app.state.log.tree_head(session)


@router.get("/log", response_class=HTMLResponse)
def log_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    before: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The latest signed tree head, the log's key, recent heads and (signed in) the entries."""
    service = request.app.state.log
    sth = _tree_head(request, session)
    heads = [
        logview.tree_head_view(head)
        for head in recent_tree_heads(session, service.signer.key_id, 10)
    ]
    entries = None
    next_before = None
    if viewer is not None:
        stop = min(before or sth.tree_size, sth.tree_size)
        start = max(0, stop - _PAGE_SIZE)
        entries = logview.entry_rows(session, viewer, start, stop)
        next_before = start if start > 0 else None
    return _render(
        request,
        "log.html",
        title="Transparency log",
        sth=logview.tree_head_view(sth),
        public_key_pem=service.signer.public_key_pem(),
        heads=heads,
        entries=entries,
        next_before=next_before,
    )


@router.get("/log/consistency", response_class=HTMLResponse)
def log_consistency_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    first: Annotated[int, Query(ge=0)] = 0,
    second: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The consistency proof between two tree sizes (hashes only, so public)."""
    sth = _tree_head(request, session)
    proof = logview.consistency(session, first, sth.tree_size if second is None else second)
    return _render(
        request,
        "log_consistency.html",
        title=f"Consistency of tree sizes {proof.first} and {proof.second}",
        proof=proof,
        size=sth.tree_size,
    )


@router.get("/log/{index}", response_class=HTMLResponse)
def log_entry_page(index: int, request: Request, session: SessionDep, viewer: Viewer) -> Response:
    """One entry with its audit path to the latest signed tree head (signed-in viewers)."""
    if viewer is None:
        raise UnauthenticatedError("log entries are shown to signed-in users")
    rows = logview.entry_rows(session, viewer, index, index + 1) if index >= 0 else []
    if not rows or not rows[0].visible:
        raise NotFoundError(f"no log entry {index} visible to {viewer.name}")
    sth = _tree_head(request, session)
    row = rows[0]
    return _render(
        request,
        "log_entry.html",
        title=f"Log entry {index}",
        entry=row,
        sth=logview.tree_head_view(sth),
        proof=logview.inclusion(session, index, bytes.fromhex(row.leaf_hash), sth),
    )
