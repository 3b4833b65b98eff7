"""Locating the Hugging Face cache and scanning cached repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.errors import UsageError
from modelseal.scan import Verdict, scan
from modelseal.scan.hf_cache import hf_cache_dir, hf_cache_paths, repo_folder_name
from tests.samples.chat_templates import CVE_2024_34359
from tests.samples.hf import write_hf_cache, write_hf_repo


def test_cache_dir_follows_huggingface_hub_precedence(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert hf_cache_dir({"HOME": home, "HF_HUB_CACHE": "/x/hub", "HF_HOME": "/y"}) == Path("/x/hub")
    assert hf_cache_dir({"HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HOME": "/y"}) == Path("/legacy")
    assert hf_cache_dir({"HF_HOME": "/y"}) == Path("/y/hub")
    assert hf_cache_dir({"XDG_CACHE_HOME": "/xdg"}) == Path("/xdg/huggingface/hub")


def test_cache_dir_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hf_cache_dir() == tmp_path / ".cache" / "huggingface" / "hub"


def test_repo_ids_map_to_cache_folders() -> None:
    assert repo_folder_name("meta-llama/Llama-3.2-1B") == "models--meta-llama--Llama-3.2-1B"
    assert repo_folder_name("gpt2") == "models--gpt2"
    for bad in ("../etc", "a/b/c", "/abs", "a--b/c", "", "org/.."):
        with pytest.raises(UsageError):
            repo_folder_name(bad)


def _cache_with_two_repos(cache: Path) -> None:
    ok = write_hf_repo(cache.parent / "src-ok", auto_map=False)
    evil = write_hf_repo(cache.parent / "src-evil", auto_map=False, chat_template=CVE_2024_34359)
    for repo_id, source in (("org/good", ok), ("org/evil", evil)):
        files = {p.name: p.read_bytes() for p in source.iterdir()}
        write_hf_cache(cache, repo_id, files)
    write_hf_cache(cache, "org/good", {"config.json": b"{}"}, revision="f" * 40)


def test_paths_are_every_snapshot_of_a_repo(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _cache_with_two_repos(cache)
    paths = hf_cache_paths("org/good", cache_dir=cache)
    assert [p.parent.parent.name for p in paths] == ["models--org--good"] * 2
    assert len(hf_cache_paths(cache_dir=cache)) == 3


def test_missing_cache_repo_or_snapshot_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no Hugging Face cache"):
        hf_cache_paths(cache_dir=tmp_path / "nowhere")
    cache = tmp_path / "hub"
    _cache_with_two_repos(cache)
    with pytest.raises(UsageError, match="not in the Hugging Face cache"):
        hf_cache_paths("org/missing", cache_dir=cache)
    (cache / "models--org--partial" / "blobs").mkdir(parents=True)
    with pytest.raises(UsageError, match="no downloaded snapshot"):
        hf_cache_paths("org/partial", cache_dir=cache)


def test_scanning_the_cache_reports_files_under_their_names(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _cache_with_two_repos(cache)
    good = scan(hf_cache_paths("org/good", cache_dir=cache))
    names = {Path(r.path).name for r in good.results}
    assert {"config.json", "tokenizer_config.json", "model.safetensors"} <= names
    assert all("/snapshots/" in r.path for r in good.results)
    assert all(r.verdict is Verdict.CLEAN for r in good.results), good.to_dict()
    evil = scan(hf_cache_paths("org/evil", cache_dir=cache))
    (tokenizer,) = [r for r in evil.results if r.path.endswith("tokenizer_config.json")]
    assert tokenizer.verdict is Verdict.MALICIOUS
