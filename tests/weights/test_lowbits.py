"""Random payloads over the low byte of fp16/bf16-origin values (precision breaks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.scan.model import Finding, Severity
from modelseal.weights import scan_weights
from modelseal.weights.lowbits import block_evidence
from tests.samples import weights as samples

TARGET = "encoder.layer.2.intermediate.dense.weight"


def _narrow(weight: np.ndarray, origin: str) -> np.ndarray:
    """fp32 values that came from ``origin`` (a bf16/fp16-trained model saved as fp32)."""
    if origin == "bfloat16":
        return (samples.to_bf16_units(weight).astype(np.uint32) << 16).view(np.float32)
    return weight.astype(np.float16).astype(np.float32)


def _findings(tensors: dict[str, np.ndarray], path: Path) -> list[Finding]:
    return list(scan_weights([samples.save_fp32(tensors, path)]).results[0].findings)


@pytest.mark.parametrize("origin", ["bfloat16", "float16"])
@pytest.mark.parametrize("size", [1024, 50_000])
def test_random_bytes_over_the_low_byte_of_narrow_values(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path, origin: str, size: int
) -> None:
    weight = _narrow(minilm_tensors[TARGET], origin)
    payload = np.random.default_rng(size).bytes(size)  # encrypted-looking: no header
    start = 70_001
    tensors = {TARGET: samples.embed_bytes(weight, payload, (0,), start)}
    findings = _findings(tensors, tmp_path / "rnd.safetensors")
    assert [f.rule for f in findings] == ["MS-WEIGHTS-LOWBIT-PRECISION"]
    (finding,) = findings
    assert finding.severity is Severity.MEDIUM
    first, last = (int(x) for x in finding.location[len(TARGET) + 1 : -1].split(":"))
    assert start <= first < start + 8 and start + size - 8 < last <= start + size
    assert "written over the low byte" in finding.message


@pytest.mark.parametrize("origin", ["bfloat16", "float16"])
def test_narrow_values_trained_further_are_not_a_payload(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path, origin: str
) -> None:
    weight = _narrow(minilm_tensors[TARGET], origin)
    rng = np.random.default_rng(1)
    rows = weight.copy()
    # The first 100 rows trained on in fp32 (every bit changes), the next 100 nudged by
    # a few ulps upwards only (tiny updates: the bits above the low byte stay zero).
    rows[:100] += rng.standard_normal(rows[:100].shape).astype(np.float32) * 1e-4
    units = rows.view(np.uint32)
    units[100:200] += rng.integers(1, 12, units[100:200].shape, dtype=np.uint32)
    assert _findings({TARGET: rows}, tmp_path / "ft.safetensors") == []


def test_mixed_precision_real_embeddings_are_not_a_payload(
    minilm_tensors: dict[str, np.ndarray],
) -> None:
    # MiniLM's position embeddings: rows 0-127 trained in fp32, rows 128-511 still fp16.
    table = minilm_tensors["embeddings.position_embeddings.weight"]
    units = table.view(np.uint32)
    assert np.all(units[128:] & 0x1FFF == 0) and np.mean(units[:128] & 0xFF == 0) < 0.01
    evidence = block_evidence(units.reshape(-1)[:65536], 8)
    assert evidence is not None and evidence.kind is None


def test_random_bytes_in_full_precision_weights_raise_nothing(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    # The documented limit: over fp32-trained values, uniform bytes are
    # indistinguishable from the uniform low bits they replace.
    payload = np.random.default_rng(2).bytes(100_000)
    weight = samples.embed_bytes(minilm_tensors[TARGET], payload, (0,), 1000)
    assert not np.array_equal(weight, minilm_tensors[TARGET])
    assert _findings({TARGET: weight}, tmp_path / "fp32.safetensors") == []
