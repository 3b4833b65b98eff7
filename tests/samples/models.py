"""Sample model directories for integrity tests, built in code (no binary blobs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["build_model_dir", "write_safetensors"]


def write_safetensors(
    path: Path, tensors: dict[str, np.ndarray], metadata: dict | None = None
) -> Path:
    """Write a safetensors file (header padded to 8 bytes, tensors in name order)."""
    dtypes = {"float32": "F32", "float16": "F16", "int64": "I64", "uint16": "BF16", "int8": "I8"}
    header: dict = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": dtypes[array.dtype.name],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(len(text).to_bytes(8, "little"))
        handle.write(text)
        for blob in blobs:
            handle.write(blob)
    return path


def build_model_dir(root: Path, *, shards: int = 2, seed: int = 0, rows: int = 16) -> Path:
    """A small Hugging Face-style model: safetensors shards, config, tokenizer, README."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    index = {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {
            f"layers.{i}.attn.weight": rng.standard_normal((rows, 8)).astype(np.float32),
            f"layers.{i}.attn.bias": rng.standard_normal(8).astype(np.float32),
            f"layers.{i}.mlp.weight": rng.standard_normal((8, rows)).astype(np.float16),
        }
        write_safetensors(root / name, tensors, {"format": "pt"})
        index.update(dict.fromkeys(tensors, name))
    (root / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": index}, indent=2)
    )
    (root / "config.json").write_text(json.dumps({"model_type": "toy", "hidden_size": 8}))
    (root / "tokenizer.json").write_text(json.dumps({"version": "1.0", "vocab": {"a": 0}}))
    (root / "README.md").write_text("# toy model\n\nFor tests.\n")
    return root
