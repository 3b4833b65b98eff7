"""GGUF scanning through the engine: templates, header sanity, verdicts."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from modelseal.scan import FileResult, Verdict, scan
from tests.samples.chat_templates import ATTACK_TEMPLATES, BENIGN_TEMPLATES, CVE_2024_34359
from tests.samples.gguf import raw_gguf, raw_kv, raw_string, raw_tensor_info, write_gguf


def _result(path: Path) -> FileResult:
    (result,) = scan([path]).results
    return result


def test_gguf_with_real_templates_is_clean(tmp_path: Path) -> None:
    templates = {"tokenizer.chat_template": BENIGN_TEMPLATES["llama-3"]}
    templates["tokenizer.chat_template.tool_use"] = BENIGN_TEMPLATES["qwen2.5-tools"]
    result = _result(write_gguf(tmp_path / "ok.gguf", templates=templates))
    assert result.format == "gguf"
    assert result.verdict is Verdict.CLEAN, result.findings
    assert result.findings == ()


def test_cve_2024_34359_template_is_malicious(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "evil.gguf", templates={"tokenizer.chat_template": CVE_2024_34359})
    result = _result(path)
    assert result.verdict is Verdict.MALICIOUS
    assert any(
        f.rule == "MS-TEMPLATE-PYTHON-INTERNALS" and "__subclasses__" in f.message
        for f in result.findings
    )
    assert all(f.location.startswith("tokenizer.chat_template:") for f in result.findings)


def test_every_named_template_is_checked(tmp_path: Path) -> None:
    templates = {
        "tokenizer.chat_template": BENIGN_TEMPLATES["chatml"],
        "tokenizer.chat_template.rag": ATTACK_TEMPLATES["lipsum-globals-item"][0],
    }
    result = _result(write_gguf(tmp_path / "named.gguf", templates=templates))
    assert result.verdict is Verdict.MALICIOUS
    assert {f.location.split(":")[0] for f in result.findings} == {"tokenizer.chat_template.rag"}


def test_template_in_another_key_is_not_a_chat_template(tmp_path: Path) -> None:
    # Look-alike: a string mentioning internals under a key no loader renders.
    extra = {"general.description": "a model card that mentions __class__"}
    result = _result(write_gguf(tmp_path / "desc.gguf", extra=extra))
    assert result.verdict is Verdict.CLEAN


def test_unparseable_template_is_an_error(tmp_path: Path) -> None:
    bad = {"tokenizer.chat_template": "{% for m in messages %}"}
    result = _result(write_gguf(tmp_path / "bad.gguf", templates=bad))
    assert result.verdict is Verdict.ERROR
    assert "does not parse" in (result.error or "")


def test_non_string_template_is_suspicious(tmp_path: Path) -> None:
    data = raw_gguf([raw_kv("tokenizer.chat_template", 7)])
    path = tmp_path / "int.gguf"
    path.write_bytes(data)
    result = _result(path)
    assert result.verdict is Verdict.SUSPICIOUS
    assert [f.rule for f in result.findings] == ["MS-GGUF-TEMPLATE-NOT-STRING"]


@pytest.mark.parametrize(
    "data",
    [
        raw_gguf(tensors=[raw_tensor_info("t", [4], 0, 8)], data=b"\0" * 64),  # misaligned
        raw_gguf([raw_kv("k", "v")], n_kv=9),  # lying count
        raw_gguf(n_kv=2**62),  # absurd count
        b"GGUF" + struct.pack("<I", 3),  # truncated
    ],
)
def test_malformed_gguf_is_an_error_not_clean(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(data)
    result = _result(path)
    assert result.verdict is Verdict.ERROR
    assert result.error


def test_hidden_bytes_in_the_data_section_are_suspicious(tmp_path: Path) -> None:
    tensors = [raw_tensor_info("t", [8], 0, 0)]
    clean, hidden = tmp_path / "clean.gguf", tmp_path / "hidden.gguf"
    clean.write_bytes(raw_gguf(tensors=tensors, data=b"\1" * 32))
    hidden.write_bytes(raw_gguf(tensors=tensors, data=b"\1" * 32 + b"print('hi')" * 20))
    assert _result(clean).verdict is Verdict.CLEAN
    result = _result(hidden)
    assert result.verdict is Verdict.SUSPICIOUS
    assert [f.rule for f in result.findings] == ["MS-GGUF-HIDDEN-DATA"]


def test_invalid_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "utf8.gguf"
    path.write_bytes(
        raw_gguf([raw_string("general.name") + struct.pack("<I", 8) + raw_string(b"\xff")])
    )
    result = _result(path)
    assert [f.rule for f in result.findings] == ["MS-GGUF-INVALID-UTF8"]
    assert result.verdict is Verdict.CLEAN  # low: worth knowing, not a threat by itself
