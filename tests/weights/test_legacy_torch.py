"""Legacy (pre-1.6, non-zip) PyTorch checkpoints: storages located by the opcode walk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelseal.formats.tensors import tensor_array
from modelseal.scan.model import Severity, Verdict
from modelseal.weights import scan_weights
from modelseal.weights.diff import load_tensors
from tests.samples import weights as samples

torch = pytest.importorskip("torch")

TARGET = "encoder.layer.2.intermediate.dense.weight"
NAMES = (TARGET, "encoder.layer.2.output.dense.weight", "encoder.layer.2.output.dense.bias")


def _save_legacy(tensors: dict[str, np.ndarray], path: Path) -> Path:
    state = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in tensors.items()}
    state["half"] = state[NAMES[2]].half()  # a second storage type
    torch.save(state, path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:2] != b"PK"  # really the legacy stream, not a zip
    return path


@pytest.fixture
def real(minilm_tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: minilm_tensors[name].copy() for name in NAMES}


def test_legacy_checkpoint_tensors_are_read_exactly(
    real: dict[str, np.ndarray], tmp_path: Path
) -> None:
    path = _save_legacy(real, tmp_path / "model.pt")
    infos = load_tensors([path])
    assert sorted(infos) == sorted([*NAMES, "half"])
    for name in NAMES:
        assert np.array_equal(tensor_array(infos[name]), real[name])
    assert infos["half"].dtype == "float16"


def test_benign_legacy_checkpoint_is_clean(real: dict[str, np.ndarray], tmp_path: Path) -> None:
    report = scan_weights([_save_legacy(real, tmp_path / "model.pt")])
    (result,) = report.results
    assert result.format == "pytorch-legacy"
    assert result.error is None and result.findings == ()


def test_payload_in_low_bits_of_legacy_checkpoint(
    real: dict[str, np.ndarray], tmp_path: Path
) -> None:
    real[TARGET] = samples.embed_bits(real[TARGET], samples.ELF_PAYLOAD[:256], 2, "msb", 999)
    report = scan_weights([_save_legacy(real, tmp_path / "evil.pt")])
    (result,) = report.results
    assert result.verdict is Verdict.MALICIOUS
    (finding,) = result.findings
    assert finding.severity is Severity.CRITICAL and finding.location == f"{TARGET}[999:]"
    assert "ELF executable" in finding.message


def test_text_in_low_bytes_of_legacy_checkpoint(
    real: dict[str, np.ndarray], tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    words = [b"import", b"socket", b"def", b"connect", b"(host):", b"return", b"\n    "]
    text = b" ".join(words[i] for i in rng.integers(0, len(words), 60_000))[:200_000]
    real[TARGET] = samples.embed_bytes(real[TARGET], text, (0,), 65_536)
    findings = scan_weights([_save_legacy(real, tmp_path / "text.pt")]).results[0].findings
    lowbit = [f for f in findings if f.rule == "MS-WEIGHTS-LOWBIT-STRUCTURE"]
    assert [f.location.split(":")[0] for f in lowbit] == [f"{TARGET}[65536"]
    assert lowbit[0].severity is Severity.HIGH


def test_truncated_legacy_checkpoint_is_an_error(
    real: dict[str, np.ndarray], tmp_path: Path
) -> None:
    path = _save_legacy(real, tmp_path / "model.pt")
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    (result,) = scan_weights([cut]).results
    assert result.error is not None and "cannot read" in result.error
