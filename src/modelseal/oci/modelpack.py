"""CNCF ModelPack artifacts: which media type each file gets, and the model config.

Field names and media types follow the ModelPack spec v1
(github.com/modelpack/model-spec, ``specs-go/v1/{mediatype,config,annotations}.go``):
one ``.raw`` layer per file (never re-packed, so a layer digest is the file's
SHA-256 and the signature's file digests are the layers' digests), with the
``org.cncf.model.filepath`` annotation, and ``org.opencontainers.image.title`` so
ORAS-style tools write the file to the same relative path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from modelseal.oci.distribution import OCI_MANIFEST, Descriptor, OciError, canonical_json

if TYPE_CHECKING:
    from modelseal.sbom.collect import ModelFacts

__all__ = [
    "ANNOTATION_FILEPATH",
    "ANNOTATION_TITLE",
    "ARTIFACT_TYPE",
    "BUNDLE_TYPE",
    "CONFIG_TYPE",
    "CYCLONEDX_TYPE",
    "EMPTY_CONFIG",
    "INTOTO_TYPE",
    "Layer",
    "build_config",
    "build_manifest",
    "check_layer_path",
    "media_type_for",
    "model_layers",
    "referrer_manifest",
]

ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
CONFIG_TYPE = "application/vnd.cncf.model.config.v1+json"
WEIGHT = "application/vnd.cncf.model.weight.v1.raw"
WEIGHT_CONFIG = "application/vnd.cncf.model.weight.config.v1.raw"
DOC = "application/vnd.cncf.model.doc.v1.raw"
CODE = "application/vnd.cncf.model.code.v1.raw"
DATASET = "application/vnd.cncf.model.dataset.v1.raw"
#: Layer media types we can write back as files (raw: the layer is the file).
RAW_TYPES = frozenset({WEIGHT, WEIGHT_CONFIG, DOC, CODE, DATASET})
ANNOTATION_FILEPATH = "org.cncf.model.filepath"
ANNOTATION_TITLE = "org.opencontainers.image.title"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
CYCLONEDX_TYPE = "application/vnd.cyclonedx+json"
INTOTO_TYPE = "application/vnd.in-toto+json"
#: The OCI empty descriptor (``{}``), the config of referrer artifacts.
EMPTY_CONFIG = Descriptor(
    "application/vnd.oci.empty.v1+json",
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    2,
)

# fmt: off
_WEIGHT_SUFFIXES = frozenset({
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".ggml", ".onnx", ".h5", ".hdf5",
    ".keras", ".pb", ".tflite", ".msgpack", ".npy", ".npz", ".pkl", ".pickle", ".joblib", ".ot",
    ".mlmodel", ".pte", ".engine", ".plan", ".params", ".nemo",
})
_CODE_SUFFIXES = frozenset({
    ".py", ".sh", ".js", ".ts", ".ipynb", ".c", ".cc", ".cpp", ".h", ".cu", ".rs", ".go", ".java",
    ".rb", ".pl",
})
# fmt: on
_DOC_NAMES = re.compile(
    r"^(readme|license|licence|notice|copying|authors|citation|changelog)", re.I
)
_DOC_SUFFIXES = frozenset([".md", ".rst", ".pdf", ".html"])
_DATASET_SUFFIXES = frozenset([".parquet", ".arrow", ".csv", ".tsv", ".jsonl"])


def media_type_for(path: str) -> str:
    """The ModelPack layer media type of a file, by its name."""
    name = PurePosixPath(path).name
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _WEIGHT_SUFFIXES:
        return WEIGHT
    if suffix in _CODE_SUFFIXES:
        return CODE
    if _DOC_NAMES.match(name) or suffix in _DOC_SUFFIXES:
        return DOC
    if suffix in _DATASET_SUFFIXES:
        return DATASET
    # Configs, tokenizers, vocabularies, chat templates, generation settings.
    return WEIGHT_CONFIG


@dataclass(frozen=True)
class Layer:
    """One model file as a layer: its relative path and descriptor."""

    path: str
    descriptor: Descriptor


def model_layers(files: Sequence[tuple[str, str, int]]) -> tuple[Layer, ...]:
    """(relative path, sha256 hex, size) per file -> layers with ModelPack annotations."""
    return tuple(
        Layer(
            path,
            Descriptor(
                media_type_for(path),
                f"sha256:{digest}",
                size,
                {ANNOTATION_FILEPATH: path, ANNOTATION_TITLE: path},
            ),
        )
        for path, digest, size in files
    )


def build_config(
    facts: ModelFacts | None, layers: Sequence[Layer], *, name: str, version: str | None
) -> dict[str, Any]:
    """The ``application/vnd.cncf.model.config.v1+json`` document."""
    descriptor: dict[str, Any] = {"name": name}
    config: dict[str, Any] = {}
    if version:
        descriptor["version"] = version
    if facts is not None:
        licenses = [lic.spdx_id or lic.name for lic in facts.licenses if lic.spdx_id or lic.name]
        if licenses:
            descriptor["licenses"] = sorted(set(licenses))
        if facts.card.title:
            descriptor["title"] = facts.card.title[:200]
        if facts.model_type:
            descriptor["family"] = facts.model_type
        architecture = facts.model_type or (facts.architectures[0] if facts.architectures else None)
        if architecture:
            config["architecture"] = architecture
        if facts.formats:
            config["format"] = ",".join(sorted(set(facts.formats)))
        if facts.parameter_count:
            config["paramSize"] = param_size(facts.parameter_count)
        precision = facts.torch_dtype or (",".join(facts.dtypes) if facts.dtypes else None)
        if precision:
            config["precision"] = precision.lower()
    return {
        "descriptor": descriptor,
        "modelfs": {"type": "layers", "diffIds": [layer.descriptor.digest for layer in layers]},
        "config": config,
    }


def param_size(count: int) -> str:
    """22713216 -> ``22.7m``; 8030261248 -> ``8.03b`` (ModelPack's ``paramSize`` style)."""
    for unit, scale in (("t", 10**12), ("b", 10**9), ("m", 10**6), ("k", 10**3)):
        if count >= scale:
            return f"{count / scale:.3g}{unit}"
    return str(count)


def build_manifest(
    config: Descriptor, layers: Sequence[Layer], annotations: Mapping[str, str]
) -> bytes:
    """The model's OCI image manifest (ModelPack ``artifactType``), canonical bytes."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config.to_json(),
        "layers": [layer.descriptor.to_json() for layer in layers],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return canonical_json(doc)


def referrer_manifest(
    artifact_type: str, blob: Descriptor, subject: Descriptor, annotations: Mapping[str, str]
) -> bytes:
    """An OCI 1.1 artifact manifest holding one blob, attached to ``subject``."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_CONFIG.to_json(),
        "layers": [blob.to_json()],
        "subject": subject.to_json(),
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return canonical_json(doc)


def check_layer_path(value: str) -> str:
    """A layer's file path, refused when it could escape the destination or collide."""
    from modelseal.registry.errors import BadRequestError
    from modelseal.registry.names import check_file_path

    try:
        return check_file_path(value)
    except BadRequestError as exc:
        raise OciError(f"layer {exc.message}") from None
