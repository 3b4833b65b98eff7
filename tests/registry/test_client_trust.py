"""Attacks on the client by a malicious registry or a man in the middle (issue 13, hole 2
and the transparency client): a proxy on loopback in front of a real registry rewrites
its answers, and the client refuses with one clear error before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from modelseal.errors import RegistryError, VerificationError
from modelseal.registry.errors import RollbackError
from modelseal.transparency.errors import LogVerificationError
from modelseal.transparency.sth import TreeHeadSigner
from tests.registry.mitm import Mitm, mitm
from tests.samples.registry import write_model

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

RESOLVE_LATEST = "/v1/namespaces/acme/models/m/resolve/latest"


@pytest.fixture
def org(registry: Any, keypair: Any, tmp_path: Path) -> Any:
    """``acme/m`` with versions 1.0 then 2.0, tag ``latest`` moved 1.0 → 2.0."""
    registry.namespace("acme")
    registry.user("pub", roles={"acme": "publisher"})
    registry.user("reader", roles={"acme": "reader"})
    registry.trust("acme", keypair.public_key)
    with registry.client(registry.token("pub")) as client:
        for seed, version in ((1, "1.0"), (2, "2.0")):
            client.push(
                write_model(tmp_path / f"v{seed}", seed=seed),
                f"acme/m:{version}",
                key=keypair.private_key,
                tags=["latest"],
            )
    registry.reader = registry.token("reader")
    return registry


@pytest.fixture
def proxy(org: Any) -> Any:
    with mitm(org.url) as middle:
        yield middle


def _client(url: str, org: Any, home: Path, **options: Any) -> Any:
    from modelseal.registry.client import ClientState, RegistryClient

    return RegistryClient(url, org.reader, state=ClientState(home), **options)


def _state(home: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((home / "registry-state.json").read_text())
    return data


def _on(path: str, prefix: str) -> bool:
    return urllib.parse.urlsplit(path).path == prefix


def _tree_size(path: str) -> int:
    return int(urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["tree_size"][0])


def _tag_moves(proxy: Mitm, token: str) -> list[dict[str, Any]]:
    page = proxy.fetch("/v1/log/entries?limit=1000", token)
    moves = []
    for item in page["items"]:
        entry = json.loads(item["entry"])
        if entry["kind"] == "tag-move":
            moves.append({"index": item["index"], **entry})
    return moves


# -- hole 2: the reference is classified by the client, facts come from the log -------------


def test_a_dropped_resolved_by_is_refused(org: Any, proxy: Mitm, tmp_path: Path) -> None:
    def drop(method: str, path: str, answer: Any) -> Any:
        if _on(path, RESOLVE_LATEST):
            answer.pop("resolved_by")
        return answer

    proxy.rewrite = drop
    with (
        _client(proxy.url, org, tmp_path / "home") as client,
        pytest.raises(VerificationError, match=r"malformed \(resolved_by: Field required"),
    ):
        client.pull("acme/m:latest", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_tag_passed_off_as_a_version_is_refused(org: Any, proxy: Mitm, tmp_path: Path) -> None:
    """The old client skipped the rollback check unless the server said "tag"."""

    def relabel(method: str, path: str, answer: Any) -> Any:
        if _on(path, RESOLVE_LATEST):
            answer["resolved_by"] = "version"
        return answer

    proxy.rewrite = relabel
    with (
        _client(proxy.url, org, tmp_path / "home") as client,
        pytest.raises(VerificationError, match="the transparency log makes it a tag"),
    ):
        client.pull("acme/m:latest", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_forged_serial_is_refused_and_never_recorded(
    org: Any, proxy: Mitm, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with _client(proxy.url, org, home) as client:
        client.pull("acme/m:latest", tmp_path / "first")
    recorded = _state(home)[proxy.url]["acme/m:latest"]
    assert recorded["version"] == "2.0" and recorded["serial"] == 2

    def forge(method: str, path: str, answer: Any) -> Any:
        if _on(path, RESOLVE_LATEST):
            answer["serial"] = 10**15
        return answer

    proxy.rewrite = forge
    with (
        _client(proxy.url, org, home) as client,
        pytest.raises(VerificationError, match="gives serial 1000000000000000, but the "),
    ):
        client.pull("acme/m:latest", tmp_path / "second")
    assert _state(home)[proxy.url]["acme/m:latest"] == recorded
    assert not (tmp_path / "second").exists()


RESOLVE = "/v1/namespaces/acme/models/m/resolve/"


def _resolves(proxy: Mitm) -> list[str]:
    """The references the client resolved through the proxy, in order."""
    paths = (urllib.parse.urlsplit(seen.split(" ", 1)[1]).path for seen in proxy.seen)
    return [path.removeprefix(RESOLVE) for path in paths if path.startswith(RESOLVE)]


def test_a_tag_pointed_at_an_older_version_gets_the_logged_target_not_the_older_one(
    org: Any, proxy: Mitm, tmp_path: Path
) -> None:
    """The tag's logged move names a newer version (higher serial) than the one served: the
    client asks for the logged version by name and pulls that, never the older one."""
    older = proxy.fetch("/v1/namespaces/acme/models/m/resolve/1.0", org.reader)

    def point_back(method: str, path: str, answer: Any) -> Any:
        return {**older, "resolved_by": "tag"} if _on(path, RESOLVE_LATEST) else answer

    proxy.rewrite = point_back
    with _client(proxy.url, org, tmp_path / "fresh") as client:
        result = client.pull("acme/m:latest", tmp_path / "out")
    assert result.version.version == "2.0"
    assert _resolves(proxy) == ["latest", "2.0"]


def test_an_older_target_served_on_the_retry_too_is_still_refused(
    org: Any, proxy: Mitm, tmp_path: Path
) -> None:
    """The logged move (2.0) is newer than the served document (1.0), so the client resolves
    once more the version the move names; a registry that serves the older version again
    gets no third try and no rollback."""
    older = proxy.fetch("/v1/namespaces/acme/models/m/resolve/1.0", org.reader)

    def point_back(method: str, path: str, answer: Any) -> Any:
        if urllib.parse.urlsplit(path).path.startswith(RESOLVE):
            return {**older, "resolved_by": answer["resolved_by"]}
        return answer

    proxy.rewrite = point_back
    with (
        _client(proxy.url, org, tmp_path / "fresh") as client,
        pytest.raises(VerificationError, match=r"moved to version 2\.0 \(tag-move entry \d+"),
    ):
        client.pull("acme/m:latest", tmp_path / "out", allow_rollback=True)
    assert _resolves(proxy) == ["latest", "2.0"]
    assert not (tmp_path / "out").exists()


@pytest.fixture
def v3(org: Any, keypair: Any, tmp_path: Path) -> Path:
    """Version 3.0 of ``acme/m``, published untagged; its files."""
    with org.client(org.token("pub")) as publisher:
        model = write_model(tmp_path / "v3", seed=3)
        publisher.push(model, "acme/m:3.0", key=keypair.private_key)
    return model


@pytest.mark.parametrize(("moved_to", "seed"), [("3.0", 3), ("1.0", 1)])
def test_a_tag_moved_between_resolve_and_log_lookup_is_resolved_again(
    org: Any, proxy: Mitm, v3: Path, tmp_path: Path, moved_to: str, seed: int
) -> None:
    """The race the load test found: the publisher moves the tag right after the registry
    resolved it (to a newer version, or back to an older one: concurrent commits do not
    take serials in log order). The move is logged after the pull began: resolved again,
    the new target pulled and recorded."""

    def move_after_first_resolve(method: str, path: str, answer: Any) -> Any:
        if _on(path, RESOLVE_LATEST) and _resolves(proxy) == ["latest"]:
            with org.http(org.token("pub")) as http:
                put = http.put("/namespaces/acme/models/m/tags/latest", json={"version": moved_to})
                assert put.status_code == 200, put.text
        return answer

    proxy.rewrite = move_after_first_resolve
    with _client(proxy.url, org, tmp_path / "home") as client:
        result = client.pull("acme/m:latest", tmp_path / "out")
    assert _resolves(proxy) == ["latest", moved_to]
    assert result.version.version == moved_to
    assert any("resolved again as version" in check for check in result.checks)
    expected = write_model(tmp_path / "again", seed=seed)
    for path in expected.rglob("*"):
        if path.is_file():
            assert (tmp_path / "out" / path.relative_to(expected)).read_bytes() == path.read_bytes()
    assert _state(tmp_path / "home")[proxy.url]["acme/m:latest"]["version"] == moved_to


def test_an_older_target_with_a_claimed_newer_serial_is_refused_without_a_retry(
    org: Any, proxy: Mitm, tmp_path: Path
) -> None:
    """The rollback the retry must not open: the proxy serves the older 1.0 for the tag with a
    serial above the logged move's, as if the tag had just moved there. The move (2.0) was
    logged before the pull began and the serial is no log fact: refused, nothing written."""
    older = proxy.fetch("/v1/namespaces/acme/models/m/resolve/1.0", org.reader)
    proxy.rewrite = lambda method, path, answer: (
        {**older, "resolved_by": "tag", "serial": 10**6} if _on(path, RESOLVE_LATEST) else answer
    )
    home = tmp_path / "fresh"
    with (
        _client(proxy.url, org, home) as client,
        pytest.raises(VerificationError, match=r"points to version 2\.0 in the transparency"),
    ):
        client.pull("acme/m:latest", tmp_path / "out", allow_rollback=True)
    assert _resolves(proxy) == ["latest"]
    assert not (tmp_path / "out").exists()
    state = home / "registry-state.json"
    assert not state.exists() or "acme/m:latest" not in _state(home).get(proxy.url, {})


def test_a_newer_target_than_the_logged_move_is_refused_without_a_retry(
    org: Any, proxy: Mitm, v3: Path, tmp_path: Path
) -> None:
    """A document newer than the tag's move, which was logged before the pull began, is no
    race: refused at once (the client does not ask again)."""
    newer = proxy.fetch("/v1/namespaces/acme/models/m/resolve/3.0", org.reader)
    proxy.rewrite = lambda method, path, answer: (
        {**newer, "resolved_by": "tag"} if _on(path, RESOLVE_LATEST) else answer
    )
    with (
        _client(proxy.url, org, tmp_path / "fresh") as client,
        pytest.raises(VerificationError, match=r"points to version 2\.0 in the transparency"),
    ):
        client.pull("acme/m:latest", tmp_path / "out")
    assert _resolves(proxy) == ["latest"]
    assert not (tmp_path / "out").exists()


def test_a_replayed_tag_move_entry_is_refused_by_a_client_that_saw_the_newer_one(
    org: Any, proxy: Mitm, tmp_path: Path
) -> None:
    """The whole old state, consistently: the old document and the old (genuine, logged)
    tag-move entry. A client that saw the newer move refuses, even with
    ``allow_rollback``; a fresh client cannot tell (docs/registry.md says so)."""
    home = tmp_path / "home"
    with _client(proxy.url, org, home) as client:
        assert client.pull("acme/m:latest", tmp_path / "first").version.version == "2.0"
    first_move = next(m for m in _tag_moves(proxy, org.reader) if m["version"] == "1.0")
    older = proxy.fetch("/v1/namespaces/acme/models/m/resolve/1.0", org.reader)

    def old_doc(method: str, path: str, answer: Any) -> Any:
        return {**older, "resolved_by": "tag"} if _on(path, RESOLVE_LATEST) else answer

    def old_entry(method: str, path: str) -> Any:
        if _on(path, "/v1/log/tags/acme/m/latest"):
            size = _tree_size(path)
            return proxy.fetch(
                f"/v1/log/entries/{first_move['index']}?tree_size={size}", org.reader
            )
        return None

    proxy.rewrite, proxy.replace = old_doc, old_entry
    with (
        _client(proxy.url, org, home) as client,
        pytest.raises(RollbackError, match="a replayed state"),
    ):
        client.pull("acme/m:latest", tmp_path / "second", allow_rollback=True)
    assert not (tmp_path / "second").exists()
    with _client(proxy.url, org, tmp_path / "fresh") as client:
        assert client.pull("acme/m:latest", tmp_path / "fresh-out").version.version == "1.0"


def test_a_legitimate_move_back_is_a_rollback_unless_allowed(org: Any, tmp_path: Path) -> None:
    """The publisher moves the tag back (a new, logged tag-move entry with an older serial)."""
    home = tmp_path / "home"
    with _client(org.url, org, home) as client:
        client.pull("acme/m:latest", tmp_path / "a")
    with org.http(org.token("pub")) as http:
        moved = http.put("/namespaces/acme/models/m/tags/latest", json={"version": "1.0"})
        assert moved.status_code == 200
    with _client(org.url, org, home) as client:
        with pytest.raises(RollbackError, match=r"older than version 2\.0"):
            client.pull("acme/m:latest", tmp_path / "b")
        result = client.pull("acme/m:latest", tmp_path / "c", allow_rollback=True)
    assert result.version.version == "1.0"
    assert any("tag-move entry" in check for check in result.checks)
    moves = _tag_moves_direct(org)
    assert _state(home)[org.url]["acme/m:latest"]["log_index"] == moves[-1]


def _tag_moves_direct(org: Any) -> list[int]:
    with org.http(org.reader) as http:
        items = http.get("/log/entries", params={"limit": 1000}).json()["items"]
    return [i["index"] for i in items if json.loads(i["entry"])["kind"] == "tag-move"]


def test_the_cli_refuses_a_forged_answer_in_one_line(org: Any, proxy: Mitm, tmp_path: Path) -> None:
    def drop(method: str, path: str, answer: Any) -> Any:
        if _on(path, RESOLVE_LATEST):
            answer.pop("resolved_by")
        return answer

    proxy.rewrite = drop
    from modelseal.registry.client import ClientState

    home = tmp_path / "cli-home"
    ClientState(home).save_login(proxy.url, org.reader, "reader")
    result = subprocess.run(
        [sys.executable, "-m", "modelseal", "pull", "acme/m:latest", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MODELSEAL_HOME": str(home)},
    )
    assert result.returncode == 1, result.stderr
    assert "resolved_by" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# -- keys the signature relies on --------------------------------------------------------------


def test_a_key_the_log_never_trusted_is_refused(
    org: Any, proxy: Mitm, other_keypair: Any, tmp_path: Path
) -> None:
    """The server lists a key of its own choosing (with a made-up fingerprint) and serves
    a version signed by it: the signature verifies, but no key-trust entry backs the key."""
    with org.session() as session:  # a version signed by mallory, published without a check
        from modelseal.registry import identity

        namespace = identity.get_namespace(session, "acme")
        namespace.require_signature = False
        session.commit()
    fingerprint = "f" * 64

    def add_key(method: str, path: str, answer: Any) -> Any:
        if _on(path, "/v1/namespaces/acme/keys"):
            pem = Path(other_keypair.public_key).read_text()
            return {
                "items": [
                    {"name": "m", "kind": "key", "fingerprint": fingerprint, "public_key_pem": pem}
                ]
            }
        return answer

    with org.client(org.token("pub")) as client:
        client.push(
            write_model(tmp_path / "v3", seed=3), "acme/m:3.0", key=other_keypair.private_key
        )
    proxy.rewrite = add_key
    with (
        _client(proxy.url, org, tmp_path / "home") as client,
        pytest.raises(VerificationError, match="another public key than its fingerprint"),
    ):
        client.pull("acme/m:3.0", tmp_path / "out")
    from modelseal.registry.identity import key_fingerprint

    fingerprint = key_fingerprint(Path(other_keypair.public_key).read_text())
    with (
        _client(proxy.url, org, tmp_path / "home") as client,
        pytest.raises(LogVerificationError, match="has no key-trust entry"),
    ):
        client.pull("acme/m:3.0", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- the log key and the age of tree heads -----------------------------------------------------


def _log_public_key(org: Any) -> Path:
    return TreeHeadSigner.public_key_file(org.settings.data_dir)


def test_login_pins_the_log_key_and_refuses_a_wrong_one(
    org: Any, other_keypair: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with _client(org.url, org, home) as client:
        with pytest.raises(LogVerificationError, match="tree head signed by key"):
            client.pin_log_key(other_keypair.public_key)
        assert client.state.log_key(org.url) is None
        client.pin_log_key(_log_public_key(org))
        result = client.pull("acme/m:latest", tmp_path / "out")
    assert result.warnings == ()
    assert _state(home)[org.url]["transparency-log-key-source"] == "pinned"
    with (
        _client(org.url, org, home, log_key=other_keypair.public_key) as client,
        pytest.raises(LogVerificationError, match="tree head signed by key"),
    ):
        client.pull("acme/m:latest", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_trust_on_first_use_is_recorded_and_warned_about(
    org: Any, keypair: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with _client(org.url, org, home) as client:
        result = client.pull("acme/m:latest", tmp_path / "out")
    assert len(result.warnings) == 1 and "trusted on first use" in result.warnings[0]
    assert _state(home)[org.url]["transparency-log-key-source"] == "first-use"
    with org.client(org.token("pub")) as client:  # a push says the same
        pushed = client.push(
            write_model(tmp_path / "v9", seed=9), "acme/m:9.0", key=keypair.private_key
        )
    assert pushed.warnings and "trusted on first use" in pushed.warnings[0]


def _forged_head(signer: TreeHeadSigner, proxy: Mitm, *, age_seconds: float) -> dict[str, Any]:
    from modelseal.transparency.sth import SignedTreeHead

    real = SignedTreeHead.from_json(proxy.fetch("/v1/log/tree-head"))
    stamp = int((time.time() - age_seconds) * 1000)
    return signer.sign(real.tree_size, real.root_hash, stamp).to_json()


def test_a_log_key_swapped_in_the_middle_is_refused(
    org: Any, proxy: Mitm, other_keypair: Any, tmp_path: Path
) -> None:
    """The attacker serves its own log key and heads signed with it: a client that pinned
    the real key (here: on first use, before the attack) refuses."""
    from cryptography.hazmat.primitives import serialization

    from modelseal.integrity.signing.keys import key_hint, load_private_key

    home = tmp_path / "home"
    with _client(proxy.url, org, home) as client:
        client.pull("acme/m:1.0", tmp_path / "before")
    attacker = TreeHeadSigner(load_private_key(other_keypair.private_key))
    pem = attacker.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()

    def swap(method: str, path: str) -> Any:
        if _on(path, "/v1/log/key"):
            return {"key_id": key_hint(attacker.public_key), "public_key_pem": pem}
        if _on(path, "/v1/log/tree-head"):
            return _forged_head(attacker, proxy, age_seconds=0)
        return None

    proxy.replace = swap
    with (
        _client(proxy.url, org, home) as client,
        pytest.raises(LogVerificationError, match="tree head signed by key"),
    ):
        client.pull("acme/m:latest", tmp_path / "after")
    assert not (tmp_path / "after").exists()


def test_a_stale_tree_head_is_refused(org: Any, proxy: Mitm, tmp_path: Path) -> None:
    """A frozen log: a genuine signature on the current tree, dated two days ago (a server
    that stopped issuing heads, or a replay of an old one)."""

    server_key = TreeHeadSigner.in_directory(org.settings.data_dir)
    stale = _forged_head(server_key, proxy, age_seconds=2 * 86400)
    proxy.replace = lambda method, path: stale if _on(path, "/v1/log/tree-head") else None
    pinned = _log_public_key(org)
    with (
        _client(proxy.url, org, tmp_path / "a", log_key=pinned) as client,
        pytest.raises(LogVerificationError, match=r"48\.0 h old \(the limit is 24\.0 h\)"),
    ):
        client.pull("acme/m:latest", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with _client(proxy.url, org, tmp_path / "b", log_key=pinned, max_log_age=3 * 86400) as client:
        assert client.pull("acme/m:latest", tmp_path / "ok").version.version == "2.0"


def test_a_quiet_log_re_signs_its_head(
    org: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Clients refuse old heads, so a registry with no new entries must issue fresh ones."""
    from modelseal.registry import transparency_store

    with org.http() as http:
        first = http.get("/log/tree-head").json()
        assert http.get("/log/tree-head").json() == first  # reused while young
        monkeypatch.setattr(transparency_store, "TREE_HEAD_REFRESH_MS", 0)
        time.sleep(0.01)
        second = http.get("/log/tree-head").json()
    assert second["tree_size"] == first["tree_size"] and second["root_hash"] == first["root_hash"]
    assert second["timestamp"] > first["timestamp"]
    with _client(org.url, org, tmp_path / "home") as client:
        client.log_tree_head()
        client.pull("acme/m:1.0", tmp_path / "out")  # the re-signed head is accepted


