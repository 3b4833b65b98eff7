"""SPDX 3.0.1 JSON-LD output with the AI and Dataset profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelseal.sbom import build_sbom, generate_sbom
from tests.samples.sbom import write_model, write_pickle_payload
from tests.sbom.validators import spdx_errors


def _by_type(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [n for n in doc["@graph"] if n.get("type") == kind]


def _relations(doc: dict[str, Any]) -> dict[str, list[tuple[str, list[str]]]]:
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for rel in _by_type(doc, "Relationship"):
        found.setdefault(rel["relationshipType"], []).append((rel["from"], rel["to"]))
    return found


def test_deserializes_and_validates(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m", requirements="numpy==1.26.4\n")
    doc = generate_sbom(root, format="spdx3", sha512=True)
    assert doc["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    assert spdx_errors(doc) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: _by_type(d, "Relationship")[0].update(relationshipType="bogus"), "bogus"),
        (lambda d: _by_type(d, "software_File")[0].update(colour="red"), "colour"),
        (lambda d: _by_type(d, "dataset_DatasetPackage")[0].pop("dataset_datasetType"), "required"),
        (lambda d: _by_type(d, "Relationship")[0].update(to=["urn:x:missing"]), "unresolved"),
        (lambda d: _by_type(d, "CreationInfo")[0].update(created="yesterday"), "does not match"),
        (lambda d: _by_type(d, "software_File")[0].update(name=7), "not of type"),
    ],
)
def test_validator_rejects_broken_documents(tmp_path: Path, mutate: Any, expected: str) -> None:
    doc = generate_sbom(write_model(tmp_path / "m"), format="spdx3", scan=False)
    mutate(doc)
    errors = spdx_errors(doc)
    assert errors and expected in " ".join(errors)


def test_ai_dataset_and_relationships(tmp_path: Path) -> None:
    doc = generate_sbom(write_model(tmp_path / "m"), format="spdx3", scan=False)
    (spdx_doc,) = _by_type(doc, "SpdxDocument")
    packages = {p["name"]: p for p in _by_type(doc, "ai_AIPackage")}
    model = packages["org/tiny-sentiment"]
    assert spdx_doc["rootElement"] == [model["spdxId"]]
    assert "ai" in spdx_doc["profileConformance"] and "dataset" in spdx_doc["profileConformance"]
    assert model["ai_domain"] == ["text-classification"]
    hyper = {e["key"]: e["value"] for e in model["ai_hyperparameter"]}
    assert hyper["parameter_count"] == "1922"
    assert {e["value"] for e in model["ai_metric"]} == {"0.91"}
    datasets = {d["name"]: d["spdxId"] for d in _by_type(doc, "dataset_DatasetPackage")}
    rel = _relations(doc)
    ((_, trained),) = rel["trainedOn"]
    assert set(trained) == {datasets["imdb"], datasets["stanfordnlp/sst2"]}
    ((_, tested),) = rel["testedOn"]
    assert tested == [datasets["glue"]]
    ((base_id, to),) = rel["ancestorOf"]
    assert to == [model["spdxId"]] and base_id == packages["org/base-model"]["spdxId"]
    ((_, licenses),) = rel["hasDeclaredLicense"]
    expressions = {
        n["spdxId"]: n["simplelicensing_licenseExpression"]
        for n in _by_type(doc, "simplelicensing_LicenseExpression")
    }
    assert [expressions[x] for x in licenses] == ["Apache-2.0"]
    ((_, contained),) = rel["contains"]
    files = {f["spdxId"]: f for f in _by_type(doc, "software_File")}
    assert set(contained) == set(files)
    weights = next(f for f in files.values() if f["name"] == "model.safetensors")
    assert weights["verifiedUsing"][0]["algorithm"] == "sha256"
    ((_, deps),) = rel["dependsOn"]
    names = {n["spdxId"]: n["name"] for n in _by_type(doc, "software_Package")}
    assert {names[d] for d in deps} >= {"transformers", "safetensors"}


def test_named_license_gets_a_license_ref(tmp_path: Path) -> None:
    doc = generate_sbom(
        write_model(tmp_path / "m", card="---\nlicense: llama3\n---\n"), format="spdx3", scan=False
    )
    (expr,) = [
        n
        for n in _by_type(doc, "simplelicensing_LicenseExpression")
        if n["simplelicensing_licenseExpression"] != "CC0-1.0"
    ]
    assert expr["simplelicensing_licenseExpression"] == "LicenseRef-llama3"
    assert expr["simplelicensing_customIdToUri"][0]["key"] == "LicenseRef-llama3"
    assert spdx_errors(doc) == []


def test_scan_findings_are_annotations_on_the_file(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    write_pickle_payload(root / "training_args.bin")
    doc = generate_sbom(root, format="spdx3")
    files = {f["spdxId"]: f["name"] for f in _by_type(doc, "software_File")}
    notes = _by_type(doc, "Annotation")
    assert notes and {files[n["subject"]] for n in notes} == {"training_args.bin"}
    assert spdx_errors(doc) == []


@pytest.mark.parametrize(
    "variant",
    [
        {"card": None},
        {"card": "---\n: [\n---\n"},
        {"config": "{"},
        {"card": "---\nlicense: ???\n---"},
    ],
)
def test_bad_input_still_valid(tmp_path: Path, variant: dict[str, Any]) -> None:
    result = build_sbom(write_model(tmp_path / "m", **variant), format="spdx3", scan=False)
    assert result.warnings
    assert spdx_errors(result.document) == []
    (spdx_doc,) = _by_type(result.document, "SpdxDocument")
    assert "modelseal warnings" in spdx_doc["comment"]
