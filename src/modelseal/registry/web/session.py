"""Browser sessions for the web pages: a signed token reference in a cookie, and CSRF tokens.

Signing in posts an API token once. The server checks it with the app's identity
provider and answers with a cookie that holds only a *reference* to that token (its
row id and a prefix of its stored hash), an expiry time and an HMAC-SHA256 over
them with the server's web key. The token itself is never stored in the browser.
Every request re-reads the token row, so revoking or expiring the token ends the
web session at once. The cookie is ``Secure``, ``HttpOnly`` and ``SameSite=Strict``.

Form posts carry a CSRF token: an HMAC of a random nonce kept in a second cookie of
the same kind (a signed double-submit cookie); the nonce is renewed at sign-in.

The web key comes from ``MODELSEAL_REGISTRY_WEB_SECRET`` (give every replica the same
value), else from ``web-session.key`` under the data directory, created on first use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelseal._io import atomic_write

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.db.models import Token
    from modelseal.registry.identity import Principal

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "WEB_SECRET_ENV",
    "SessionRef",
    "csrf_token",
    "load_web_key",
    "new_nonce",
    "principal_for",
    "read_session",
    "sign_session",
    "valid_csrf",
]

#: Cookie holding the signed session reference.
SESSION_COOKIE = "modelseal_session"
#: Cookie holding the CSRF nonce.
CSRF_COOKIE = "modelseal_csrf"
#: Longest life of a web session (shorter when the token expires sooner).
SESSION_SECONDS = 8 * 3600
#: Environment variable with the web key shared by replicas.
WEB_SECRET_ENV = "MODELSEAL_REGISTRY_WEB_SECRET"
_KEY_FILE = "web-session.key"
_HASH_PREFIX = 16


@dataclass(frozen=True)
class SessionRef:
    """What a session cookie says: which token, bound to which hash, valid until when."""

    token_id: int
    token_hash_prefix: str
    expires: int


def load_web_key(data_dir: Path, environ: dict[str, str] | None = None) -> bytes:
    """The server's web key: from the environment, else a file under ``data_dir``.

    The file is created (mode 0600) with 32 random bytes the first time.
    """
    env = os.environ if environ is None else environ
    shared = env.get(WEB_SECRET_ENV, "")
    if shared:
        return hashlib.sha256(shared.encode("utf-8")).digest()
    path = data_dir / _KEY_FILE
    if not path.exists():
        atomic_write(path, secrets.token_hex(32) + "\n", mode=0o600)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, data: bytes) -> bytes:
    return hmac.new(key, purpose.encode("ascii") + b"\0" + data, hashlib.sha256).digest()


def sign_session(key: bytes, token: Token, *, now: float | None = None) -> tuple[str, int]:
    """A cookie value referring to ``token`` and its lifetime in seconds."""
    now = time.time() if now is None else now
    expires = int(now) + SESSION_SECONDS
    if token.expires_at is not None:
        expires = min(expires, int(token.expires_at.timestamp()))
    payload = json.dumps(
        {"t": token.id, "h": token.token_hash[:_HASH_PREFIX], "e": expires},
        separators=(",", ":"),
    ).encode("ascii")
    value = _b64(payload) + "." + _b64(_mac(key, "session", payload))
    return value, max(0, expires - int(now))


def read_session(key: bytes, value: str | None, *, now: float | None = None) -> SessionRef | None:
    """The reference in a cookie value, or ``None`` when it is missing, forged or expired."""
    if not value or len(value) > 512 or value.count(".") != 1:
        return None
    body, _, mac = value.partition(".")
    try:
        payload = _unb64(body)
        if not hmac.compare_digest(_unb64(mac), _mac(key, "session", payload)):
            return None
        data = json.loads(payload)
        ref = SessionRef(int(data["t"]), str(data["h"]), int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    if ref.expires <= (time.time() if now is None else now):
        return None
    return ref


def principal_for(session: Session, ref: SessionRef) -> Principal | None:
    """The principal of a session's token if the token is still valid (else ``None``)."""
    from modelseal.registry.db.models import Token
    from modelseal.registry.identity import principal_for_token

    token = session.get(Token, ref.token_id)
    if token is None or not hmac.compare_digest(
        token.token_hash[:_HASH_PREFIX], ref.token_hash_prefix
    ):
        return None
    return principal_for_token(token)


def new_nonce() -> str:
    """A fresh CSRF nonce for the CSRF cookie."""
    return secrets.token_urlsafe(24)


def csrf_token(key: bytes, nonce: str) -> str:
    """The form field value that proves a post comes from our own page."""
    return _b64(_mac(key, "csrf", nonce.encode("utf-8")))


def valid_csrf(key: bytes, nonce: str | None, submitted: str | None) -> bool:
    """Whether a posted CSRF token matches the nonce cookie."""
    if not nonce or not submitted or len(submitted) > 100:
        return False
    return hmac.compare_digest(csrf_token(key, nonce), submitted)
