"""Other OCI tools read what we push, and we pull what they push.

skopeo (Debian package) inspects and copies our ModelPack artifacts; a ModelPack
artifact written as an OCI image layout and pushed by skopeo, signed by the
reference ``model_signing`` library, is pulled and verified by modelseal.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from modelseal.integrity.signing.keys import KeyPair
from modelseal.oci import parse_oci_reference, pull_oci, push_oci
from modelseal.oci.distribution import OCI_MANIFEST, Descriptor, DistributionClient
from modelseal.oci.modelpack import ARTIFACT_TYPE, BUNDLE_TYPE, CONFIG_TYPE, media_type_for
from modelseal.oci.operations import _attach
from tests.oci.conftest import Registry, require_tool
from tests.oci.test_push_pull import cli, same_tree


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool(shutil.which("skopeo"), "skopeo")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_skopeo_inspects_and_copies_what_we_push(
    registry: Registry, model: Path, keys: KeyPair, tmp_path: Path
) -> None:
    pushed = push_oci(
        model, registry.ref("interop/ours", "v1"), key=keys.private_key, plain_http=True
    )
    source = f"docker://{registry.host}/interop/ours:v1"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", source)
    assert raw.returncode == 0, raw.stderr
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == pushed.digest
    assert json.loads(raw.stdout)["artifactType"] == ARTIFACT_TYPE
    layout = tmp_path / "layout"
    copied = skopeo("copy", "--src-tls-verify=false", source, f"oci:{layout}:v1")
    assert copied.returncode == 0, copied.stderr
    blobs = {p.name for p in (layout / "blobs" / "sha256").iterdir()}
    for file in model.iterdir():
        assert hashlib.sha256(file.read_bytes()).hexdigest() in blobs  # each layer is the file


def _write_layout(model: Path, layout: Path) -> None:
    """An OCI image layout holding ``model`` as a ModelPack artifact (no modelseal code)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layers = []
    for file in sorted(model.iterdir()):
        entry = put(file.read_bytes())
        layers.append(
            {
                "mediaType": media_type_for(file.name),
                **entry,
                "annotations": {"org.cncf.model.filepath": file.name},
            }
        )
    config = put(json.dumps({"descriptor": {"name": "theirs"}, "config": {}}).encode())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": CONFIG_TYPE, **config},
            "layers": layers,
        },
        indent=1,
    ).encode()
    entry = put(manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                **entry,
                "annotations": {"org.opencontainers.image.ref.name": "v1"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))


def test_we_pull_and_verify_an_artifact_other_tools_pushed_and_signed(
    registry: Registry, model: Path, keys: KeyPair, other_keys: KeyPair, tmp_path: Path
) -> None:
    from model_signing import signing

    layout = tmp_path / "layout"
    _write_layout(model, layout)
    target = f"docker://{registry.host}/interop/theirs:v1"
    copied = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", target)
    assert copied.returncode == 0, copied.stderr
    bundle = tmp_path / "model.sig"
    signing.Config().use_elliptic_key_signer(private_key=keys.private_key).sign(model, bundle)
    ref = parse_oci_reference(registry.ref("interop/theirs", "v1"))
    with DistributionClient(registry.host, plain_http=True) as client:
        body, _, digest = client.get_manifest(ref.repository, "v1")
        subject = Descriptor(OCI_MANIFEST, digest, len(body), artifact_type=ARTIFACT_TYPE)
        _attach(client, ref, subject, BUNDLE_TYPE, bundle.read_bytes())
    pulled = pull_oci(str(ref), tmp_path / "dest", keys=[keys.public_key], plain_http=True)
    assert same_tree(model, tmp_path / "dest")
    assert any("verifies with" in check for check in pulled.checks)
    wrong = cli(
        "verify", str(ref), "--key", other_keys.public_key, "--plain-http", "--format", "json"
    )
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["ok"] is False


def test_an_ordinary_container_image_is_refused_with_a_reason(
    registry: Registry, tmp_path: Path
) -> None:
    from modelseal.oci.distribution import canonical_json

    with DistributionClient(registry.host, plain_http=True) as client:
        config = client.put_blob_bytes("interop/image", canonical_json({"architecture": "amd64"}))
        layer = client.put_blob_bytes("interop/image", b"\x1f\x8b not really a tar")
        body = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config.digest,
                    "size": config.size,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer.digest,
                        "size": layer.size,
                    }
                ],
            }
        )
        client.put_manifest("interop/image", "v1", body, OCI_MANIFEST)
    result = cli(
        "pull", registry.ref("interop/image"), tmp_path / "dest", "--allow-unsigned", "--plain-http"
    )
    assert result.returncode == 1
    assert "not a ModelPack model artifact" in result.stderr
