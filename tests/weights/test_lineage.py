"""Fingerprints and identification: derived models are recognised, unrelated ones are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.errors import UsageError, WeightsError
from modelseal.weights import Fingerprint, fingerprint, identify
from modelseal.weights.lineage import DERIVED_THRESHOLD, similarity
from tests.samples import weights as samples


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory, minilm: Path, digits_models) -> Path:  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("known")
    (directory / "minilm.json").write_text(
        fingerprint([minilm], label="all-MiniLM-L6-v2").to_json()
    )
    digits = samples.save_fp32(
        digits_models["seed1"], directory.parent / "digits-seed1.safetensors"
    )
    (directory / "digits.json").write_text(fingerprint([digits], label="digits-seed1").to_json())
    return directory


def test_fingerprint_is_compact_and_round_trips(minilm: Path) -> None:
    print_ = fingerprint([minilm], label="m")
    text = print_.to_json()
    assert len(text) < 200_000  # vs 90 MB of weights
    again = Fingerprint.from_json(text)
    assert again.label == "m" and len(again.tensors) == len(print_.tensors)
    assert similarity(print_, again)[0] == pytest.approx(1.0)


@pytest.mark.parametrize("fixture", ["minilm", "minilm_fp16", "minilm_bf16", "minilm_finetuned"])
def test_real_model_copies_are_identified_as_derived(
    request: pytest.FixtureRequest, known: Path, fixture: str
) -> None:
    matches = identify([request.getfixturevalue(fixture)], known)
    best = matches[0]
    assert best.label == "all-MiniLM-L6-v2" and best.derived
    assert best.score > 0.95 and best.matched > 30
    assert not any(m.derived for m in matches[1:])


def test_renamed_reupload_is_identified(
    known: Path, minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    renamed = {f"bert.{k.replace('encoder.layer', 'blocks')}": v for k, v in minilm_tensors.items()}
    path = samples.save_fp32(renamed, tmp_path / "reupload.safetensors")
    best = identify([path], known)[0]
    assert best.label == "all-MiniLM-L6-v2" and best.derived


def test_digits_finetune_is_derived_and_other_seed_is_not(
    known: Path, digits_models: dict[str, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    tuned = samples.save_fp32(digits_models["seed1-ft"], tmp_path / "ft.safetensors")
    other = samples.save_fp32(digits_models["seed2"], tmp_path / "seed2.safetensors")
    tuned_match = {m.label: m for m in identify([tuned], known)}["digits-seed1"]
    other_match = {m.label: m for m in identify([other], known)}["digits-seed1"]
    assert tuned_match.derived and tuned_match.score > 0.9
    assert not other_match.derived and abs(other_match.score) < DERIVED_THRESHOLD / 2


def test_differently_initialised_minilm_architecture_is_not_derived(
    known: Path, minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    rng = np.random.default_rng(42)
    fresh = {
        k: (rng.standard_normal(v.shape) * 0.02).astype(np.float32) if v.dtype == np.float32 else v
        for k, v in minilm_tensors.items()
    }
    best = {
        m.label: m
        for m in identify([samples.save_fp32(fresh, tmp_path / "fresh.safetensors")], known)
    }
    assert not best["all-MiniLM-L6-v2"].derived


def test_invalid_fingerprint_files(tmp_path: Path, minilm: Path) -> None:
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(WeightsError, match="invalid fingerprint"):
        identify([minilm], tmp_path)
    with pytest.raises(UsageError):
        identify([minilm], tmp_path / "missing")
