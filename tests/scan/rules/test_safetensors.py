"""SafeTensors scanning: real files clean, malformed never clean, odd metadata reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.scan import FileResult, Severity, Verdict, scan
from tests.samples.safetensors_samples import MALFORMED, raw_safetensors, write_real_safetensors


def _result(path: Path) -> FileResult:
    (result,) = scan([path]).results
    return result


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_real_files_are_clean(tmp_path: Path, dtype: str) -> None:
    path = write_real_safetensors(tmp_path / f"{dtype}.safetensors", dtype, {"format": "pt"})
    result = _result(path)
    assert result.format == "safetensors"
    assert result.verdict is Verdict.CLEAN
    assert result.findings == ()


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_are_errors(tmp_path: Path, name: str) -> None:
    data, message = MALFORMED[name]
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(data)
    result = _result(path)
    assert result.verdict is Verdict.ERROR
    assert message in (result.error or "")
    assert "MS-ST-MALFORMED" in [f.rule for f in result.findings]


def _one_tensor(metadata: dict[str, str], padding: bytes = b"") -> bytes:
    header = {
        "__metadata__": metadata,
        "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
    }
    return raw_safetensors(header, b"\0" * 4, padding=padding)


def test_code_in_metadata_is_suspicious(tmp_path: Path) -> None:
    path = tmp_path / "code.safetensors"
    path.write_bytes(_one_tensor({"format": "pt", "loader": "__import__('os').system('true')"}))
    result = _result(path)
    assert result.verdict is Verdict.SUSPICIOUS
    assert [f.rule for f in result.findings] == ["MS-ST-METADATA-CODE"]
    assert result.findings[0].location == "__metadata__.loader"


def test_prose_metadata_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "prose.safetensors"
    text = "Fine-tuned to evaluate (not exec) code; see the import guide."
    path.write_bytes(_one_tensor({"format": "pt", "description": text}))
    assert _result(path).findings == ()


def test_large_metadata_is_reported_low(tmp_path: Path) -> None:
    path = tmp_path / "large.safetensors"
    path.write_bytes(_one_tensor({"thumbnail": "data:image/png;base64," + "A" * 100_000}))
    result = _result(path)
    assert [(f.rule, f.severity) for f in result.findings] == [
        ("MS-ST-METADATA-LARGE", Severity.LOW)
    ]
    assert result.verdict is Verdict.CLEAN


def test_excess_header_padding_is_reported(tmp_path: Path) -> None:
    normal = tmp_path / "normal.safetensors"
    normal.write_bytes(_one_tensor({"format": "pt"}, padding=b" " * 5))
    padded = tmp_path / "padded.safetensors"
    padded.write_bytes(_one_tensor({"format": "pt"}, padding=b" " * 4096))
    assert _result(normal).findings == ()
    result = _result(padded)
    assert [f.rule for f in result.findings] == ["MS-ST-HEADER-PADDING"]
    assert "4,096" in result.findings[0].message
