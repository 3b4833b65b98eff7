"""The ``modelseal weights`` commands and ``scan --deep``: contracts and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelseal.cli import cli
from modelseal.scan import ScanOptions, scan
from modelseal.scan.model import Verdict
from tests.samples import weights as samples


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), standalone_mode=False, catch_exceptions=False)
    code = result.return_value if isinstance(result.return_value, int) else result.exit_code
    return code, result.output


@pytest.fixture(scope="module")
def evil(minilm_tensors: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    name = "encoder.layer.5.intermediate.dense.weight"
    tensors = {name: samples.embed_bytes(minilm_tensors[name], samples.ELF_PAYLOAD, (0, 1, 2))}
    return samples.save_fp32(tensors, tmp_path_factory.mktemp("evil") / "evil.safetensors")


def test_scan_json_contract_and_exit_codes(minilm: Path, evil: Path, tmp_path: Path) -> None:
    code, out = _run("weights", "scan", str(minilm), "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["version"] == 1 and document["results"][0]["verdict"] == "clean"
    code, _ = _run("weights", "scan", str(evil), "--format", "json", "-o", str(tmp_path / "r.json"))
    assert code == 1
    document = json.loads((tmp_path / "r.json").read_text())
    (result,) = document["results"]
    assert result["verdict"] == "malicious"
    assert set(result["findings"][0]) == {"rule", "severity", "message", "location"}
    assert result["findings"][0]["rule"] == "MS-WEIGHTS-PAYLOAD"


def test_scan_sarif_and_table(evil: Path) -> None:
    code, out = _run("weights", "scan", str(evil), "--format", "sarif")
    assert code == 1
    sarif = json.loads(out)
    assert sarif["runs"][0]["results"][0]["ruleId"] == "MS-WEIGHTS-PAYLOAD"
    code, out = _run("weights", "scan", str(evil))
    assert code == 1 and "ELF executable" in out and "malicious" in out


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    from modelseal.cli import main

    for argv in (["weights", "scan"], ["weights", "scan", str(tmp_path / "missing")]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


def test_unreadable_weight_file_is_an_error_not_clean(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    header = b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    bad.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))  # 8 of 16 bytes
    code, out = _run("weights", "scan", str(bad), "--format", "json")
    document = json.loads(out)
    assert code == 1 and document["results"][0]["verdict"] == "error"


def test_diff_json_contract(minilm: Path, minilm_fp16: Path) -> None:
    code, out = _run("weights", "diff", str(minilm), str(minilm_fp16), "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["verdict"] == "conversion"
    assert {"name", "changed", "max_abs_delta", "rel_delta_norm", "effective_rank"} <= set(
        document["tensors"][0]
    )
    code, out = _run("weights", "diff", str(minilm), str(minilm_fp16))
    assert code == 0 and "verdict: conversion" in out


def test_diff_exit_1_on_low_rank_edit(
    minilm: Path, minilm_tensors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    tensors = dict(minilm_tensors)
    name = "encoder.layer.0.output.dense.weight"
    tensors[name] = samples.rank1_edit(tensors[name])
    edited = samples.save_fp32(tensors, tmp_path / "edited.safetensors")
    code, out = _run("weights", "diff", str(minilm), str(edited))
    assert code == 1 and "MS-WEIGHTS-LOW-RANK-EDIT" in out and name in out


def test_stats_fingerprint_identify(minilm: Path, minilm_bf16: Path, tmp_path: Path) -> None:
    code, _ = _run("weights", "stats", str(minilm), "-o", str(tmp_path / "stats.json"))
    assert code == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert len(stats["tensors"]) == 104 and "kurtosis" in stats["tensors"][1]
    known = tmp_path / "known"
    code, _ = _run(
        "weights", "fingerprint", str(minilm), "--label", "minilm", "-o", str(known / "m.json")
    )
    assert code == 0
    code, out = _run("weights", "identify", str(minilm_bf16), "--against", str(known), "-f", "json")
    assert code == 0
    assert json.loads(out)["matches"][0] == {
        **json.loads(out)["matches"][0],
        "label": "minilm",
        "derived": True,
    }


def test_scan_deep_runs_weight_forensics(minilm: Path, evil: Path) -> None:
    shallow = scan([evil], options=ScanOptions(deep=False))
    assert not any(f.rule.startswith("MS-WEIGHTS") for r in shallow.results for f in r.findings)
    deep = scan([evil], options=ScanOptions(deep=True))
    assert deep.results[0].verdict is Verdict.MALICIOUS
    assert any(f.rule == "MS-WEIGHTS-PAYLOAD" for f in deep.results[0].findings)
    clean = scan([minilm], options=ScanOptions(deep=True))
    assert clean.results[0].verdict is Verdict.CLEAN
