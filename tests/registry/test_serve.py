"""``modelseal serve`` itself: the address the rate limit counts, and a busy port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.conftest import free_port

EXE = [sys.executable, "-m", "modelseal"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=120, check=False)


@contextlib.contextmanager
def _serve(data: Path, *extra: str) -> Iterator[str]:
    """`modelseal serve` on a free loopback port (bounded start, terminated at the end)."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = data.parent / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                *EXE,
                "serve",
                "--data",
                str(data),
                "--port",
                str(port),
                "--log-level",
                "warning",
                *extra,
            ],
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise TimeoutError(f"modelseal serve did not answer: {log.read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A registry data directory with user ``pub`` (namespace ``pub``, private)."""
    data = tmp_path / "data"
    assert _run("admin", "--data", str(data), "create-user", "pub").returncode == 0
    return data


def _token(data: Path) -> str:
    made = _run("admin", "--data", str(data), "token", "create", "pub", "-a", "read")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _get(url: str, token: str | None, forwarded: str | None) -> int:
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    if forwarded:
        headers["x-forwarded-for"] = forwarded
    return httpx.get(url + "/v1/namespaces/pub/models", headers=headers, timeout=30).status_code


def test_forwarded_for_is_ignored_and_anonymous_reads_never_lock_out(data: Path) -> None:
    good = _token(data)
    with _serve(data) as url:
        # Anonymous reads "from" the token holder's address: logged, never counted.
        assert {_get(url, None, "127.0.0.1") for _ in range(15)} == {401}
        assert _get(url, good, None) == 200
        # Rotating X-Forwarded-For does not give fresh guesses: the peer address counts.
        codes = [_get(url, f"msk_guess{i}", f"10.0.0.{i}") for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    from sqlalchemy import create_engine, select

    from modelseal.registry.db.models import AuthEvent

    engine = create_engine(f"sqlite:///{data / 'registry.db'}")
    with engine.connect() as conn:
        rows = conn.execute(select(AuthEvent.kind, AuthEvent.client)).all()
    engine.dispose()
    assert {client for _, client in rows} == {"127.0.0.1"}
    assert sum(kind == "anonymous" for kind, _ in rows) == 15
    assert sum(kind == "unauthenticated" for kind, _ in rows) == 10


def test_a_trusted_proxy_names_the_client(data: Path) -> None:
    with _serve(data, "--trusted-proxy", "127.0.0.1") as url:
        codes = [_get(url, f"msk_guess{i}", f"10.0.0.{i}") for i in range(12)]
        assert set(codes) == {401}  # twelve different clients, one failure each
        for _ in range(10):
            _get(url, "msk_again", "10.9.9.9")
        assert _get(url, "msk_again", "10.9.9.9") == 429
        assert _get(url, "msk_other", "10.0.0.1") == 401


def test_serve_on_a_busy_port_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = _run("serve", "--data", str(tmp_path / "d"), "--port", str(port))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "registry on" not in result.stderr
    assert not (tmp_path / "d").exists()
