"""Builders for SBOM tests: model directories, safetensors files and OSV advisories.

Everything is written in code; pickles are never loaded, and the one pickle built
here only names ``os.system`` with the harmless argument ``true``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CARD",
    "osv",
    "write_model",
    "write_pickle_payload",
    "write_safetensors",
]

_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1}

CARD = """---
license: apache-2.0
language:
- en
- de
tags:
- text-classification
- sentiment
datasets:
- imdb
- stanfordnlp/sst2
base_model: org/base-model
base_model_relation: finetune
library_name: transformers
pipeline_tag: text-classification
model-index:
- name: org/tiny-sentiment
  results:
  - task:
      type: text-classification
    dataset:
      name: GLUE SST-2
      type: glue
      split: validation
    metrics:
    - type: accuracy
      value: 0.91
      name: Accuracy
---

# Tiny sentiment

## Intended uses

Classify the sentiment of short English reviews.

## Limitations

Trained on movie reviews only; other domains are out of scope.

## Bias, risks

May reflect biases of review writers.
"""


def write_safetensors(
    path: Path,
    tensors: Mapping[str, tuple[str, Sequence[int]]],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a valid safetensors file of zero-valued tensors ``name -> (dtype, shape)``."""
    header: dict[str, Any] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = _DTYPE_BYTES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return path


def write_model(
    root: Path,
    *,
    card: str | None = CARD,
    config: Mapping[str, Any] | str | bytes | None = None,
    requirements: str | None = None,
    extra: Mapping[str, str | bytes] | None = None,
) -> Path:
    """A small Hugging Face style model directory (1,922 parameters of F32/F16)."""
    root.mkdir(parents=True, exist_ok=True)
    if card is not None:
        (root / "README.md").write_text(card, encoding="utf-8")
    if config is None:
        config = {
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "torch_dtype": "float32",
            "transformers_version": "4.30.0",
            "hidden_size": 16,
            "num_hidden_layers": 2,
            "vocab_size": 100,
        }
    if isinstance(config, bytes):
        (root / "config.json").write_bytes(config)
    elif isinstance(config, str):
        (root / "config.json").write_text(config, encoding="utf-8")
    else:
        (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (root / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizer", "model_max_length": 512})
    )
    (root / "tokenizer.json").write_text(json.dumps({"model": {"type": "WordPiece"}}))
    (root / "generation_config.json").write_text(json.dumps({"max_length": 64, "do_sample": False}))
    write_safetensors(
        root / "model.safetensors",
        {
            "embeddings.weight": ("F32", (100, 16)),
            "classifier.weight": ("F16", (2, 16)),
            "classifier.bias": ("F16", (2,)),
            "pooler.weight": ("F32", (16, 16)),
            "pooler.bias": ("F32", (16,)),
            "extra": ("F32", (16,)),
        },
        {"format": "pt"},
    )
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    for name, content in (extra or {}).items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return root


def write_pickle_payload(path: Path) -> Path:
    """A protocol-0 pickle whose load would call ``os.system('true')`` (never loaded)."""
    path.write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    return path


def osv(
    id: str,
    *,
    ecosystem: str,
    name: str,
    ranges: Sequence[Mapping[str, Any]] = (),
    versions: Sequence[str] = (),
    sha256: Sequence[str] = (),
    severity: str = "HIGH",
    summary: str = "test advisory",
) -> dict[str, Any]:
    """One OSV advisory with a single ``affected`` entry."""
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if ranges:
        affected["ranges"] = list(ranges)
    if versions:
        affected["versions"] = list(versions)
    if sha256:
        affected["ecosystem_specific"] = {"sha256": list(sha256)}
    return {
        "schema_version": "1.6.0",
        "id": id,
        "modified": "2026-01-01T00:00:00Z",
        "summary": summary,
        "database_specific": {"severity": severity},
        "affected": [affected],
    }
