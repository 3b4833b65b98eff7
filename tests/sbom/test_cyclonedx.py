"""CycloneDX ML-BOM output, validated against the official 1.6 and 1.7 schemas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from modelseal.sbom import build_sbom, generate_sbom
from modelseal.sbom.collect import collect
from modelseal.sbom.cyclonedx import CycloneDxEmitter
from modelseal.sbom.interface import EmitContext, SignatureStatus
from modelseal.scan.model import FileResult, Finding, ScanReport, Severity
from tests.samples.sbom import write_model, write_pickle_payload
from tests.sbom.validators import cyclonedx_errors

FIXED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def _components(bom: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in bom["components"] if c["type"] == kind}


def _props(item: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in item.get("properties", [])}


@pytest.mark.parametrize("version", ["1.6", "1.7"])
def test_valid_against_official_schema(tmp_path: Path, version: str) -> None:
    root = write_model(tmp_path / "m", requirements="numpy==1.26.4\n")
    bom = build_sbom(root, spec_version=version, sha512=True).document
    assert bom["specVersion"] == version
    assert cyclonedx_errors(bom, version) == []


def test_validator_rejects_a_broken_bom(tmp_path: Path) -> None:
    bom = generate_sbom(write_model(tmp_path / "m"), scan=False)
    bom["components"][0]["hashes"] = [{"alg": "SHA-256", "content": "not-hex"}]
    assert cyclonedx_errors(bom, "1.6")


def test_model_component_and_card(tmp_path: Path) -> None:
    bom = generate_sbom(write_model(tmp_path / "m"), scan=False)
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["name"] == "org/tiny-sentiment"
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    params = model["modelCard"]["modelParameters"]
    assert params["task"] == "text-classification"
    assert params["architectureFamily"] == "bert"
    assert params["modelArchitecture"] == "BertForSequenceClassification"
    assert params["inputs"] == [{"format": "text"}]
    assert {d["ref"] for d in params["datasets"]} == {
        "dataset:imdb",
        "dataset:stanfordnlp/sst2",
        "dataset:glue",
    }
    (metric,) = model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert metric == {
        "type": "Accuracy",
        "value": "0.91",
        "slice": "text-classification / glue / validation",
    }
    considerations = model["modelCard"]["considerations"]
    assert considerations["useCases"] and considerations["technicalLimitations"]
    (ancestor,) = model["pedigree"]["ancestors"]
    assert (ancestor["name"], ancestor["purl"]) == (
        "org/base-model",
        "pkg:huggingface/org/base-model",
    )
    props = _props(model)
    assert props["modelseal:parameter_count"] == "1922"
    assert props["modelseal:dtypes"] == "float16, float32"
    assert props["modelseal:tokenizer:class"] == "BertTokenizer"
    assert props["modelseal:hyperparameter:num_hidden_layers"] == "2"


def test_files_datasets_packages_and_dependencies(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m", requirements="numpy==1.26.4\n")
    bom = generate_sbom(root, scan=False)
    files = _components(bom, "file")
    weights = files["model.safetensors"]
    assert weights["hashes"][0]["alg"] == "SHA-256"
    assert _props(weights)["modelseal:tensor_count"] == "6"
    assert _props(weights)["modelseal:safetensors:format"] == "pt"
    data = _components(bom, "data")
    assert set(data) == {"imdb", "stanfordnlp/sst2", "glue"}
    assert data["imdb"]["data"][0]["type"] == "dataset"
    libs = _components(bom, "library")
    assert libs["numpy"]["purl"] == "pkg:pypi/numpy@1.26.4"
    assert libs["transformers"]["version"] == "4.30.0"
    graph = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert "file:model.safetensors" in graph["model"]
    assert "pkg:pypi/numpy@1.26.4" in graph["model"]


def test_scan_findings_become_vulnerabilities_on_the_right_file(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    write_pickle_payload(root / "training_args.bin")
    bom = generate_sbom(root)
    assert cyclonedx_errors(bom, "1.6") == []
    vulns = bom["vulnerabilities"]
    assert vulns and {v["affects"][0]["ref"] for v in vulns} == {"file:training_args.bin"}
    assert any(v["ratings"][0]["severity"] in ("high", "critical") for v in vulns)
    files = _components(bom, "file")
    assert _props(files["training_args.bin"])["modelseal:scan:verdict"] == "malicious"
    assert _props(files["model.safetensors"])["modelseal:scan:verdict"] == "clean"


def test_clean_model_has_no_vulnerabilities(tmp_path: Path) -> None:
    bom = generate_sbom(write_model(tmp_path / "m"))
    assert "vulnerabilities" not in bom


def test_members_of_archives_map_to_the_outer_file(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    facts = collect(root)
    weights = next(f for f in facts.files if f.path == "model.safetensors")
    report = ScanReport(
        (
            FileResult(
                f"{weights.display}!inner.pkl",
                "pickle",
                (Finding("MS-TEST", Severity.HIGH, "bad global", "offset 3"),),
            ),
        )
    )
    context = EmitContext(
        "1.6",
        "2026-01-01T00:00:00Z",
        "0" * 8 + "-0000-5000-8000-" + "0" * 12,
        "0.1.0",
        scan=report,
        signature=SignatureStatus("failed", "m.sig", "x"),
    )
    bom = CycloneDxEmitter().emit(facts, context)
    (vuln,) = bom["vulnerabilities"]
    assert vuln["affects"] == [{"ref": "file:model.safetensors"}]
    assert vuln["detail"].endswith("inner.pkl offset 3")
    assert _props(bom["metadata"])["modelseal:signature:status"] == "failed"
    assert cyclonedx_errors(bom, "1.6") == []


def test_reproducible_for_a_fixed_time(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    first = build_sbom(root, created=FIXED, scan=False).document
    second = build_sbom(root, created=FIXED, scan=False).document
    assert first == second
    assert first["metadata"]["timestamp"] == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    "variant",
    [
        {"card": None},
        {"card": "---\nlicense: [mit\n---\n"},
        {"card": "---\nlicense: llama3\ndatasets: {a: 1}\nbase_model: [1, {x: y}]\n---\n"},
        {
            "card": "---\nlicense: totally-unknown\n"
            "model-index: [{results: [{metrics: [1]}]}]\n---\n"
        },
        {"config": "{broken"},
        {"config": "[" * 50_000},
    ],
)
def test_bad_input_still_gives_a_valid_bom(tmp_path: Path, variant: dict[str, Any]) -> None:
    result = build_sbom(write_model(tmp_path / "m", **variant), scan=False)
    assert result.warnings
    assert cyclonedx_errors(result.document, "1.6") == []
    warnings = [p["value"] for p in result.document["metadata"]["properties"]]
    assert warnings == list(result.warnings)


def test_named_license_is_kept(tmp_path: Path) -> None:
    bom = generate_sbom(write_model(tmp_path / "m", card="---\nlicense: llama3\n---\n"), scan=False)
    (lic,) = bom["metadata"]["component"]["licenses"]
    assert lic["license"]["name"] == "llama3" and "url" in lic["license"]


def test_each_generation_gets_its_own_serial_number(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    first = build_sbom(root, created=FIXED, scan=False).document
    later = build_sbom(root, created=FIXED + dt.timedelta(seconds=1), scan=False).document
    assert first["serialNumber"] != later["serialNumber"]
    assert first["components"] == later["components"]
