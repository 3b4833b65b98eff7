"""``weights diff``: conversions, fine-tunes and surgical low-rank edits on real weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.errors import UsageError
from modelseal.scan.model import Severity
from modelseal.weights import diff_weights
from tests.samples import weights as samples

MLP = "encoder.layer.3.intermediate.dense.weight"


def _by_name(result) -> dict:  # type: ignore[no-untyped-def]
    return {t.name: t for t in result.tensors}


def test_identical_models(minilm: Path) -> None:
    result = diff_weights(minilm, minilm)
    assert result.verdict == "identical"
    assert result.findings == () and result.changed == ()
    assert all(t.status == "unchanged" for t in result.tensors)


@pytest.mark.parametrize(
    ("fixture", "dtype"), [("minilm_fp16", "float16"), ("minilm_bf16", "bfloat16")]
)
def test_dtype_conversion_is_a_conversion(
    request: pytest.FixtureRequest, minilm: Path, fixture: str, dtype: str
) -> None:
    result = diff_weights(minilm, request.getfixturevalue(fixture))
    assert result.verdict == "conversion"
    assert [f.rule for f in result.findings] == ["MS-WEIGHTS-DTYPE-CONVERSION"]
    assert result.is_clean()
    converted = [t for t in result.tensors if t.status == "converted"]
    assert len(converted) == 103 and all(t.new_dtype == dtype and not t.changed for t in converted)
    # converting back up is exact as well
    assert diff_weights(request.getfixturevalue(fixture), minilm).verdict == "conversion"


def test_real_finetune_is_reported_as_finetune(minilm: Path, minilm_finetuned: Path) -> None:
    result = diff_weights(minilm, minilm_finetuned)
    assert result.verdict == "fine-tune"
    assert [f.rule for f in result.findings] == ["MS-WEIGHTS-FINE-TUNE"]
    assert result.findings[0].severity is Severity.INFO
    assert result.is_clean()
    assert len(result.changed) > 90


@pytest.mark.parametrize("relative", [0.01, 0.003])
def test_rank1_rome_edit_is_found_and_attributed(
    minilm: Path, minilm_tensors: dict[str, np.ndarray], tmp_path: Path, relative: float
) -> None:
    tensors = dict(minilm_tensors)
    tensors[MLP] = samples.rank1_edit(tensors[MLP], relative=relative)
    result = diff_weights(minilm, samples.save_fp32(tensors, tmp_path / "rome.safetensors"))
    assert result.verdict == "low-rank-edit"
    (finding,) = result.findings
    assert finding.rule == "MS-WEIGHTS-LOW-RANK-EDIT" and finding.location == MLP
    assert "(layer 3)" in finding.message
    assert not result.is_clean()
    delta = _by_name(result)[MLP]
    assert delta.changed and delta.effective_rank == 1
    assert delta.rel_delta_norm == pytest.approx(relative, rel=0.01)
    assert [t.name for t in result.changed] == [MLP]


def test_rank3_memit_edit_in_a_bf16_model(minilm: Path, minilm_bf16: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(minilm_bf16))
    weight = state[MLP].float().numpy()
    edited = weight
    for seed in range(3):
        edited = samples.rank1_edit(edited, relative=0.006, seed=seed)
    import torch

    state[MLP] = torch.from_numpy(edited).to(torch.bfloat16)
    save_file(state, str(tmp_path / "memit.safetensors"))
    result = diff_weights(minilm_bf16, tmp_path / "memit.safetensors")
    assert result.verdict == "low-rank-edit"
    assert 1 <= _by_name(result)[MLP].effective_rank <= 4
    # against the fp32 original the edit still stands out of the conversion noise
    result = diff_weights(minilm, tmp_path / "memit.safetensors")
    assert [f.location for f in result.findings] == [MLP]


def test_full_rank_change_of_one_tensor_is_targeted_not_low_rank(
    minilm: Path, minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    tensors = dict(minilm_tensors)
    rng = np.random.default_rng(0)
    tensors[MLP] = tensors[MLP] + rng.standard_normal(tensors[MLP].shape).astype(np.float32) * 0.01
    result = diff_weights(minilm, samples.save_fp32(tensors, tmp_path / "noise.safetensors"))
    assert result.verdict == "targeted-change"
    assert [f.rule for f in result.findings] == ["MS-WEIGHTS-TARGETED-CHANGE"]
    assert _by_name(result)[MLP].effective_rank > 4


def test_renamed_added_removed(
    minilm: Path, minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    tensors = dict(minilm_tensors)
    tensors["pooler.dense.renamed"] = tensors.pop("pooler.dense.weight")
    del tensors["pooler.dense.bias"]
    tensors["classifier.weight"] = np.ones((2, 384), np.float32)
    result = diff_weights(minilm, samples.save_fp32(tensors, tmp_path / "moved.safetensors"))
    status = {t.name: t.status for t in result.tensors if t.status != "unchanged"}
    assert status == {
        "pooler.dense.renamed": "renamed",
        "pooler.dense.bias": "removed",
        "classifier.weight": "added",
    }
    assert _by_name(result)["pooler.dense.renamed"].renamed_from == "pooler.dense.weight"
    assert [f.rule for f in result.findings] == ["MS-WEIGHTS-TENSORS-ADDED-REMOVED"]


def test_digits_finetune_vs_retrain(
    digits_models: dict[str, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    paths = {
        k: samples.save_fp32(v, tmp_path / f"{k}.safetensors") for k, v in digits_models.items()
    }
    assert diff_weights(paths["seed1"], paths["seed1-ft"]).verdict == "fine-tune"
    assert diff_weights(paths["seed1"], paths["seed2"]).verdict == "fine-tune"


def test_json_contract(minilm: Path, minilm_fp16: Path) -> None:
    document = diff_weights(minilm, minilm_fp16).to_dict()
    assert set(document) >= {"tensors", "findings"}
    for tensor in document["tensors"]:
        assert set(tensor) >= {
            "name",
            "changed",
            "max_abs_delta",
            "rel_delta_norm",
            "effective_rank",
        }
    assert set(document["findings"][0]) == {"rule", "severity", "message", "location"}


def test_no_weights_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no weights here")
    with pytest.raises(UsageError):
        diff_weights(tmp_path, tmp_path)


def test_process_pool_diff_matches(
    minilm: Path,
    minilm_tensors: dict[str, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelseal.weights import stats

    tensors = dict(minilm_tensors)
    tensors[MLP] = samples.rank1_edit(tensors[MLP])
    edited = samples.save_fp32(tensors, tmp_path / "rome.safetensors")
    in_process = diff_weights(minilm, edited, workers=1)
    monkeypatch.setattr(stats, "PROCESS_MIN_BYTES", 0)
    pooled = diff_weights(minilm, edited, workers=2)
    assert pooled == in_process
    assert [f.location for f in pooled.findings] == [MLP]


@pytest.mark.parametrize("tune", ["adamw", "sgd", "lora"])
def test_real_fine_tunes_raise_nothing_serious(
    minilm: Path, trained: dict[str, Path], tune: str
) -> None:
    result = diff_weights(minilm, trained[tune])
    assert result.verdict == "fine-tune" and result.is_clean()


@pytest.mark.parametrize("tune", ["adamw", "sgd"])
def test_rank1_edit_inside_a_fine_tune_is_named(
    minilm: Path, trained: dict[str, Path], tmp_path: Path, tune: str
) -> None:
    # ROME on a model that was also fine-tuned: the edit's energy sits in one singular
    # direction far above the fine-tune's spread spectrum (3% of the matrix's norm).
    tensors = samples.load_fp32(trained[tune])
    name = "encoder.layer.2.output.dense.weight"
    tensors[name] = samples.rank1_edit(tensors[name], 0.03, seed=4)
    result = diff_weights(minilm, samples.save_fp32(tensors, tmp_path / "edit.safetensors"))
    assert result.verdict == "low-rank-edit"
    serious = [f for f in result.findings if f.severity.rank >= Severity.MEDIUM.rank]
    assert [(f.rule, f.location) for f in serious] == [("MS-WEIGHTS-LOW-RANK-EDIT", name)]
    assert "inside a fine-tune" in serious[0].message
    assert _by_name(result)[name].effective_rank == 1
