"""Session cookies and CSRF tokens of the web pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

from modelseal.registry.web import session as web_session


def _token(expires: dt.datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=7, token_hash="ab" * 32, expires_at=expires)


def test_a_session_cookie_round_trips_and_refuses_tampering() -> None:
    key = b"k" * 32
    value, max_age = web_session.sign_session(key, _token(), now=1000.0)  # type: ignore[arg-type]
    assert max_age == web_session.SESSION_SECONDS
    ref = web_session.read_session(key, value, now=1001.0)
    assert ref == web_session.SessionRef(7, "ab" * 8, 1000 + web_session.SESSION_SECONDS)
    assert web_session.read_session(b"x" * 32, value, now=1001.0) is None  # other key
    body, mac = value.split(".")
    assert web_session.read_session(key, body + "." + mac[::-1], now=1001.0) is None
    assert web_session.read_session(key, body[:-1] + "." + mac, now=1001.0) is None
    for junk in ("", ".", "a.b.c", "x" * 600, "%%%.%%%"):
        assert web_session.read_session(key, junk, now=1001.0) is None


def test_a_session_ends_with_its_lifetime_or_its_token() -> None:
    key = b"k" * 32
    value, _ = web_session.sign_session(key, _token(), now=1000.0)  # type: ignore[arg-type]
    late = 1000.0 + web_session.SESSION_SECONDS
    assert web_session.read_session(key, value, now=late) is None
    soon = dt.datetime.fromtimestamp(1600, tz=dt.timezone.utc)
    short, max_age = web_session.sign_session(key, _token(soon), now=1000.0)  # type: ignore[arg-type]
    assert max_age == 600
    assert web_session.read_session(key, short, now=1599.0) is not None
    assert web_session.read_session(key, short, now=1600.0) is None


def test_csrf_tokens_bind_to_the_nonce_and_key() -> None:
    key = b"k" * 32
    nonce = web_session.new_nonce()
    token = web_session.csrf_token(key, nonce)
    assert web_session.valid_csrf(key, nonce, token)
    assert not web_session.valid_csrf(key, web_session.new_nonce(), token)
    assert not web_session.valid_csrf(b"o" * 32, nonce, token)
    assert not web_session.valid_csrf(key, None, token)
    assert not web_session.valid_csrf(key, nonce, "")
    assert not web_session.valid_csrf(key, nonce, token + "A" * 100)


def test_the_web_key_is_created_once_private_or_taken_from_the_environment(
    tmp_path: Path,
) -> None:
    first = web_session.load_web_key(tmp_path, environ={})
    assert len(first) == 32
    key_file = tmp_path / "web-session.key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert web_session.load_web_key(tmp_path, environ={}) == first
    shared = {web_session.WEB_SECRET_ENV: "replicas share this"}
    from_env = web_session.load_web_key(tmp_path / "other", environ=shared)
    assert from_env != first
    assert web_session.load_web_key(tmp_path / "third", environ=shared) == from_env
    assert not (tmp_path / "other").exists()
