"""`modelseal serve` in a subprocess, driven by the CLI; and a server killed mid-upload."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.bench_registry_load import RegistryServer

from tests.samples.registry import write_model, write_pickle_model

EXE = [sys.executable, "-m", "modelseal"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the modelseal CLI; fail with its output when it exits unexpectedly."""
    result = subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RegistryServer]:
    data = tmp_path / "data"
    run("admin", "--data", str(data), "create-user", "alice", "--admin")
    instance = RegistryServer(data)
    instance.start()
    yield instance
    instance.stop()


def test_cli_workflow_against_a_served_registry(server: RegistryServer, tmp_path: Path) -> None:
    data = str(server.data)
    token = run(
        "admin", "--data", data, "token", "create", "alice", "-a", "read", "-a", "push"
    ).stdout.strip()
    assert token.startswith("msk_")
    run("keygen", "-o", str(tmp_path / "release"))
    trusted = run("admin", "--data", data, "trust-key", "alice", str(tmp_path / "release.pub.pem"))
    assert "trusts key" in trusted.stdout
    run("login", server.url, "--token", token)
    credentials = Path(os.environ["MODELSEAL_HOME"]) / "credentials.json"
    assert credentials.stat().st_mode & 0o077 == 0
    model = write_model(tmp_path / "model")
    pushed = run(
        "push",
        str(model),
        "alice/tiny:1.0",
        "--key",
        str(tmp_path / "release.priv.pem"),
        "--tag",
        "latest",
    )
    assert "published alice/tiny:1.0" in pushed.stdout
    pulled = run("pull", "alice/tiny:latest", str(tmp_path / "out"))
    assert "ok: signature verifies" in pulled.stdout
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == (
        model / "model.safetensors"
    ).read_bytes()
    # The deploy gate accepts what was pulled from the required registry, unchanged.
    origin = tmp_path / "origin.yaml"
    origin.write_text(f"name: origin\nregistry: {{required_origin: '{server.url}'}}\n")
    assert run("check", str(tmp_path / "out"), "--policy", str(origin)).returncode == 0
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("registry: {required_origin: 'http://127.0.0.1:1'}\n")
    assert run("check", str(tmp_path / "out"), "-p", str(elsewhere), check=False).returncode == 1
    (tmp_path / "out" / "config.json").write_text("{}")
    changed = run("check", str(tmp_path / "out"), "--policy", str(origin), check=False)
    assert changed.returncode == 1 and "files changed since alice/tiny:1.0" in changed.stdout
    info = json.loads(run("info", "alice/tiny:1.0", "-f", "json").stdout)
    assert info["state"] == "published" and info["tags"] == ["latest"]
    found = json.loads(run("search", "tin", "-f", "json").stdout)
    assert [item["model"] for item in found] == ["tiny"]

    evil = run(
        "push",
        str(write_pickle_model(tmp_path / "evil")),
        "alice/evil:1.0",
        "--key",
        str(tmp_path / "release.priv.pem"),
        check=False,
    )
    assert evil.returncode == 1
    assert "QUARANTINED" in evil.stderr and "pytorch_model.bin" in evil.stderr
    missing = run("pull", "alice/nothing:1.0", str(tmp_path / "nothing"), check=False)
    assert missing.returncode == 2 and "no model alice/nothing" in missing.stderr
    assert "Traceback" not in evil.stderr + missing.stderr
    run("admin", "--data", data, "token", "revoke", "1")
    revoked = run("info", "alice/tiny", check=False)
    assert revoked.returncode == 2 and "revoked" in revoked.stderr


def test_server_killed_mid_upload_leaves_no_version_and_resumes(
    server: RegistryServer, tmp_path: Path
) -> None:
    import httpx

    from modelseal.registry.client import ClientState, RegistryClient
    from modelseal.registry.manifest import walk_model

    token = run("admin", "--data", str(server.data), "token", "create", "alice").stdout.strip()
    run(
        "admin",
        "--data",
        str(server.data),
        "create-namespace",
        "lab",
        "--owner",
        "alice",
        "--no-require-signature",
    )
    model = write_model(tmp_path / "model", size=6 * 1024 * 1024)  # 24 MiB of weights
    weights = next(f for f in walk_model(model) if f.path == "model.safetensors")
    files = [f.to_dict() for f in walk_model(model)]
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url + "/v1", headers=headers, timeout=30) as http:
        upload = http.post(
            "/namespaces/lab/models/m/uploads", json={"version": "1.0", "files": files}
        ).json()

        def body() -> Iterator[bytes]:
            with open(model / "model.safetensors", "rb") as handle:
                for number in range(100):
                    chunk = handle.read(1024 * 1024)
                    if not chunk:
                        return
                    yield chunk
                    if number == 10:
                        time.sleep(0.5)  # let the server write what it received
                        server.kill()

        with pytest.raises(httpx.TransportError):
            http.patch(
                f"/uploads/{upload['id']}/blobs/{weights.digest}",
                params={"offset": 0},
                content=body(),
                headers={"content-length": str(weights.size)},
            )
    server.start()
    with httpx.Client(base_url=server.url + "/v1", headers=headers, timeout=30) as http:
        assert http.get("/namespaces/lab/models/m/resolve/1.0").status_code == 404
        status = http.get(f"/uploads/{upload['id']}").json()
    kept = next(b for b in status["blobs"] if b["digest"] == weights.digest)
    assert 0 < kept["offset"] < weights.size and not kept["complete"]

    with RegistryClient(
        server.url, token, state=ClientState(tmp_path / "home"), chunk_size=4 * 1024 * 1024
    ) as client:
        result = client.push(model, "lab/m:1.0")
        assert result.bytes_skipped >= kept["offset"]  # resumed, not restarted
        assert result.version["state"] == "published"
        client.pull("lab/m:1.0", tmp_path / "out", allow_unsigned=True)
    pulled = (tmp_path / "out" / "model.safetensors").read_bytes()
    assert hashlib.sha256(pulled).hexdigest() == weights.digest
    staging = server.data / "staging" / upload["id"]
    assert not staging.exists(), "staged parts are removed after commit"


def test_serve_rejects_a_bad_database_url(tmp_path: Path) -> None:
    result = run("serve", "--data", str(tmp_path), "--db", "nosuch://x", check=False)
    assert result.returncode == 2 and "database URL" in result.stderr
    assert "Traceback" not in result.stderr
