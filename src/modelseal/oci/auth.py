"""Credentials for OCI registries, found where other OCI tools keep them.

Order: explicit ``username``/``password`` (or ``MODELSEAL_OCI_USERNAME`` /
``MODELSEAL_OCI_PASSWORD``), then ``$DOCKER_CONFIG/config.json`` or
``~/.docker/config.json`` (the ``auths`` section: ``auth`` = base64 of
``user:password``, or ``identitytoken``). Credential helpers (``credsStore``,
``credHelpers``) run external programs and are not used: export the
credentials instead (documented in docs/oci.md).

The registry token flow (distribution spec "token authentication"): a 401 with
``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` is answered by a GET
on ``realm`` (with the basic credentials when there are any) that returns a JSON
``token`` / ``access_token``; a 401 with ``Basic`` is answered with basic auth.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from modelseal.errors import UsageError

__all__ = ["Challenge", "Credentials", "find_credentials", "parse_challenge"]

_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    """A user name and secret for one registry (never printed)."""

    username: str
    password: str
    #: An OAuth2 refresh token from ``docker login`` (``identitytoken``) instead of a password.
    identity_token: str | None = None

    def basic_header(self) -> str:
        """The ``Authorization`` header value for basic auth."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    """``Bearer realm="https://auth",service="reg",scope="repository:a:pull"`` -> Challenge."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def _docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def find_credentials(
    host: str, *, username: str | None = None, password: str | None = None
) -> Credentials | None:
    """The credentials to use for registry ``host``, or None for anonymous access."""
    username = username or os.environ.get("MODELSEAL_OCI_USERNAME")
    password = password if password is not None else os.environ.get("MODELSEAL_OCI_PASSWORD")
    if username:
        return Credentials(username, password or "")
    path = _docker_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    try:
        auths = json.loads(text).get("auths", {})
    except (json.JSONDecodeError, AttributeError):
        raise UsageError(f"{path} is not a valid Docker config file") from None
    if not isinstance(auths, dict):
        return None
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v2/"):
        entry = auths.get(key)
        if isinstance(entry, dict):
            return _entry_credentials(entry, path, key)
    return None


def _entry_credentials(entry: dict[str, object], path: Path, key: str) -> Credentials | None:
    token = entry.get("identitytoken")
    auth = entry.get("auth")
    user, secret = "", ""
    if isinstance(auth, str) and auth:
        try:
            user, _, secret = base64.b64decode(auth, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise UsageError(
                f"{path}: the 'auth' entry for {key} is not base64 of user:password"
            ) from None
    elif isinstance(entry.get("username"), str):
        user, secret = str(entry["username"]), str(entry.get("password", ""))
    if isinstance(token, str) and token:
        return Credentials(user or "<token>", secret, identity_token=token)
    return Credentials(user, secret) if user else None
