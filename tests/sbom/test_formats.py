"""Format metadata in the SBOM: GGUF general.* keys, ONNX producer/opset, Keras config;
and the signature status when a signature is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelseal.sbom import build_sbom, generate_sbom
from modelseal.sbom.collect import collect
from tests.samples.sbom import write_model
from tests.sbom.validators import cyclonedx_errors, spdx_errors


def _props(item: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in item.get("properties", [])}


def test_gguf_general_keys(tmp_path: Path) -> None:
    from tests.samples.gguf import write_gguf

    root = tmp_path / "gguf"
    root.mkdir()
    write_gguf(
        root / "model.gguf",
        extra={
            "general.license": "llama3",
            "general.base_model.count": "1",
            "general.base_model.0.name": "Llama 3 8B",
            "general.base_model.0.repo_url": "https://huggingface.co/meta-llama/Meta-Llama-3-8B",
        },
    )
    facts = collect(root)
    assert facts.name == "tiny-test-model"
    assert facts.architectures == ("llama",)
    assert facts.gguf["general.architecture"] == "llama"
    assert facts.gguf["quantization"] == "q8_0"
    assert [(lic.name, lic.spdx_id) for lic in facts.licenses] == [("llama3", None)]
    assert [(b.name, b.relation) for b in facts.base_models] == [
        ("meta-llama/Meta-Llama-3-8B", "quantized")
    ]
    assert "q8_0" in facts.dtypes and facts.parameter_count == 32 + 8 + 64
    bom = generate_sbom(root)
    assert cyclonedx_errors(bom, "1.6") == []
    model = bom["metadata"]["component"]
    assert model["modelCard"]["modelParameters"]["architectureFamily"] == "llama"
    assert _props(model)["modelseal:gguf:general.license"] == "llama3"
    assert spdx_errors(generate_sbom(root, format="spdx3", scan=False)) == []


def test_onnx_and_keras_metadata(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from tests.samples.keras import dense_layer, sequential, write_keras
    from tests.samples.onnx_models import linear_model, save

    root = tmp_path / "m"
    root.mkdir()
    model = linear_model()
    model.metadata_props.add(key="author", value="tests")
    save(model, root / "model.onnx")
    write_keras(root / "model.keras", sequential([dense_layer()]))
    facts = collect(root)
    assert facts.onnx["producer_name"] == "modelseal-tests"
    assert facts.onnx["opset"] == "ai.onnx:17"
    assert facts.onnx["metadata.author"] == "tests"
    assert facts.keras["keras_version"] == "3.6.0"
    assert facts.keras["class_name"] == "Sequential"
    assert any(p.name == "keras" and p.version == "3.6.0" for p in facts.packages)
    bom = generate_sbom(root, scan=False)
    assert cyclonedx_errors(bom, "1.6") == []
    files = {c["name"]: _props(c) for c in bom["components"] if c["type"] == "file"}
    assert files["model.onnx"]["modelseal:onnx:producer_name"] == "modelseal-tests"
    assert files["model.keras"]["modelseal:keras:keras_version"] == "3.6.0"


def test_corrupt_onnx_is_a_warning(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from tests.samples.onnx_models import linear_model, save

    root = tmp_path / "m"
    root.mkdir()
    data = save(linear_model(), root / "model.onnx").read_bytes()
    (root / "model.onnx").write_bytes(data[: len(data) // 2])
    result = build_sbom(root, scan=False)
    assert any("model.onnx" in w for w in result.warnings)
    assert cyclonedx_errors(result.document, "1.6") == []


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path, Path]:
    from modelseal.integrity import generate_keypair, sign

    root = write_model(tmp_path / "m")
    keys = generate_keypair(tmp_path / "release")
    signature = tmp_path / "m.sig"
    sign(root, key=keys.private_key, output=signature)
    return root, signature, keys.public_key


def test_signature_verified(signed: tuple[Path, Path, Path]) -> None:
    root, signature, public = signed
    result = build_sbom(root, signature=signature, key=public, scan=False)
    props = _props(result.document["metadata"])
    assert props["modelseal:signature:status"] == "verified"
    assert not any("signature" in w for w in result.warnings)
    assert cyclonedx_errors(result.document, "1.6") == []
    doc = build_sbom(root, format="spdx3", signature=signature, key=public, scan=False).document
    notes = [n["statement"] for n in doc["@graph"] if n["type"] == "Annotation"]
    assert any(n.startswith("signature verified") for n in notes)
    assert spdx_errors(doc) == []


def test_signature_of_a_tampered_model_fails(signed: tuple[Path, Path, Path]) -> None:
    root, signature, public = signed
    (root / "config.json").write_text('{"model_type": "evil"}')
    result = build_sbom(root, signature=signature, key=public, scan=False)
    assert _props(result.document["metadata"])["modelseal:signature:status"] == "failed"
    assert any(w.startswith("signature failed") for w in result.warnings)


def _pb_field(number: int, payload: bytes) -> bytes:
    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def test_onnx_metadata_is_read_without_onnx_and_without_reading_the_graph(
    tmp_path: Path,
) -> None:
    import json
    import subprocess
    import sys

    root = tmp_path / "m"
    root.mkdir()
    opset = b"\x10\x11"  # version = 17
    prop = _pb_field(1, b"author") + _pb_field(2, b"tests")
    graph = b"\x00" * (8 << 20)  # a large graph field: skipped, never parsed
    (root / "model.onnx").write_bytes(
        b"\x08\x09"  # ir_version = 9
        + _pb_field(2, b"pytorch")
        + _pb_field(3, b"2.13.0")
        + _pb_field(7, graph)
        + _pb_field(8, opset)
        + _pb_field(14, prop)
    )
    code = (
        "import sys, json; from pathlib import Path; from modelseal.sbom.collect import collect;"
        f"f = collect(Path({str(root)!r})); print(json.dumps(dict(f.onnx)));"
        "print('onnx' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    values = json.loads(out[0])
    assert values["producer_name"] == "pytorch"
    assert values["ir_version"] == "9"
    assert values["opset"] == "ai.onnx:17"
    assert values["metadata.author"] == "tests"
    assert out[1] == "False"
