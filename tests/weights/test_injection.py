"""Injected values, and zero findings on the real model, its conversions and a fine-tune."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.scan.model import Severity, Verdict
from modelseal.weights import scan_weights
from tests.samples import weights as samples

TARGET = "encoder.layer.1.attention.self.value.weight"


def _scan(tensors: dict[str, np.ndarray], path: Path) -> list:
    report = scan_weights([samples.save_fp32(tensors, path)])
    (result,) = report.results
    assert result.error is None
    return list(result.findings)


@pytest.fixture
def real(minilm_tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in minilm_tensors.items() if k.startswith("encoder.layer.1.")}


# ---------------------------------------------------------------- benign: zero findings


@pytest.mark.parametrize("variant", ["original", "fp16", "bf16", "finetuned"])
def test_real_model_and_benign_derivatives_have_zero_findings(
    request: pytest.FixtureRequest, variant: str
) -> None:
    fixture = {"original": "minilm", "fp16": "minilm_fp16", "bf16": "minilm_bf16"}.get(
        variant, "minilm_finetuned"
    )
    path = request.getfixturevalue(fixture)
    report = scan_weights([path])
    (result,) = report.results
    assert result.verdict is Verdict.CLEAN
    assert result.findings == ()


def test_trained_digits_models_have_zero_findings(
    digits_models: dict[str, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    for name, state in digits_models.items():
        assert _scan(state, tmp_path / f"{name}.safetensors") == [], name


# ---------------------------------------------------------------- attacks


def test_nan_and_inf_are_found(real: dict[str, np.ndarray], tmp_path: Path) -> None:
    real[TARGET].ravel()[[10, 500]] = np.nan
    real[TARGET].ravel()[900] = np.inf
    findings = _scan(real, tmp_path / "nan.safetensors")
    assert [(f.rule, f.location) for f in findings] == [("MS-WEIGHTS-NONFINITE", f"{TARGET}[10]")]
    assert "2 NaN and 1 infinite" in findings[0].message
    assert findings[0].severity is Severity.HIGH


def test_inf_in_an_attention_mask_is_low(tmp_path: Path) -> None:
    mask = np.triu(np.full((64, 64), -np.inf, dtype=np.float32), 1)
    findings = _scan(
        {"attn.mask": np.where(np.isinf(mask), mask, 0).astype(np.float32)},
        tmp_path / "mask.safetensors",
    )
    assert [f.severity for f in findings] == [Severity.LOW]


def test_exponent_bit_flip_to_1e30_is_found(real: dict[str, np.ndarray], tmp_path: Path) -> None:
    real[TARGET].ravel()[12_345] = 1e30
    findings = _scan(real, tmp_path / "flip.safetensors")
    assert [(f.rule, f.location) for f in findings] == [("MS-WEIGHTS-OUTLIER", f"{TARGET}[12345]")]
    assert "1e+30" in findings[0].message


def test_single_exponent_bit_flip_of_a_real_weight(
    real: dict[str, np.ndarray], tmp_path: Path
) -> None:
    units = real[TARGET].reshape(-1).view(np.uint32)
    units[777] ^= np.uint32(1 << 30)  # the top exponent bit: 0.0x -> ~1e37
    findings = _scan(real, tmp_path / "bitflip.safetensors")
    assert [f.location for f in findings] == [f"{TARGET}[777]"]


def test_large_but_plausible_weights_are_not_outliers(
    real: dict[str, np.ndarray], tmp_path: Path
) -> None:
    real[TARGET].ravel()[:50] *= 300.0  # heavy-tailed outlier features exist in real LLMs
    assert _scan(real, tmp_path / "tails.safetensors") == []


def test_subnormal_flood_is_found(real: dict[str, np.ndarray], tmp_path: Path) -> None:
    flat = real[TARGET].reshape(-1)
    flat[1000:21000] = np.float32(1e-40)
    findings = _scan(real, tmp_path / "subnormal.safetensors")
    assert [(f.rule, f.location) for f in findings] == [
        ("MS-WEIGHTS-SUBNORMAL-FLOOD", f"{TARGET}[1000]")
    ]


def test_natural_fp16_subnormals_are_not_a_flood(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    half = {k: v.astype(np.float16) for k, v in minilm_tensors.items() if v.dtype == np.float32}
    subnormals = sum(int(np.count_nonzero((v != 0) & (np.abs(v) < 6.1e-5))) for v in half.values())
    assert subnormals > 1000  # the conversion does produce subnormals...
    report = scan_weights([samples.save_fp32(half, tmp_path / "half.safetensors")])
    assert report.results[0].findings == ()  # ...as many as the distribution predicts


def test_constant_matrix_is_found(real: dict[str, np.ndarray], tmp_path: Path) -> None:
    real[TARGET][:] = 0.0123
    findings = _scan(real, tmp_path / "const.safetensors")
    assert [(f.rule, f.location) for f in findings] == [("MS-WEIGHTS-CONSTANT", TARGET)]


def test_zero_matrices_and_constant_vectors_are_benign(tmp_path: Path) -> None:
    tensors = {
        "lora_B.weight": np.zeros((64, 8), np.float32),  # zero-initialised adapter
        "norm.weight": np.ones(384, np.float32),  # untouched LayerNorm
    }
    assert _scan(tensors, tmp_path / "init.safetensors") == []


def test_duplicated_tensor_is_found(real: dict[str, np.ndarray], tmp_path: Path) -> None:
    source = "encoder.layer.1.attention.self.query.weight"
    real["encoder.layer.1.attention.self.key.weight"] = real[source].copy()
    findings = _scan(real, tmp_path / "dup.safetensors")
    assert [f.rule for f in findings] == ["MS-WEIGHTS-DUPLICATE"]
    assert source in findings[0].message


def test_tied_embeddings_are_not_duplicates(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    embedding = minilm_tensors["embeddings.position_embeddings.weight"]
    tensors = {"model.embed_tokens.weight": embedding, "lm_head.weight": embedding.copy()}
    assert _scan(tensors, tmp_path / "tied.safetensors") == []
