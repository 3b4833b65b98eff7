"""``modelseal scan --hf-cache [REPO_ID]``: exit codes and JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelseal.cli import main
from tests.samples.chat_templates import CVE_2024_34359
from tests.samples.hf import write_hf_cache, write_hf_repo


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    for repo_id, template in (("org/good", None), ("org/evil", CVE_2024_34359)):
        kwargs = {"chat_template": template} if template else {}
        source = write_hf_repo(tmp_path / repo_id.replace("/", "_"), **kwargs)
        files = {p.name: p.read_bytes() for p in source.iterdir()}
        write_hf_cache(home / "hub", repo_id, files)
    return home


def test_clean_cached_repo_exits_zero(hf_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["scan", "--hf-cache=org/good", "--format", "json"], capsys)
    assert code == 0
    document = json.loads(out)
    names = {Path(r["path"]).name for r in document["results"]}
    assert {"config.json", "modeling_tiny.py", "model.safetensors"} <= names
    assert all(str(hf_home) in r["path"] for r in document["results"])


def test_malicious_cached_repo_exits_one(hf_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["scan", "--hf-cache", "org/evil", "--format", "json"], capsys)
    assert code == 1
    verdicts = {Path(r["path"]).name: r["verdict"] for r in json.loads(out)["results"]}
    assert verdicts["tokenizer_config.json"] == "malicious"


def test_whole_cache_and_extra_paths(
    hf_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = tmp_path / "notes.txt"
    extra.write_text("hello")
    code, out, _ = _run(["scan", str(extra), "--hf-cache", "--format", "json"], capsys)
    assert code == 1  # org/evil is in the cache
    paths = [r["path"] for r in json.loads(out)["results"]]
    assert str(extra) in paths
    assert any("models--org--good" in p for p in paths)
    assert any("models--org--evil" in p for p in paths)


def test_unknown_repo_is_a_usage_error(hf_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["scan", "--hf-cache=org/missing"], capsys)
    assert code == 2
    assert "org/missing is not in the Hugging Face cache" in err
    assert "Traceback" not in err
    code, _, err = _run(["scan", "--hf-cache=../../etc"], capsys)
    assert code == 2
    assert "not a Hugging Face repository id" in err
