"""GGUF samples: real files written with the ``gguf`` package, malformed ones by hand."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["raw_gguf", "raw_kv", "raw_string", "raw_tensor_info", "write_gguf"]


def write_gguf(
    path: Path,
    *,
    templates: Mapping[str, str] | None = None,
    quantized: bool = True,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """A small llama-like GGUF file: f32, f16 and (optionally) q8_0 tensors, a vocab,
    and the given chat templates (``key -> template``)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-model")
    writer.add_context_length(128)
    writer.add_token_list(["<s>", "</s>", "hello", "world"])
    writer.add_token_scores([0.0, 0.0, -1.0, -2.0])
    for key, template in (templates or {}).items():
        writer.add_string(key, template)
    for key, value in (extra or {}).items():
        writer.add_string(key, value)
    writer.add_tensor("token_embd.weight", np.arange(32, dtype=np.float32).reshape(4, 8))
    writer.add_tensor("output_norm.weight", np.ones(8, dtype=np.float16))
    if quantized:
        blocks = np.zeros((2, 34), dtype=np.uint8)  # 2 rows of one 32-element q8_0 block
        writer.add_tensor("blk.0.attn_q.weight", blocks, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def raw_string(text: str | bytes) -> bytes:
    """A GGUF string: u64 length + bytes."""
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def raw_kv(key: str, value: str | int | bytes, *, type_id: int | None = None) -> bytes:
    """A key/value record: a string value, a uint32 value, or raw bytes with ``type_id``."""
    if isinstance(value, str):
        return raw_string(key) + struct.pack("<I", 8) + raw_string(value)
    if isinstance(value, int):
        return raw_string(key) + struct.pack("<II", 4, value)
    assert type_id is not None
    return raw_string(key) + struct.pack("<I", type_id) + value


def raw_tensor_info(name: str, dims: Iterable[int], type_id: int, offset: int) -> bytes:
    """A tensor info record (``dims`` in GGML order)."""
    dims = list(dims)
    return (
        raw_string(name)
        + struct.pack("<I", len(dims))
        + struct.pack(f"<{len(dims)}Q", *dims)
        + struct.pack("<IQ", type_id, offset)
    )


def raw_gguf(
    kvs: Iterable[bytes] = (),
    tensors: Iterable[bytes] = (),
    *,
    data: bytes = b"",
    version: int = 3,
    n_kv: int | None = None,
    n_tensors: int | None = None,
    alignment: int = 32,
) -> bytes:
    """GGUF bytes assembled by hand (counts may lie, to build hostile files)."""
    kvs, tensors = list(kvs), list(tensors)
    head = b"GGUF" + struct.pack(
        "<IQQ",
        version,
        len(tensors) if n_tensors is None else n_tensors,
        len(kvs) if n_kv is None else n_kv,
    )
    body = head + b"".join(kvs) + b"".join(tensors)
    if data:
        body += b"\x00" * (-len(body) % alignment)
    return body + data
