"""SPDX 3.0.1 JSON-LD with the AI and Dataset profiles.

The model is an ``ai_AIPackage`` (the document's root element), its files are
``software_File`` elements with hashes, datasets are ``dataset_DatasetPackage``
elements, base models are ``ai_AIPackage`` elements, Python dependencies are
``software_Package`` elements with a purl, and licenses are
``simplelicensing_LicenseExpression`` elements (model licenses that are not on
the SPDX list become ``LicenseRef-`` ids mapped to their URL). They are tied
together by ``contains``, ``trainedOn``, ``testedOn``, ``ancestorOf``,
``dependsOn`` and ``hasDeclaredLicense`` relationships. Scan findings and the
signature status are ``Annotation`` elements on the file or model they concern.
"""

from __future__ import annotations

import re
from typing import Any

from modelseal.sbom.collect import ModelFacts
from modelseal.sbom.interface import EmitContext, SbomEmitter
from modelseal.sbom.licenses import LicenseInfo

__all__ = ["SPDX_CONTEXT", "Spdx3Emitter"]

#: The JSON-LD context every SPDX 3.0.1 document names.
SPDX_CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
_CREATION = "_:creationinfo"
_HF = "https://huggingface.co/"
_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]+")


class _Graph:
    """Collects the elements of one document under one id namespace."""

    def __init__(self, document_id: str) -> None:
        self.base = f"urn:modelseal:sbom:{document_id}:"
        self.nodes: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        self._relationships = 0

    def new_id(self, kind: str, label: str) -> str:
        local = _UNSAFE.sub("-", label).strip("-")[:120] or "x"
        candidate = f"{self.base}{kind}-{local}"
        number = 1
        while candidate in self._ids:
            number += 1
            candidate = f"{self.base}{kind}-{local}-{number}"
        self._ids.add(candidate)
        return candidate

    def element(self, type_: str, kind: str, label: str, **props: Any) -> str:
        spdx_id = self.new_id(kind, label)
        node = {"type": type_, "spdxId": spdx_id, "creationInfo": _CREATION}
        node.update({k: v for k, v in props.items() if v not in (None, "", [], {})})
        self.nodes.append(node)
        return spdx_id

    def relate(self, source: str, kind: str, targets: list[str]) -> None:
        if not targets:
            return
        self._relationships += 1
        self.element(
            "Relationship",
            "relationship",
            f"{self._relationships}",
            **{"from": source, "relationshipType": kind, "to": targets},
        )


def _dictionary(values: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"type": "DictionaryEntry", "key": key, "value": value}
        for key, value in values.items()
        if value not in (None, "")
    ]


def _license(graph: _Graph, info: LicenseInfo) -> str:
    props: dict[str, Any] = {"simplelicensing_licenseExpression": info.license_ref}
    if info.spdx_id is None and info.url:
        props["simplelicensing_customIdToUri"] = _dictionary({info.license_ref: info.url})
    if info.raw != info.name:
        props["comment"] = f"declared as {info.raw!r}"
    return graph.element("simplelicensing_LicenseExpression", "license", info.license_ref, **props)


def _model(graph: _Graph, facts: ModelFacts, context: EmitContext) -> str:
    hyper = dict(facts.hyperparameters)
    if facts.parameter_count is not None:
        hyper["parameter_count"] = str(facts.parameter_count)
    if facts.torch_dtype:
        hyper["torch_dtype"] = facts.torch_dtype
    if facts.dtypes:
        hyper["dtypes"] = ", ".join(facts.dtypes)
    hyper.update({f"generation.{k}": v for k, v in facts.generation.items()})
    metrics = {}
    for metric in facts.metrics:
        where = " / ".join(x for x in (metric.task, metric.dataset, metric.split) if x)
        key = f"{metric.name or metric.type} ({where})" if where else metric.name or metric.type
        metrics[key] = metric.value
    types = list(facts.architectures)
    if facts.model_type:
        types.append(facts.model_type)
    domains = [facts.task] if facts.task else []
    application = " ".join(facts.card.use_cases)
    details = {
        "formats": ", ".join(facts.formats),
        "library": facts.card.library_name or "",
        "languages": ", ".join(facts.card.languages),
        "tags": ", ".join(facts.card.tags),
        "tokenizer": ", ".join(
            x
            for x in (facts.tokenizer.tokenizer_class, facts.tokenizer.model_type)
            if x is not None
        ),
        "custom code": ", ".join(facts.custom_code),
        "auto_map": ", ".join(f"{k}={v}" for k, v in facts.auto_map.items()),
    }
    for prefix, values in (("gguf", facts.gguf), ("onnx", facts.onnx), ("keras", facts.keras)):
        details.update({f"{prefix} {k}": v for k, v in values.items()})
    comment = "; ".join(f"{k}: {v}" for k, v in details.items() if v)
    return graph.element(
        "ai_AIPackage",
        "model",
        facts.name,
        name=facts.name,
        summary=facts.card.title if facts.card.title != facts.name else None,
        comment=comment or None,
        software_primaryPurpose="model",
        software_packageVersion=facts.revision,
        software_packageUrl=facts.purl,
        software_downloadLocation=_HF + facts.repo_id if facts.repo_id else None,
        ai_typeOfModel=types,
        ai_domain=domains,
        ai_hyperparameter=_dictionary(hyper),
        ai_metric=_dictionary(metrics),
        ai_informationAboutTraining=" ".join(facts.card.training) or None,
        ai_informationAboutApplication=application or None,
        ai_limitation=" ".join(facts.card.limitations + facts.card.ethical) or None,
    )


