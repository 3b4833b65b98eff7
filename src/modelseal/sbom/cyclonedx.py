"""CycloneDX 1.6 / 1.7 ML-BOM (JSON).

The model is ``metadata.component`` (type ``machine-learning-model``) with a
``modelCard``; every file is a ``file`` component with hashes; every dataset is a
``data`` component referenced from the model card; base models are
``pedigree.ancestors``; the Python packages the model needs are ``library``
components with ``pkg:pypi`` purls; the scan result becomes ``vulnerabilities``
affecting the file they were found in. cyclonedx-python-lib cannot model model
cards or data components, so the JSON is built here by small typed builders and
validated against the official schema in the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelseal.sbom.collect import DatasetRef, FileFacts, ModelFacts, PackageRef
from modelseal.sbom.interface import EmitContext, SbomEmitter
from modelseal.sbom.licenses import LicenseInfo

__all__ = ["MODEL_REF", "CycloneDxEmitter", "dataset_ref", "file_ref", "package_ref"]

#: bom-ref of the model component.
MODEL_REF = "model"

_SEVERITY = {"info": "info", "low": "low", "medium": "medium", "high": "high"}
_SEVERITY["critical"] = "critical"
_HF = "https://huggingface.co/"

# pipeline tag -> (input formats, output formats) for the model card.
_IO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "text-generation": (("text",), ("text",)),
    "text2text-generation": (("text",), ("text",)),
    "summarization": (("text",), ("text",)),
    "translation": (("text",), ("text",)),
    "question-answering": (("text",), ("text span",)),
    "fill-mask": (("text",), ("token probabilities",)),
    "text-classification": (("text",), ("class label",)),
    "token-classification": (("text",), ("token labels",)),
    "zero-shot-classification": (("text",), ("class label",)),
    "feature-extraction": (("text",), ("embedding vector",)),
    "sentence-similarity": (("text",), ("embedding vector",)),
    "image-classification": (("image",), ("class label",)),
    "object-detection": (("image",), ("bounding boxes",)),
    "image-to-text": (("image",), ("text",)),
    "text-to-image": (("text",), ("image",)),
    "automatic-speech-recognition": (("audio",), ("text",)),
    "text-to-speech": (("text",), ("audio",)),
}


def file_ref(file: FileFacts) -> str:
    """bom-ref of a file component."""
    return f"file:{file.path}"


def dataset_ref(dataset: DatasetRef) -> str:
    """bom-ref of a dataset component."""
    return f"dataset:{dataset.name}"


def package_ref(package: PackageRef) -> str:
    """bom-ref of a package component (its purl)."""
    return package.purl


def _property(name: str, value: object) -> dict[str, str]:
    return {"name": name, "value": str(value)}


def _properties(prefix: str, values: Mapping[str, object]) -> list[dict[str, str]]:
    return [_property(f"{prefix}{k}", v) for k, v in values.items() if v not in (None, "")]


def _hashes(file: FileFacts) -> list[dict[str, str]]:
    hashes = []
    if file.sha256:
        hashes.append({"alg": "SHA-256", "content": file.sha256})
    if file.sha512:
        hashes.append({"alg": "SHA-512", "content": file.sha512})
    return hashes


def license_choice(info: LicenseInfo) -> dict[str, Any]:
    """A CycloneDX ``licenseChoice`` item: an SPDX id, or a named license."""
    if info.spdx_id is not None:
        body: dict[str, Any] = {"id": info.spdx_id}
    else:
        body = {"name": info.name}
    if info.url:
        body["url"] = info.url
    return {"license": body}


def _file_component(file: FileFacts) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "file",
        "bom-ref": file_ref(file),
        "name": file.path,
    }
    hashes = _hashes(file)
    if hashes:
        component["hashes"] = hashes
    props = {
        "modelseal:role": file.role,
        "modelseal:format": file.format,
        "modelseal:size": file.size,
        "modelseal:tensor_count": file.tensor_count,
        "modelseal:parameter_count": file.parameter_count,
        "modelseal:dtypes": ", ".join(file.dtypes),
        "modelseal:tensor_names": ",".join(file.tensor_names),
    }
    component["properties"] = _properties("", props) + _properties(
        f"modelseal:{file.format}:", dict(file.metadata)
    )
    return component


def _dataset_component(dataset: DatasetRef) -> dict[str, Any]:
    url = f"{_HF}datasets/{dataset.name}"
    return {
        "type": "data",
        "bom-ref": dataset_ref(dataset),
        "name": dataset.name,
        "data": [{"type": "dataset", "name": dataset.name, "contents": {"url": url}}],
        "externalReferences": [{"type": "distribution", "url": url}],
        "properties": [
            _property("modelseal:dataset:usage", dataset.usage),
            _property("modelseal:dataset:source", dataset.source),
        ],
    }


def _package_component(package: PackageRef) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": package_ref(package),
        "name": package.name,
        "purl": package.purl,
    }
    if package.version:
        component["version"] = package.version
    props = {"modelseal:requirement:source": package.source}
    if package.specifier:
        props["modelseal:requirement:specifier"] = package.specifier
    component["properties"] = _properties("", props)
    return component


def _model_card(facts: ModelFacts) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if facts.task:
        params["task"] = facts.task
    if facts.model_type or facts.gguf.get("general.architecture"):
        params["architectureFamily"] = facts.model_type or facts.gguf["general.architecture"]
    if facts.architectures:
        params["modelArchitecture"] = ", ".join(facts.architectures)
    if facts.datasets:
        params["datasets"] = [{"ref": dataset_ref(d)} for d in facts.datasets]
    if facts.task in _IO:
        inputs, outputs = _IO[facts.task]
        params["inputs"] = [{"format": f} for f in inputs]
        params["outputs"] = [{"format": f} for f in outputs]
    card: dict[str, Any] = {"bom-ref": "model-card"}
    if params:
        card["modelParameters"] = params
    if facts.metrics:
        metrics = []
        for metric in facts.metrics:
            entry: dict[str, Any] = {"type": metric.name or metric.type, "value": metric.value}
            slice_ = " / ".join(x for x in (metric.task, metric.dataset, metric.split) if x)
            if slice_:
                entry["slice"] = slice_
            metrics.append(entry)
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    considerations: dict[str, Any] = {}
    if facts.card.use_cases:
        considerations["useCases"] = list(facts.card.use_cases)
    if facts.card.limitations:
        considerations["technicalLimitations"] = list(facts.card.limitations)
    if facts.card.ethical:
        considerations["ethicalConsiderations"] = [{"name": t} for t in facts.card.ethical]
    if considerations:
        card["considerations"] = considerations
    props = [_property("modelseal:card:training", t) for t in facts.card.training]
    if props:
        card["properties"] = props
    return card


def _model_properties(facts: ModelFacts) -> list[dict[str, str]]:
    values: dict[str, object] = {
        "modelseal:parameter_count": facts.parameter_count,
        "modelseal:dtypes": ", ".join(facts.dtypes),
        "modelseal:formats": ", ".join(facts.formats),
        "modelseal:torch_dtype": facts.torch_dtype,
        "modelseal:transformers_version": facts.transformers_version,
        "modelseal:library_name": facts.card.library_name,
        "modelseal:languages": ", ".join(facts.card.languages),
        "modelseal:tokenizer:class": facts.tokenizer.tokenizer_class,
        "modelseal:tokenizer:type": facts.tokenizer.model_type,
        "modelseal:tokenizer:model_max_length": facts.tokenizer.model_max_length,
        "modelseal:tokenizer:chat_template": "present" if facts.tokenizer.has_chat_template else "",
        "modelseal:tokenizer:files": ", ".join(facts.tokenizer.files),
        "modelseal:custom_code": ", ".join(facts.custom_code),
    }
    props = _properties("", values)
    props += _properties("modelseal:hyperparameter:", dict(facts.hyperparameters))
    props += _properties("modelseal:generation:", dict(facts.generation))
    props += _properties("modelseal:auto_map:", dict(facts.auto_map))
    props += _properties("modelseal:gguf:", dict(facts.gguf))
    props += _properties("modelseal:onnx:", dict(facts.onnx))
    props += _properties("modelseal:keras:", dict(facts.keras))
    return props


def _model_component(facts: ModelFacts) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": MODEL_REF,
        "name": facts.name,
    }
    if facts.revision:
        component["version"] = facts.revision
    if facts.card.title and facts.card.title != facts.name:
        component["description"] = facts.card.title
    if facts.licenses:
        component["licenses"] = [license_choice(info) for info in facts.licenses]
    if facts.purl:
        component["purl"] = facts.purl
        component["externalReferences"] = [{"type": "website", "url": _HF + str(facts.repo_id)}]
    if facts.base_models:
        component["pedigree"] = {
            "ancestors": [
                {
                    "type": "machine-learning-model",
                    "bom-ref": f"base-model:{ref.name}",
                    "name": ref.name,
                    **(
                        {"purl": f"pkg:huggingface/{ref.name}"}
                        if ref.name.count("/") == 1 and "://" not in ref.name
                        else {}
                    ),
                    "properties": [
                        _property("modelseal:base_model:relation", ref.relation),
                        _property("modelseal:base_model:source", ref.source),
                    ],
                }
                for ref in facts.base_models
            ]
        }
    component["modelCard"] = _model_card(facts)
    tags = list(dict.fromkeys(facts.card.tags))
    if tags:
        component["tags"] = tags
    props = _model_properties(facts)
    if props:
        component["properties"] = props
    return component


def _vulnerabilities(facts: ModelFacts, context: EmitContext) -> list[dict[str, Any]]:
    if context.scan is None:
        return []
    by_display = {file.display: file for file in facts.files}
    vulnerabilities: list[dict[str, Any]] = []
    for result in context.scan.results:
        outer = result.path.split("!", 1)[0]
        file = by_display.get(outer)
        if file is None:
            continue
        for index, finding in enumerate(result.findings):
            if finding.severity.value == "info":
                continue
            vulnerability: dict[str, Any] = {
                "bom-ref": f"scan:{file.path}:{len(vulnerabilities)}:{index}",
                "id": finding.rule,
                "source": {"name": "modelseal scan"},
                "ratings": [{"severity": _SEVERITY[finding.severity.value], "method": "other"}],
                "description": finding.message,
                "affects": [{"ref": file_ref(file)}],
                "properties": [_property("modelseal:scan:verdict", result.verdict.value)],
            }
            location = " ".join(x for x in (result.path, finding.location) if x)
            vulnerability["detail"] = f"at {location}"
            vulnerabilities.append(vulnerability)
    return vulnerabilities


def _scan_properties(facts: ModelFacts, context: EmitContext) -> dict[str, str]:
    """verdict per file path (the worst of the file and its members)."""
    if context.scan is None:
        return {}
    rank = {"clean": 0, "suspicious": 1, "error": 2, "malicious": 3}
    verdicts: dict[str, str] = {}
    by_display = {file.display: file.path for file in facts.files}
    for result in context.scan.results:
        path = by_display.get(result.path.split("!", 1)[0])
        if path is None:
            continue
        verdict = result.verdict.value
        if rank.get(verdict, 0) >= rank.get(verdicts.get(path, "clean"), 0):
            verdicts[path] = verdict
    return verdicts


def _dependencies(facts: ModelFacts) -> list[dict[str, Any]]:
    refs = [file_ref(f) for f in facts.files] + [package_ref(p) for p in facts.packages]
    graph: list[dict[str, Any]] = [{"ref": MODEL_REF, "dependsOn": refs}]
    graph += [{"ref": file_ref(f)} for f in facts.files]
    graph += [{"ref": package_ref(p)} for p in facts.packages]
    graph += [{"ref": dataset_ref(d)} for d in facts.datasets]
    return graph


def _unique(components: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    result = []
    for component in components:
        if component["bom-ref"] not in seen:
            seen.add(component["bom-ref"])
            result.append(component)
    return result


class CycloneDxEmitter(SbomEmitter):
    """CycloneDX JSON, spec 1.6 (default) or 1.7."""

    name = "cyclonedx"
    spec_versions = ("1.6", "1.7")

    def emit(self, facts: ModelFacts, context: EmitContext) -> dict[str, Any]:
        """The BOM as a dict."""
        verdicts = _scan_properties(facts, context)
        files = []
        for file in facts.files:
            component = _file_component(file)
            if file.path in verdicts:
                component["properties"].append(
                    _property("modelseal:scan:verdict", verdicts[file.path])
                )
            files.append(component)
        components = _unique(
            [
                *files,
                *(_dataset_component(d) for d in facts.datasets),
                *(_package_component(p) for p in facts.packages),
            ]
        )
        metadata_props = [_property("modelseal:warning", w) for w in facts.warnings]
        if context.signature is not None:
            sig = context.signature
            metadata_props += [
                _property("modelseal:signature:status", sig.status),
                _property("modelseal:signature:bundle", sig.signature),
            ]
            if sig.detail:
                metadata_props.append(_property("modelseal:signature:detail", sig.detail))
        metadata: dict[str, Any] = {
            "timestamp": context.created,
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "name": "modelseal",
                        "version": context.tool_version,
                        "purl": f"pkg:pypi/modelseal@{context.tool_version}",
                    }
                ]
            },
            "component": _model_component(facts),
        }
        if metadata_props:
            metadata["properties"] = metadata_props
        bom: dict[str, Any] = {
            "$schema": f"http://cyclonedx.org/schema/bom-{context.spec_version}.schema.json",
            "bomFormat": "CycloneDX",
            "specVersion": context.spec_version,
            "serialNumber": f"urn:uuid:{context.document_id}",
            "version": 1,
            "metadata": metadata,
            "components": components,
            "dependencies": _dependencies(facts),
        }
        vulnerabilities = _vulnerabilities(facts, context)
        if vulnerabilities:
            bom["vulnerabilities"] = vulnerabilities
        return bom
