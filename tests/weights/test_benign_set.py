"""Precision: no finding at medium or above on real shipped models, fine-tunes and formulas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.scan.model import Finding, Severity
from modelseal.weights import scan_weights
from tests.samples import weights as samples
from tests.samples import weights_benign as benign

SHIPPED = benign.shipped_models()


def _serious(path: Path) -> list[Finding]:
    report = scan_weights([path])
    assert all(result.error is None for result in report.results), report.results
    return [
        f for r in report.results for f in r.findings if f.severity.rank >= Severity.MEDIUM.rank
    ]


def test_the_shipped_set_is_installed() -> None:
    # The audio model with STFT buffers (safetensors + ONNX exports) and the ONNX OCR and
    # file-type models are what raised false alarms; they must be part of every run.
    names = set(SHIPPED)
    assert "silero_vad/silero_vad_16k.safetensors" in names
    assert sum(name.startswith("silero_vad/") and name.endswith(".onnx") for name in names) >= 5
    assert "magika/model.onnx" in names
    assert sum(name.startswith("rapidocr_onnxruntime/") for name in names) == 3


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_models_have_no_serious_findings(name: str) -> None:
    assert _serious(SHIPPED[name]) == []


def test_single_inf_graph_constant_is_low(tmp_path: Path) -> None:
    # magika's ONNX graph holds one -inf constant (a running max's start value).
    report = scan_weights([SHIPPED["magika/model.onnx"]])
    (finding,) = [f for r in report.results for f in r.findings]
    assert finding.rule == "MS-WEIGHTS-NONFINITE" and finding.severity is Severity.LOW
    assert "graph constant" in finding.message


def test_nonfinite_parameter_is_still_high(tmp_path: Path) -> None:
    weight = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    weight[3, 4] = -np.inf
    path = samples.save_fp32({"w": weight, "c": np.full(1, -np.inf, np.float32)}, tmp_path / "x")
    findings = scan_weights([path]).results[0].findings
    assert {(f.location, f.severity) for f in findings} == {
        ("w[196]", Severity.HIGH),
        ("c[0]", Severity.LOW),
    }


@pytest.mark.parametrize("name", ["adamw", "sgd", "lora", "int8", "fp16-fp32", "bf16-fp32"])
def test_fine_tunes_and_conversions_have_no_serious_findings(
    trained: dict[str, Path], name: str
) -> None:
    assert _serious(trained[name]) == []


def test_weight_decay_fine_tune_changes_the_low_bits(
    minilm: Path, trained: dict[str, Path]
) -> None:
    # The case that raised false alarms: decay rescales fp16-origin embedding rows, so
    # their low bits become structured; the detector must see them and explain them.
    from modelseal.weights.lowbits import block_evidence, block_tvd

    before = samples.load_fp32(minilm)["embeddings.position_embeddings.weight"]
    after = samples.load_fp32(trained["adamw"])["embeddings.position_embeddings.weight"]
    units = after.reshape(-1).view(np.uint32)[65536:131072]
    assert not np.array_equal(before.reshape(-1)[65536:131072], units.view(np.float32))
    tvd = block_tvd(np.bincount(units & 0xFF, minlength=256).astype(np.int64), 8)
    assert tvd is not None and tvd > 0.4
    evidence = block_evidence(units, 8)
    assert evidence is not None and evidence.kind is None
    assert evidence.dependence > 0.5


def test_formula_tensors_have_no_serious_findings(tmp_path: Path) -> None:
    tensors = benign.formula_tensors()
    assert _serious(samples.save_fp32(tensors, tmp_path / "formulas.safetensors")) == []
    half = {k: v.astype(np.float16) for k, v in tensors.items()}
    assert _serious(samples.save_fp32(half, tmp_path / "formulas16.safetensors")) == []
    bf16 = {k: samples.to_bf16_units(v) for k, v in tensors.items()}
    path = samples.save_mixed(bf16, tmp_path / "formulas-bf16.safetensors", bf16=tuple(bf16))
    assert _serious(path) == []


@pytest.mark.parametrize("name", ["stft_basis_512", "dct_512", "fourier_cos"])
def test_text_over_a_formula_tensor_is_found(tmp_path: Path, name: str) -> None:
    # The benign explanation (repeated values) must not hide a payload written over them.
    tensor = benign.FORMULAS[name]()
    rng = np.random.default_rng(3)
    words = [b"import", b"os", b"def", b"run", b"(self):", b"return", b"print", b"\n    "]
    text = b" ".join(words[i] for i in rng.integers(0, len(words), 40_000))
    tensor = samples.embed_bytes(tensor, text[: tensor.size], (0,), 0).reshape(tensor.shape)
    findings = scan_weights([samples.save_fp32({name: tensor}, tmp_path / "t")]).results[0].findings
    lowbit = [f for f in findings if f.rule == "MS-WEIGHTS-LOWBIT-STRUCTURE"]
    assert lowbit and lowbit[0].severity is Severity.HIGH
    assert "printable" in lowbit[0].message
