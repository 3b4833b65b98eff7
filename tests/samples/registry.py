"""Model directories for registry tests, built in code (payloads are harmless)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tests.samples.pickles import call_pickle

__all__ = ["write_model", "write_pickle_model"]


def write_model(
    root: Path, *, seed: int = 0, size: int = 64, extra: dict[str, bytes] | None = None
) -> Path:
    """A small clean model: a safetensors file of ``size`` float32 values and a config."""
    root.mkdir(parents=True, exist_ok=True)
    count = max(1, size)
    header = json.dumps({"w": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}})
    raw = header.encode()
    raw += b" " * (-len(raw) % 8)
    values = b"".join(struct.pack("<f", float((i * 7 + seed) % 13) / 13.0) for i in range(count))
    (root / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + values)
    (root / "config.json").write_text(json.dumps({"model_type": "toy", "seed": seed}))
    for name, data in (extra or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_pickle_model(root: Path) -> Path:
    """A model whose ``pytorch_model.bin`` pickle would call ``os.system("true")`` if loaded.

    It is never loaded: the registry's scanner reads its opcodes statically.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytorch_model.bin").write_bytes(call_pickle("os", "system", "true"))
    (root / "config.json").write_text(json.dumps({"model_type": "toy"}))
    return root
