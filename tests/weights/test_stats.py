"""Per-tensor statistics match numpy, across dtypes and chunk boundaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from modelseal.weights import weight_stats
from modelseal.weights.stats import CHUNK_ELEMENTS
from tests.samples import weights as samples


def test_statistics_match_numpy_across_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    big = rng.standard_t(5, size=CHUNK_ELEMENTS + 12_345).astype(np.float32) * 0.05
    small = np.array([[1.0, 2.0], [3.0, np.nan]], dtype=np.float32)
    path = samples.save_fp32({"big": big, "small": small}, tmp_path / "s.safetensors")
    by_name = {s.name: s for s in weight_stats([path])}
    stats = by_name["big"]
    assert stats.numel == big.size and stats.shape == big.shape
    assert stats.mean == pytest.approx(float(big.mean(dtype=np.float64)), abs=1e-6)
    assert stats.std == pytest.approx(float(big.std(dtype=np.float64)), rel=1e-4)
    assert stats.kurtosis == pytest.approx(scipy_stats.kurtosis(big.astype(np.float64)), rel=0.01)
    assert stats.min == float(big.min()) and stats.max == float(big.max())
    assert stats.quantiles["0.5"] == pytest.approx(float(np.median(big)), abs=0.01)
    assert 7.8 < stats.lowbit_entropy <= 8.0  # float32 scaling skews low bits slightly
    small_stats = by_name["small"]
    assert small_stats.nan == 1 and small_stats.mean == pytest.approx(2.0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_statistics(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path, dtype: str
) -> None:
    weight = minilm_tensors["encoder.layer.0.intermediate.dense.weight"]
    if dtype == "float16":
        path = samples.save_fp32({"w": weight.astype(np.float16)}, tmp_path / "h.safetensors")
    else:
        path = samples.save_mixed(
            {"w": samples.to_bf16_units(weight)}, tmp_path / "b.safetensors", bf16=("w",)
        )
    (stats,) = weight_stats([path])
    assert stats.dtype == dtype
    assert stats.mean == pytest.approx(float(weight.mean()), abs=2e-4)
    assert stats.std == pytest.approx(float(weight.std()), rel=0.01)


def test_non_float_tensors_are_listed(minilm: Path) -> None:
    stats = {s.name: s for s in weight_stats([minilm])}
    ids = stats["embeddings.position_ids"]
    assert ids.dtype == "int64" and ids.mean is None
    assert len(stats) == 104
    assert stats["embeddings.word_embeddings.weight"].to_dict()["shape"] == [30522, 384]


def test_process_pool_gives_the_same_results(
    minilm_tensors: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelseal.weights import scan_weights, stats

    name = "encoder.layer.1.intermediate.dense.weight"
    tensors = {k: v for k, v in minilm_tensors.items() if k.startswith("encoder.layer.1.")}
    tensors[name] = samples.embed_bits(tensors[name], samples.SCRIPT_PAYLOAD, 1, "lsb", 3)
    path = samples.save_fp32(tensors, tmp_path / "m.safetensors")
    in_process = weight_stats([path], workers=1), scan_weights([path], workers=1)
    monkeypatch.setattr(stats, "PROCESS_MIN_BYTES", 0)
    pooled = weight_stats([path], workers=2), scan_weights([path], workers=2)
    assert pooled[0] == in_process[0]
    assert pooled[1].results[0].findings == in_process[1].results[0].findings
    assert [f.location for f in pooled[1].results[0].findings] == [f"{name}[3:]"]