def _annotate(graph: _Graph, subject: str, statement: str) -> None:
    graph.element(
        "Annotation",
        "annotation",
        str(len(graph.nodes)),
        annotationType="review",
        subject=subject,
        statement=statement,
    )


class Spdx3Emitter(SbomEmitter):
    """SPDX 3.0.1 JSON-LD (core, software, AI, dataset and simple-licensing profiles)."""

    name = "spdx3"
    spec_versions = ("3.0.1",)

    def emit(self, facts: ModelFacts, context: EmitContext) -> dict[str, Any]:
        """The document as a JSON-LD dict."""
        graph = _Graph(context.document_id)
        agent = graph.element("SoftwareAgent", "agent", "modelseal", name="modelseal")
        tool = graph.element("Tool", "tool", "modelseal", name=f"modelseal {context.tool_version}")
        model = _model(graph, facts, context)

        file_ids: dict[str, str] = {}
        for file in facts.files:
            hashes = []
            if file.sha256:
                hashes.append({"type": "Hash", "algorithm": "sha256", "hashValue": file.sha256})
            if file.sha512:
                hashes.append({"type": "Hash", "algorithm": "sha512", "hashValue": file.sha512})
            purpose = {
                "weights": "model",
                "config": "configuration",
                "tokenizer": "data",
                "code": "source",
                "requirements": "requirement",
                "card": "documentation",
            }.get(file.role, "file")
            detail = [f"format {file.format}", f"{file.size} bytes"]
            if file.parameter_count is not None:
                detail.append(f"{file.tensor_count} tensors, {file.parameter_count} parameters")
            if file.dtypes:
                detail.append("dtypes " + ", ".join(file.dtypes))
            detail += [f"{k}={v}" for k, v in file.metadata.items()]
            file_ids[file.display] = graph.element(
                "software_File",
                "file",
                file.path,
                name=file.path,
                verifiedUsing=hashes,
                software_primaryPurpose=purpose,
                comment="; ".join(detail),
            )
        graph.relate(model, "contains", list(file_ids.values()))

        trained, tested = [], []
        for dataset in facts.datasets:
            dataset_id = graph.element(
                "dataset_DatasetPackage",
                "dataset",
                dataset.name,
                name=dataset.name,
                software_primaryPurpose="data",
                software_downloadLocation=f"{_HF}datasets/{dataset.name}",
                dataset_datasetType=["other"],
                comment=f"from the model {dataset.source}",
            )
            if "training" in dataset.usage:
                trained.append(dataset_id)
            if "evaluation" in dataset.usage:
                tested.append(dataset_id)
        graph.relate(model, "trainedOn", trained)
        graph.relate(model, "testedOn", tested)

        for base in facts.base_models:
            repo_like = base.name.count("/") == 1 and "://" not in base.name
            base_id = graph.element(
                "ai_AIPackage",
                "base-model",
                base.name,
                name=base.name,
                software_primaryPurpose="model",
                software_packageUrl=f"pkg:huggingface/{base.name}" if repo_like else None,
                comment=f"base model ({base.relation}) from {base.source}",
            )
            graph.relate(base_id, "ancestorOf", [model])

        packages = [
            graph.element(
                "software_Package",
                "package",
                package.name,
                name=package.name,
                software_packageVersion=package.version,
                software_packageUrl=package.purl,
                software_primaryPurpose="library",
                comment=f"required by {package.source}"
                + (f" ({package.specifier})" if package.specifier else ""),
            )
            for package in facts.packages
        ]
        graph.relate(model, "dependsOn", packages)

        graph.relate(model, "hasDeclaredLicense", [_license(graph, i) for i in facts.licenses])

        if context.scan is not None:
            for result in context.scan.results:
                subject = file_ids.get(result.path.split("!", 1)[0])
                if subject is None:
                    continue
                for finding in result.findings:
                    if finding.severity.value == "info":
                        continue
                    _annotate(
                        graph,
                        subject,
                        f"modelseal scan {finding.rule} ({finding.severity.value}, "
                        f"verdict {result.verdict.value}) at {result.path} "
                        f"{finding.location}: {finding.message}".strip(),
                    )
        if context.signature is not None:
            sig = context.signature
            text = f"signature {sig.status} ({sig.signature})"
            _annotate(graph, model, f"{text}: {sig.detail}" if sig.detail else text)

        data_license = graph.element(
            "simplelicensing_LicenseExpression",
            "license",
            "document-CC0-1.0",
            simplelicensing_licenseExpression="CC0-1.0",
        )
        elements = [node["spdxId"] for node in graph.nodes]
        document = {
            "type": "SpdxDocument",
            "spdxId": graph.new_id("document", facts.name),
            "creationInfo": _CREATION,
            "name": f"SBOM of {facts.name}",
            "profileConformance": ["core", "software", "ai", "dataset", "simpleLicensing"],
            "dataLicense": data_license,
            "rootElement": [model],
            "element": elements,
        }
        if facts.warnings:
            document["comment"] = "modelseal warnings: " + " | ".join(facts.warnings)
        creation = {
            "type": "CreationInfo",
            "@id": _CREATION,
            "specVersion": "3.0.1",
            "created": context.created,
            "createdBy": [agent],
            "createdUsing": [tool],
        }
        return {"@context": SPDX_CONTEXT, "@graph": [creation, document, *graph.nodes]}
