"""Push, pull, verify, scan and sbom against a real registry (Distribution 2.8 on loopback),
and the attacks a pull must refuse: a tampered layer, a swapped or deleted signature,
a malicious file signed by the right key, a path that escapes the destination."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelseal.integrity import sign
from modelseal.integrity.signing.keys import KeyPair
from modelseal.oci import parse_oci_reference, pull_oci, push_oci
from modelseal.oci.distribution import OCI_INDEX, OCI_MANIFEST, DistributionClient, fallback_tag
from modelseal.oci.modelpack import ARTIFACT_TYPE, BUNDLE_TYPE, CONFIG_TYPE, CYCLONEDX_TYPE
from modelseal.oci.operations import _attach
from tests.oci.conftest import Registry, RegistryProxy
from tests.samples.models import build_model_dir, write_safetensors
from tests.samples.pickles import payload_bytes

EXE = [sys.executable, "-m", "modelseal"]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "no error message"
    return result.stderr


def client_for(registry: Registry) -> DistributionClient:
    return DistributionClient(registry.host, plain_http=True)


def same_tree(a: Path, b: Path) -> bool:
    names_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    return names_a == names_b and all(
        filecmp.cmp(a / name, b / name, shallow=False) for name in names_a
    )


def test_cli_push_writes_a_modelpack_artifact_with_signature_and_sbom_referrers(
    registry: Registry, model: Path, keys: KeyPair
) -> None:
    ref = registry.ref("models/tiny", "1.0")
    result = cli("push", model, ref, "--key", keys.private_key, "--plain-http")
    assert result.returncode == 0, result.stderr
    assert "referrers tag fallback" in result.stdout
    with client_for(registry) as client:
        body, media_type, digest = client.get_manifest("models/tiny", "1.0")
        manifest = json.loads(body)
        assert media_type == OCI_MANIFEST
        assert manifest["artifactType"] == ARTIFACT_TYPE
        assert manifest["config"]["mediaType"] == CONFIG_TYPE
        paths = {layer["annotations"]["org.cncf.model.filepath"] for layer in manifest["layers"]}
        assert paths == {p.name for p in model.iterdir()}
        weights = [x for x in manifest["layers"] if x["mediaType"].endswith("weight.v1.raw")]
        assert len(weights) == 2
        index, index_type, _ = client.get_manifest("models/tiny", fallback_tag(digest))
        assert index_type == OCI_INDEX
        types = sorted(m["artifactType"] for m in json.loads(index)["manifests"])
        assert types == sorted([BUNDLE_TYPE, CYCLONEDX_TYPE])
        config = json.loads(
            client.read_small_blob("models/tiny", _descriptor(manifest["config"]), 1 << 20)
        )
        assert config["descriptor"]["name"] == "models/tiny"
        assert config["config"]["architecture"] == "toy"


def _descriptor(doc: dict[str, object]):  # type: ignore[no-untyped-def]
    from modelseal.oci.distribution import Descriptor

    return Descriptor.from_json(doc)


def test_cli_pull_verifies_and_lands_identical_files(
    registry: Registry, model: Path, keys: KeyPair, tmp_path: Path
) -> None:
    ref = registry.ref("models/pulled", "v1")
    assert cli("push", model, ref, "--key", keys.private_key, "--plain-http").returncode == 0
    dest = tmp_path / "dest"
    result = cli("pull", ref, dest, "--key", keys.public_key, "--plain-http")
    assert result.returncode == 0, result.stderr
    assert "verifies with" in result.stdout and "scan clean" in result.stdout
    assert same_tree(model, dest)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dest.pull-")]
    by_digest = cli("verify", result.stdout.split()[1], "--key", keys.public_key, "--plain-http")
    assert by_digest.returncode == 0, by_digest.stdout + by_digest.stderr
    assert by_digest.stdout.startswith("VALID")


def test_a_second_push_of_the_same_files_uploads_nothing(
    registry: Registry, model: Path, keys: KeyPair
) -> None:
    first = push_oci(
        model, registry.ref("models/dedup", "a"), key=keys.private_key, plain_http=True
    )
    again = push_oci(
        model, registry.ref("models/dedup", "b"), key=keys.private_key, plain_http=True
    )
    assert first.bytes_uploaded > 0
    assert again.bytes_uploaded == 0 and again.bytes_skipped == first.bytes_uploaded


def test_scan_and_sbom_work_on_remote_artifacts(
    registry: Registry, model: Path, keys: KeyPair
) -> None:
    ref = registry.ref("models/remote", "v1")
    push_oci(model, ref, key=keys.private_key, plain_http=True)
    env = {"MODELSEAL_OCI_PLAIN_HTTP": "1"}
    scanned = cli("scan", ref, "--format", "json", env=env)
    assert scanned.returncode == 0, scanned.stderr
    paths = [r["path"] for r in json.loads(scanned.stdout)["results"]]
    assert paths and all(p.startswith(ref + "/") for p in paths)
    bom = cli("sbom", "generate", ref, env=env)
    assert bom.returncode == 0, bom.stderr
    doc = json.loads(bom.stdout)
    assert doc["bomFormat"] == "CycloneDX"
    hashes = {
        h["content"]
        for c in doc.get("components", [])
        for h in c.get("hashes", [])
        if h["alg"] == "SHA-256"
    }
    assert len(hashes) >= 2


def test_a_layer_tampered_in_registry_storage_fails_pull_and_lands_nothing(
    registry: Registry, keys: KeyPair, tmp_path: Path
) -> None:
    model = build_model_dir(tmp_path / "unique", seed=7)  # blobs no other test shares
    ref = registry.ref("models/tampered", "v1")
    pushed = push_oci(model, ref, key=keys.private_key, plain_http=True)
    with client_for(registry) as client:
        manifest = json.loads(client.get_manifest("models/tampered", pushed.digest)[0])
    weight = next(x for x in manifest["layers"] if x["mediaType"].endswith("weight.v1.raw"))
    blob = registry.blob_file(weight["digest"])
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.write_bytes(bytes(data))
    try:
        dest = tmp_path / "out" / "dest"
        result = cli("pull", ref, dest, "--key", keys.public_key, "--plain-http")
        assert result.returncode == 1
        assert "does not match its descriptor" in one_line_error(result)
        assert list((tmp_path / "out").iterdir()) == []  # no destination, no staging left
        verified = cli("verify", ref, "--key", keys.public_key, "--plain-http")
        assert verified.returncode == 1
    finally:
        data[-1] ^= 0x01
        blob.write_bytes(bytes(data))


def test_a_signature_swapped_for_another_keys_fails_pull(
    registry: Registry, model: Path, keys: KeyPair, other_keys: KeyPair, tmp_path: Path
) -> None:
    ref = registry.ref("models/swapped", "v1")
    pushed = push_oci(model, ref, key=keys.private_key, plain_http=True)
    forged = tmp_path / "forged.sig"
    sign(model, key=other_keys.private_key, output=forged)
    with client_for(registry) as client:
        # The attacker replaces the referrers index with one naming only their signature.
        tag = fallback_tag(pushed.digest)
        old = json.loads(client.get_manifest("models/swapped", tag)[0])
        keep = [m for m in old["manifests"] if m["artifactType"] != BUNDLE_TYPE]
        client.put_manifest(
            "models/swapped",
            tag,
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": keep}).encode(),
            OCI_INDEX,
        )
        body, _, _ = client.get_manifest("models/swapped", pushed.digest)
        from modelseal.oci.distribution import Descriptor

        subject = Descriptor(OCI_MANIFEST, pushed.digest, len(body), artifact_type=ARTIFACT_TYPE)
        _attach(client, parse_oci_reference(ref), subject, BUNDLE_TYPE, forged.read_bytes())
    dest = tmp_path / "dest"
    result = cli("pull", ref, dest, "--key", keys.public_key, "--plain-http")
    assert result.returncode == 1
    assert "no attached signature verifies" in one_line_error(result)
    assert not dest.exists()
    # The attacker's own key does verify: what protects the user is the key they pass.
    assert pull_oci(ref, tmp_path / "ok", keys=[other_keys.public_key], plain_http=True).files


def test_a_deleted_signature_fails_pull(
    registry: Registry, model: Path, keys: KeyPair, tmp_path: Path
) -> None:
    ref = registry.ref("models/stripped", "v1")
    pushed = push_oci(model, ref, key=keys.private_key, plain_http=True)
    with client_for(registry) as client:
        index_digest = client.get_manifest("models/stripped", fallback_tag(pushed.digest))[2]
        client.request(
            "DELETE",
            f"/v2/models/stripped/manifests/{index_digest}",
            scope="repository:models/stripped:pull,push,delete",
            ok=(202,),
        )
    result = cli("pull", ref, tmp_path / "dest", "--key", keys.public_key, "--plain-http")
    assert result.returncode == 1
    assert "no model-signing bundle is attached" in one_line_error(result)
    assert not (tmp_path / "dest").exists()


def test_a_malicious_file_signed_by_the_right_key_is_refused_by_the_scan(
    registry: Registry, model: Path, keys: KeyPair, tmp_path: Path
) -> None:
    (model / "extra.pkl").write_bytes(payload_bytes())
    ref = registry.ref("models/malicious", "v1")
    push_oci(model, ref, key=keys.private_key, plain_http=True)
    result = cli("pull", ref, tmp_path / "dest", "--key", keys.public_key, "--plain-http")
    assert result.returncode == 1
    assert "scan of the pulled files is not clean" in one_line_error(result)
    assert "extra.pkl: malicious" in result.stderr
    assert not (tmp_path / "dest").exists()


def test_unsigned_artifacts_need_an_explicit_opt_in(
    registry: Registry, model: Path, tmp_path: Path, keys: KeyPair
) -> None:
    ref = registry.ref("models/unsigned", "v1")
    pushed = cli("push", model, ref, "--plain-http")
    assert pushed.returncode == 0
    assert "unsigned" in pushed.stderr
    no_key = cli("pull", ref, tmp_path / "a", "--plain-http")
    assert no_key.returncode == 2 and "needs --key" in one_line_error(no_key)
    with_key = cli("pull", ref, tmp_path / "b", "--key", keys.public_key, "--plain-http")
    assert with_key.returncode == 1 and "no model-signing bundle" in with_key.stderr
    allowed = cli("pull", ref, tmp_path / "c", "--allow-unsigned", "--plain-http")
    assert allowed.returncode == 0, allowed.stderr
    assert same_tree(model, tmp_path / "c")


def test_usage_errors_are_one_line_with_exit_two(model: Path, tmp_path: Path) -> None:
    remote = cli("push", model, "oci://registry.example.com/a:1", "--plain-http")
    assert remote.returncode == 2 and "only allowed for a registry on this machine" in remote.stderr
    bad = cli("pull", "oci://127.0.0.1:1/Bad:1", tmp_path / "x", "--allow-unsigned")
    assert bad.returncode == 2 and "invalid repository name" in one_line_error(bad)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    busy = cli("pull", "oci://127.0.0.1:1/a:1", tmp_path / "full", "--allow-unsigned")
    assert busy.returncode == 2 and "exists" in one_line_error(busy)


def test_an_unreachable_registry_is_one_line(model: Path, tmp_path: Path) -> None:
    from tests.registry.conftest import free_port

    result = cli("push", model, f"oci://127.0.0.1:{free_port()}/a:1", "--plain-http")
    assert result.returncode == 1
    assert "127.0.0.1" in one_line_error(result)


def test_a_layer_path_that_escapes_the_destination_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    from modelseal.oci.distribution import Descriptor, canonical_json
    from modelseal.oci.modelpack import WEIGHT, Layer, build_manifest

    with client_for(registry) as client:
        blob = client.put_blob_bytes("models/escape", b"print('owned')\n")
        config = client.put_blob_bytes("models/escape", canonical_json({"descriptor": {}}))
        layer = Layer(
            "../../escaped.py",
            Descriptor(
                WEIGHT, blob.digest, blob.size, {"org.cncf.model.filepath": "../../escaped.py"}
            ),
        )
        body = build_manifest(Descriptor(CONFIG_TYPE, config.digest, config.size), [layer], {})
        client.put_manifest("models/escape", "v1", body, OCI_MANIFEST)
    dest = tmp_path / "deep" / "dest"
    result = cli("pull", registry.ref("models/escape"), dest, "--allow-unsigned", "--plain-http")
    assert result.returncode == 1
    assert "layer" in one_line_error(result)
    assert not list(tmp_path.rglob("escaped.py"))


def test_the_referrers_api_is_used_when_the_registry_has_it(
    referrers_registry: tuple[Registry, RegistryProxy],
    registry: Registry,
    model: Path,
    keys: KeyPair,
    tmp_path: Path,
) -> None:
    proxied, proxy = referrers_registry
    ref = proxied.ref("models/api", "v1")
    result = push_oci(model, ref, key=keys.private_key, plain_http=True)
    assert result.referrers_api is True
    with client_for(registry) as upstream:
        # No fallback tag: the registry indexed the referrers itself.
        assert not upstream.manifest_exists("models/api", fallback_tag(result.digest))
    calls = proxy.referrers_calls
    pulled = pull_oci(ref, tmp_path / "dest", keys=[keys.public_key], plain_http=True)
    assert proxy.referrers_calls > calls
    assert any("verifies with" in check for check in pulled.checks)
    assert same_tree(model, tmp_path / "dest")


@pytest.mark.parametrize("through_proxy", [False, True], ids=["stdlib-body", "httpx-body"])
def test_a_dropped_upload_and_a_dropped_download_resume(
    flaky_registry: tuple[Registry, RegistryProxy],
    keys: KeyPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    through_proxy: bool,
) -> None:
    # With a proxy configured, blob bodies are read by httpx instead of http.client:
    # both readers must resume a download cut half way.
    monkeypatch.setattr("modelseal.oci.distribution.proxied", lambda url: through_proxy)
    # Fresh content per case, so the registry cannot skip the upload as already there.
    model = build_model_dir(tmp_path / "resume", seed=11 + through_proxy)
    rng = np.random.default_rng(3 + through_proxy)
    big = rng.standard_normal(3 * 2**19).astype(np.float32)  # 6 MiB
    write_safetensors(model / "big.safetensors", {"big": big})  # long enough to cut
    flaky, proxy = flaky_registry
    ref = flaky.ref(f"models/resume{int(through_proxy)}", "v1")
    push_oci(model, ref, key=keys.private_key, plain_http=True, workers=1)
    assert "patch" not in proxy.pending_faults and proxy.status_requests >= 1
    pulled = pull_oci(ref, tmp_path / "dest", keys=[keys.public_key], plain_http=True, workers=1)
    assert "blob" not in proxy.pending_faults and proxy.range_requests >= 1
    assert pulled.files == len(list(model.iterdir()))
    assert same_tree(model, tmp_path / "dest")


@pytest.mark.parametrize("through_proxy", [False, True], ids=["sendfile-body", "httpx-body"])
def test_the_registry_checks_the_digest_of_what_the_upload_sent(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through_proxy: bool
) -> None:
    import hashlib

    from modelseal.oci.distribution import OciError

    monkeypatch.setattr("modelseal.oci.distribution.proxied", lambda url: through_proxy)
    blob = tmp_path / "blob.bin"
    data = os.urandom(3 * 2**20 + 17)
    blob.write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    repo = f"models/digest{int(through_proxy)}"
    with client_for(registry) as client:
        wrong = "sha256:" + hashlib.sha256(data + b"x").hexdigest()
        with pytest.raises(OciError) as refused:
            client.put_blob_file(repo, blob, wrong, len(data))
        assert "\n" not in str(refused.value) and "answered 400" in str(refused.value)
        assert client.blob_size(repo, wrong) is None
        client.put_blob_file(repo, blob, digest, len(data))
        assert client.blob_size(repo, digest) == len(data)
    assert registry.blob_file(digest).read_bytes() == data