# -- a bare name -------------------------------------------------------------------------------


def test_a_bare_name_pulls_the_newest_published_version(
    org: Any, proxy: Mitm, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with _client(proxy.url, org, home) as client:
        result = client.pull("acme/m", tmp_path / "out")
    assert result.version.version == "2.0"
    assert "chose 2.0, the newest published version" in result.checks[0]

    def hide_newest(method: str, path: str, answer: Any) -> Any:
        if _on(path, "/v1/namespaces/acme/models/m"):
            answer["latest_version"] = "1.0"
        return answer

    proxy.rewrite = hide_newest
    with _client(proxy.url, org, home) as client:
        with pytest.raises(RollbackError, match=r"model acme/m now points to version 1\.0, older"):
            client.pull("acme/m", tmp_path / "older")
        assert not (tmp_path / "older").exists()
        allowed = client.pull("acme/m", tmp_path / "allowed", allow_rollback=True)
    assert allowed.version.version == "1.0"


def test_a_bare_name_without_a_published_version_is_one_clear_error(
    org: Any, tmp_path: Path
) -> None:
    with (
        org.client(org.token("pub")) as client,
        pytest.raises(RegistryError, match="no model acme/none"),
    ):
        client.pull("acme/none", tmp_path / "out")


# -- the log lookups the client relies on ------------------------------------------------------


def test_tag_and_key_lookups_need_read_access_and_prove_against_a_size(
    org: Any, keypair: Any
) -> None:
    from modelseal.registry.identity import key_fingerprint

    org.user("outsider")
    fingerprint = key_fingerprint(Path(keypair.public_key).read_text())
    with org.http(org.token("outsider")) as http:
        assert http.get("/log/tags/acme/m/latest").status_code == 404
        assert http.get(f"/log/keys/acme/{fingerprint}").status_code == 404
    with org.http(org.reader) as http:
        newest = http.get("/log/tags/acme/m/latest").json()
        assert json.loads(newest["entry"])["version"] == "2.0"
        # Within a smaller tree the newest move is the first one (latest → 1.0).
        earlier = http.get("/log/tags/acme/m/latest", params={"tree_size": newest["index"]})
        assert json.loads(earlier.json()["entry"])["version"] == "1.0"
        keys = http.get(f"/log/keys/acme/{fingerprint}").json()
        assert json.loads(keys["trust"]["entry"])["kind"] == "key-trust" and keys["revoke"] is None
        assert http.get("/log/tags/acme/m/nope").status_code == 404


def test_login_with_a_log_key_pins_it(org: Any, other_keypair: Any, tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    env = {**os.environ, "MODELSEAL_HOME": str(home)}

    def login(key: Path) -> subprocess.CompletedProcess[str]:
        command = ["login", org.url, "--token", org.reader, "--log-key", str(key)]
        return subprocess.run(
            [sys.executable, "-m", "modelseal", *command],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    wrong = login(Path(other_keypair.public_key))
    assert wrong.returncode == 1 and "tree head signed by key" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    right = login(_log_public_key(org))
    assert right.returncode == 0, right.stderr
    assert "pinned the transparency-log key" in right.stdout
    assert _state(home)[org.url]["transparency-log-key-source"] == "pinned"
