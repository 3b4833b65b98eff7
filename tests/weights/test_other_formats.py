"""Weight forensics through every tensor reader: PyTorch zip and GGUF (other readers have
their own tests in tests/formats/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from modelseal.weights import diff_weights, scan_weights
from tests.samples import weights as samples

NAME = "encoder.layer.0.intermediate.dense.weight"


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not available")


def test_pytorch_zip_checkpoint(minilm_tensors: dict[str, np.ndarray], tmp_path: Path) -> None:
    _needs("modelseal.formats.torch")
    import torch

    clean = minilm_tensors[NAME]
    evil = samples.embed_bytes(clean, samples.ELF_PAYLOAD, (0, 1, 2), 5)
    torch.save({NAME: torch.from_numpy(evil), "clean": torch.from_numpy(clean)}, tmp_path / "m.pt")
    (result,) = scan_weights([tmp_path / "m.pt"]).results
    assert result.error is None
    assert [f.location for f in result.findings] == [f"{NAME}[5:]"]


def test_pytorch_zip_vs_safetensors_diff(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    _needs("modelseal.formats.torch")
    import torch

    subset = {k: v for k, v in minilm_tensors.items() if k.startswith("encoder.layer.0.")}
    base = samples.save_fp32(subset, tmp_path / "base.safetensors")
    edited = {k: torch.from_numpy(v) for k, v in subset.items()}
    edited[NAME] = torch.from_numpy(samples.rank1_edit(subset[NAME]))
    torch.save(edited, tmp_path / "edited.pt")
    result = diff_weights(base, tmp_path / "edited.pt")
    assert [f.location for f in result.findings] == [NAME]


def test_gguf_file(minilm_tensors: dict[str, np.ndarray], tmp_path: Path) -> None:
    _needs("modelseal.formats.gguf")
    gguf = pytest.importorskip("gguf")
    clean = minilm_tensors[NAME]
    flipped = clean.copy()
    flipped.ravel()[99] = 1e30
    writer = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "bert")
    writer.add_tensor("flipped", flipped)
    writer.add_tensor("clean", clean)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (result,) = scan_weights([tmp_path / "m.gguf"]).results
    assert result.error is None
    assert [(f.rule, f.location) for f in result.findings] == [
        ("MS-WEIGHTS-OUTLIER", "flipped[99]")
    ]
