"""Registry errors: each maps to one HTTP status and one stable ``code`` string.

The server renders them as ``{"error": {"code", "message", "advice"}}``; the client
turns that document back into the same exception class, so library callers catch
one hierarchy whichever side refused.
"""

from __future__ import annotations

from modelseal.errors import AuthError, RegistryError, VerificationError

__all__ = [
    "BadRequestError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "QuarantinedError",
    "RateLimitedError",
    "RollbackError",
    "TooLargeError",
    "UnauthenticatedError",
    "UnavailableError",
    "error_from_payload",
    "http_status",
]


class BadRequestError(RegistryError):
    """The request is malformed (a bad name, path, digest or body)."""

    code = "bad_request"
    status = 400


class UnauthenticatedError(AuthError):
    """No credentials, or credentials that are unknown, expired or revoked."""

    code = "unauthenticated"
    status = 401


class ForbiddenError(AuthError):
    """The caller is known but may not do this in this namespace."""

    code = "forbidden"
    status = 403


class NotFoundError(RegistryError):
    """No such namespace, model, version, tag, upload or blob (or not visible to the caller)."""

    code = "not_found"
    status = 404


class ConflictError(RegistryError):
    """The thing exists already (versions are immutable) or the state does not allow this."""

    code = "conflict"
    status = 409


class TooLargeError(RegistryError):
    """An upload exceeds the server's size limits."""

    code = "too_large"
    status = 413


class RateLimitedError(AuthError):
    """Too many failed authentications, or too much work queued by one user; wait and retry."""

    code = "rate_limited"
    status = 429


class UnavailableError(RegistryError):
    """The server is at capacity (the publish gate's queue is full); retry later."""

    code = "unavailable"
    status = 503


class QuarantinedError(RegistryError):
    """The version did not pass the publish gate; the reasons say why."""

    code = "quarantined"
    status = 409
    exit_code = 1


class RollbackError(VerificationError):
    """A tag resolved to an older version than this client has seen for it."""

    code = "rollback"
    status = 409


_BY_CODE: dict[str, type[RegistryError]] = {
    cls.code: cls
    for cls in (
        BadRequestError,
        UnauthenticatedError,
        ForbiddenError,
        NotFoundError,
        ConflictError,
        TooLargeError,
        RateLimitedError,
        UnavailableError,
        QuarantinedError,
    )
}


def http_status(exc: RegistryError) -> int:
    """The HTTP status for a registry error (500 for the plain base class)."""
    return int(getattr(exc, "status", 500))


def error_from_payload(status: int, payload: object) -> RegistryError:
    """Rebuild the server's error on the client side from its JSON error document."""
    code, message, advice = "", f"registry answered HTTP {status}", None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        body = payload["error"]
        code = str(body.get("code", ""))
        message = str(body.get("message", message))
        advice = body.get("advice") if isinstance(body.get("advice"), str) else None
    cls = _BY_CODE.get(code, RegistryError)
    return cls(message, advice=advice)
