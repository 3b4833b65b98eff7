"""Model grouping and source parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.errors import UsageError
from modelseal.fleet.sources import FileRef, group_models, list_models, parse_source


def _refs(*paths: str) -> list[FileRef]:
    return [FileRef(p, 1, "0") for p in paths]


def test_models_are_marker_directories_with_their_subfolders_others_standalone() -> None:
    models = group_models(
        _refs(
            "org/bert/config.json",
            "org/bert/model.safetensors",
            "org/bert/onnx/model.onnx",
            "org/bert/1_Pooling/config.json",
            "gguf/llama-q4.gguf",
            "gguf/llama-q8.gguf",
            "README.md",
        )
    )
    by_name = {m.name: m for m in models}
    assert set(by_name) == {"org/bert", "gguf/llama-q4.gguf", "gguf/llama-q8.gguf", "README.md"}
    bert = by_name["org/bert"]
    assert not bert.standalone and len(bert.files) == 4
    assert bert.inner(bert.files[0]) == "1_Pooling/config.json"
    assert by_name["gguf/llama-q4.gguf"].standalone


def test_a_source_that_is_itself_one_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.bin").write_bytes(b"x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (models,) = list_models(parse_source(str(tmp_path)))
    assert models.name == "" and [f.relpath for f in models.files] == ["config.json", "sub/w.bin"]


def test_s3_sources_parse_and_bad_ones_are_usage_errors(tmp_path: Path) -> None:
    spec = parse_source("s3://bucket/a/b/", "http://127.0.0.1:9")
    assert (spec.kind, spec.root, spec.prefix) == ("s3", "bucket", "a/b/")
    assert spec.display("m/config.json") == "s3://bucket/a/b/m/config.json"
    assert parse_source("s3://bucket").prefix == ""
    for bad in ("s3://", "gs://b/p", str(tmp_path / "missing")):
        with pytest.raises(UsageError):
            parse_source(bad)
