"""ModelPack artifacts: media types per file, the model config, the manifests we write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelseal.oci.distribution import OCI_MANIFEST, Descriptor, OciError, sha256_digest
from modelseal.oci.modelpack import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    EMPTY_CONFIG,
    build_config,
    build_manifest,
    check_layer_path,
    media_type_for,
    model_layers,
    param_size,
    referrer_manifest,
)
from modelseal.sbom.collect import collect
from tests.samples.models import build_model_dir

PREFIX = "application/vnd.cncf.model."


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("model-00001-of-00002.safetensors", "weight.v1.raw"),
        ("onnx/model.onnx", "weight.v1.raw"),
        ("pytorch_model.bin", "weight.v1.raw"),
        ("config.json", "weight.config.v1.raw"),
        ("tokenizer.json", "weight.config.v1.raw"),
        ("chat_template.jinja", "weight.config.v1.raw"),
        ("README.md", "doc.v1.raw"),
        ("LICENSE", "doc.v1.raw"),
        ("modeling_custom.py", "code.v1.raw"),
        ("data/train.parquet", "dataset.v1.raw"),
    ],
)
def test_each_file_gets_its_modelpack_media_type(path: str, kind: str) -> None:
    assert media_type_for(path) == PREFIX + kind


def test_the_config_is_filled_from_what_the_sbom_collector_reads(tmp_path: Path) -> None:
    model = build_model_dir(tmp_path / "m")
    (model / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny test model\n")
    layers = model_layers([("config.json", "ab" * 32, 10), ("w.safetensors", "cd" * 32, 20)])
    config = build_config(collect(model), layers, name="org/tiny", version="1.0")
    assert config["descriptor"]["name"] == "org/tiny"
    assert config["descriptor"]["version"] == "1.0"
    assert config["descriptor"]["licenses"] == ["Apache-2.0"]
    assert config["config"]["architecture"] == "toy"
    assert "safetensors" in config["config"]["format"]
    assert config["config"]["paramSize"]
    assert config["modelfs"] == {
        "type": "layers",
        "diffIds": ["sha256:" + "ab" * 32, "sha256:" + "cd" * 32],
    }


def test_param_size_uses_modelpack_style_units() -> None:
    assert [param_size(n) for n in (999, 22_713_216, 8_030_261_248)] == ["999", "22.7m", "8.03b"]


def test_manifest_and_referrer_documents() -> None:
    layers = model_layers([("sub/w.safetensors", "ab" * 32, 5)])
    config = Descriptor(CONFIG_TYPE, "sha256:" + "00" * 32, 2)
    body = build_manifest(config, layers, {"org.opencontainers.image.title": "org/tiny"})
    doc = json.loads(body)
    assert doc["mediaType"] == OCI_MANIFEST and doc["artifactType"] == ARTIFACT_TYPE
    assert doc["config"]["mediaType"] == CONFIG_TYPE
    (layer,) = doc["layers"]
    assert layer["annotations"] == {
        "org.cncf.model.filepath": "sub/w.safetensors",
        "org.opencontainers.image.title": "sub/w.safetensors",
    }
    assert build_manifest(config, layers, {"org.opencontainers.image.title": "org/tiny"}) == body
    subject = Descriptor(OCI_MANIFEST, sha256_digest(body), len(body), artifact_type=ARTIFACT_TYPE)
    blob = Descriptor("application/vnd.cyclonedx+json", "sha256:" + "11" * 32, 9)
    ref = json.loads(referrer_manifest("application/vnd.cyclonedx+json", blob, subject, {}))
    assert ref["subject"]["digest"] == subject.digest
    assert ref["config"] == EMPTY_CONFIG.to_json()
    assert EMPTY_CONFIG.digest == sha256_digest(b"{}")


@pytest.mark.parametrize(
    "path",
    ["../escape", "/etc/passwd", "a/../../b", "a\\b", "", "a//b", "CON", "a/./b", "x\u202eexe"],
)
def test_layer_paths_that_could_escape_or_collide_are_refused(path: str) -> None:
    with pytest.raises(OciError):
        check_layer_path(path)
