"""Registry authentication against real registries: HTTP basic (htpasswd) and the
bearer-token flow (``WWW-Authenticate: Bearer realm=...``), credentials read from
``~/.docker/config.json`` like other OCI tools, or from the environment."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from modelseal.errors import AuthError, UsageError
from modelseal.integrity.signing.keys import KeyPair
from modelseal.oci import pull_oci, push_oci
from modelseal.oci.auth import find_credentials, parse_challenge
from tests.oci.conftest import PASSWORD, USER, Registry
from tests.oci.test_push_pull import cli, one_line_error, same_tree


def docker_config(tmp_path: Path, host: str, user: str, password: str) -> dict[str, str]:
    """A DOCKER_CONFIG directory with a base64 ``auth`` entry, as ``docker login`` writes it."""
    folder = tmp_path / "docker-config"
    folder.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(folder)}


def test_basic_auth_with_docker_config_credentials(
    htpasswd_registry: Registry, model: Path, keys: KeyPair, tmp_path: Path
) -> None:
    ref = htpasswd_registry.ref("private/model", "v1")
    env = docker_config(tmp_path, htpasswd_registry.host, USER, PASSWORD)
    pushed = cli("push", model, ref, "--key", keys.private_key, "--plain-http", env=env)
    assert pushed.returncode == 0, pushed.stderr
    pulled = cli("pull", ref, tmp_path / "dest", "--key", keys.public_key, "--plain-http", env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert same_tree(model, tmp_path / "dest")


def test_basic_auth_without_or_with_wrong_credentials_is_one_line(
    htpasswd_registry: Registry, model: Path, tmp_path: Path
) -> None:
    ref = htpasswd_registry.ref("private/model", "v2")
    anonymous = cli("push", model, ref, "--plain-http")
    assert anonymous.returncode == 2
    assert "requires a login" in one_line_error(anonymous)
    env = docker_config(tmp_path, htpasswd_registry.host, USER, "wrong")
    wrong = cli("push", model, ref, "--plain-http", env=env)
    assert wrong.returncode == 2
    assert "401" in one_line_error(wrong)


def test_bearer_token_flow(
    token_registry: Registry,
    model: Path,
    keys: KeyPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = token_registry.ref("team/model", "v1")
    with pytest.raises(AuthError, match="token service"):
        push_oci(model, ref, key=keys.private_key, plain_http=True)
    monkeypatch.setenv("MODELSEAL_OCI_USERNAME", USER)
    monkeypatch.setenv("MODELSEAL_OCI_PASSWORD", PASSWORD)
    push_oci(model, ref, key=keys.private_key, plain_http=True)
    pulled = pull_oci(ref, tmp_path / "dest", keys=[keys.public_key], plain_http=True)
    assert pulled.files == len(list(model.iterdir()))
    assert same_tree(model, tmp_path / "dest")


def test_challenges_and_config_entries_parse() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_challenge('Basic realm="x"').scheme == "basic"


def test_credentials_come_from_the_docker_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = docker_config(tmp_path, "reg.example:5000", "bob", "pw:with:colons")
    monkeypatch.setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"])
    creds = find_credentials("reg.example:5000")
    assert creds is not None and (creds.username, creds.password) == ("bob", "pw:with:colons")
    assert "pw:with" not in repr(creds)
    assert find_credentials("other.example") is None
    (Path(env["DOCKER_CONFIG"]) / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match="not a valid Docker config"):
        find_credentials("reg.example:5000")
