"""SafeTensors samples: real files from the ``safetensors`` package, malformed ones by hand."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MALFORMED", "raw_safetensors", "write_real_safetensors"]


def write_real_safetensors(
    path: Path, dtype: str, metadata: Mapping[str, str] | None = None
) -> Path:
    """Two tensors saved by the ``safetensors`` package (``float32``, ``float16``, ``bfloat16``)."""
    if dtype == "bfloat16":
        import torch
        from safetensors.torch import save_file as save_torch

        tensors = {
            "embed.weight": torch.arange(12, dtype=torch.bfloat16).reshape(3, 4),
            "head.bias": torch.ones(3, dtype=torch.bfloat16),
        }
        save_torch(tensors, str(path), metadata=dict(metadata or {}) or None)
        return path
    import numpy as np
    from safetensors.numpy import save_file

    arrays = {
        "embed.weight": np.arange(12, dtype=dtype).reshape(3, 4),
        "head.bias": np.ones(3, dtype=dtype),
    }
    save_file(arrays, str(path), metadata=dict(metadata or {}) or None)
    return path


def raw_safetensors(
    header: Mapping[str, Any] | str | bytes,
    data: bytes,
    *,
    length: int | None = None,
    padding: bytes = b"",
) -> bytes:
    """A file with the given header (a mapping, or raw JSON text to allow duplicates)."""
    if isinstance(header, bytes):
        text = header
    elif isinstance(header, str):
        text = header.encode()
    else:
        text = json.dumps(header).encode()
    text += padding
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def _t(dtype: str, shape: list[int], start: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}


#: name -> (file bytes, part of the expected error message)
MALFORMED: dict[str, tuple[bytes, str]] = {
    "overlap": (
        raw_safetensors({"a": _t("F32", [2], 0, 8), "b": _t("F32", [2], 4, 12)}, b"\0" * 12),
        "overlaps",
    ),
    "gap": (
        raw_safetensors({"a": _t("F32", [2], 0, 8), "b": _t("F32", [1], 12, 16)}, b"\0" * 16),
        "gap",
    ),
    "wrong-size": (raw_safetensors({"a": _t("F32", [3], 0, 8)}, b"\0" * 8), "needs 12"),
    "uncovered-tail": (
        raw_safetensors({"a": _t("F32", [2], 0, 8)}, b"\0" * 8 + b"hidden payload"),
        "data buffer holds",
    ),
    "huge-header-length": (raw_safetensors({}, b"", length=2**40), "limit"),
    "header-past-end": (raw_safetensors({}, b"", length=5000), "exceeds the file size"),
    "duplicate-keys": (
        raw_safetensors(
            '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
            '"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
            b"\0" * 4,
        ),
        "duplicate key",
    ),
    "non-string-metadata": (
        raw_safetensors({"__metadata__": {"epochs": 3}, "a": _t("F32", [1], 0, 4)}, b"\0" * 4),
        "__metadata__ must map strings to strings",
    ),
    "unknown-dtype": (raw_safetensors({"a": _t("F128", [1], 0, 16)}, b"\0" * 16), "dtype"),
    "truncated": (
        raw_safetensors({"a": _t("F32", [4], 0, 16)}, b"\0" * 16)[:40],
        "",
    ),
    "not-json": (raw_safetensors(b"{not json at all}", b""), "not valid JSON"),
}
