"""Members of 7z archives, compressed tars, deflated zips, encrypted members and lz4
streams are scanned (bounded), malicious ones found, benign ones clean."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from modelseal.formats.format import Format
from modelseal.formats.inventory import Limits, walk_files
from modelseal.scan.engine import scan
from modelseal.scan.interface import ScanOptions
from modelseal.scan.model import ScanReport, Severity, Verdict
from tests.samples.containers import (
    ZipMember,
    build_zip,
    plain_zip,
    seven_zip,
    seven_zip_renamed,
)
from tests.samples.models import write_safetensors
from tests.samples.pickles import payload_bytes


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _safetensors(tmp_path: Path) -> bytes:
    path = write_safetensors(tmp_path / "src.safetensors", {"w": np.ones(256, np.float32)})
    data = path.read_bytes()
    path.unlink()
    return data


def _tar(members: dict[str, bytes], mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _errors(report: ScanReport) -> list[str]:
    return [r.error for r in report.results if r.error]


def _rules(report: ScanReport) -> set[str]:
    return {f.rule for r in report.results for f in r.findings}


# -- 7z ----------------------------------------------------------------------------------


def test_benign_seven_zip_is_clean(tmp_path: Path) -> None:
    data = seven_zip(
        {
            "config.json": b'{"hidden_size": 4}',
            "model.safetensors": _safetensors(tmp_path),
            "weights/data.pkl": b"\x80\x04K\x01.",
            "readme.txt": b"a model\n" * 100,
        }
    )
    path = _write(tmp_path, "model.7z", data)
    assert walk_files(path).__next__().format is Format.SEVEN_ZIP
    report = scan([path])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN], report.results


def test_malicious_pickle_inside_seven_zip_is_found(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "bundle.7z", seven_zip({"a.txt": b"x", "sub/model.pkl": payload_bytes()})
    )
    report = scan([path])
    assert report.results[0].verdict is Verdict.MALICIOUS
    (member,) = report.results[1:]
    assert member.path.endswith("bundle.7z!sub/model.pkl") and "system" in str(member.findings)


def test_seven_zip_inside_zip_is_opened(tmp_path: Path) -> None:
    inner = seven_zip({"model.pkl": payload_bytes()})
    path = _write(tmp_path, "outer.zip", plain_zip({"weights.7z": inner}))
    assert scan([path]).results[0].verdict is Verdict.MALICIOUS


def test_seven_zip_expansion_is_bounded(tmp_path: Path) -> None:
    path = _write(tmp_path, "bomb.7z", seven_zip({"zeros.bin": bytes(4 * 1024 * 1024)}))
    report = scan([path], options=ScanOptions(limits=Limits(max_member_bytes=1024 * 1024)))
    assert report.results[0].verdict is Verdict.ERROR
    assert any("1,048,576-byte limit" in e for e in _errors(report))
    report = scan([path], options=ScanOptions(limits=Limits(max_spool_bytes=1024 * 1024)))
    assert any("7z archive expands beyond" in e for e in _errors(report))


def test_seven_zip_member_count_is_bounded(tmp_path: Path) -> None:
    path = _write(tmp_path, "many.7z", seven_zip({f"f{i}.txt": b"x" for i in range(20)}))
    report = scan([path], options=ScanOptions(limits=Limits(max_members=10)))
    assert report.results[0].verdict is Verdict.ERROR
    assert any("member limit" in e for e in _errors(report))


def test_seven_zip_declared_bomb_is_a_finding(tmp_path: Path) -> None:
    data = seven_zip({"a.txt": b"first", "b.bin": bytes(20 * 1024 * 1024)})
    assert len(data) < 20 * 1024 * 1024 // 1000
    path = _write(tmp_path, "big.7z", data)
    report = scan([path], options=ScanOptions(limits=Limits(max_member_bytes=16 * 1024**2)))
    assert "MS-ARCHIVE-ZIP-BOMB" in _rules(report)


def test_seven_zip_nested_beyond_depth_is_not_opened(tmp_path: Path) -> None:
    inner = seven_zip({"model.pkl": payload_bytes()})
    data = plain_zip({"l2.zip": plain_zip({"l3.7z": inner})})
    path = _write(tmp_path, "deep.zip", data)
    report = scan([path], options=ScanOptions(limits=Limits(max_depth=2)))
    assert "MS-ARCHIVE-TOO-DEEP" in _rules(report)
    assert report.results[0].verdict is Verdict.SUSPICIOUS


def test_seven_zip_hostile_names_are_findings(tmp_path: Path) -> None:
    data = seven_zip_renamed({"xx/evil.txt": b"hi", "ok.txt": b"x"}, "xx/evil.txt", "../evil.txt")
    report = scan([_write(tmp_path, "slip.7z", data)])
    own = report.results[0]
    assert [(f.rule, f.severity) for f in own.findings] == [
        ("MS-ARCHIVE-PATH-TRAVERSAL", Severity.CRITICAL)
    ]
    assert own.verdict is Verdict.MALICIOUS
    assert any("Specified path is bad" in e for e in _errors(report))  # and not extracted


def test_seven_zip_duplicate_names_scan_every_copy(tmp_path: Path) -> None:
    data = seven_zip_renamed(
        {"model.pkl": b"\x80\x04K\x01.", "modelXpkl": payload_bytes()}, "modelXpkl", "model.pkl"
    )
    report = scan([_write(tmp_path, "dup.7z", data)])
    assert "MS-ARCHIVE-DUPLICATE-NAME" in _rules(report)
    assert report.results[0].verdict is Verdict.MALICIOUS
    assert any(r.verdict is Verdict.MALICIOUS for r in report.results[1:])


def test_missing_py7zr_is_an_error_never_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "ok.7z", seven_zip({"readme.txt": b"hi"}))
    monkeypatch.setitem(sys.modules, "py7zr", None)
    result = scan([path]).results[0]
    assert result.verdict is Verdict.ERROR and "py7zr package is not installed" in (
        result.error or ""
    )


def test_encrypted_seven_zip(tmp_path: Path) -> None:
    docs = _write(tmp_path, "docs.7z", seven_zip({"readme.txt": b"hi"}, password="pw"))
    report = scan([docs])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN]
    assert [(f.rule, f.severity) for f in report.results[0].findings] == [
        ("MS-ARCHIVE-ENCRYPTED", Severity.LOW)
    ]
    model = _write(tmp_path, "model.7z", seven_zip({"model.pkl": b"x" * 64}, password="pw"))
    assert scan([model]).results[0].verdict is Verdict.ERROR


# -- compressed tars (SageMaker model.tar.gz) --------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("model.tar.gz", "w:gz"),
        ("model.tgz", "w:gz"),
        ("model.tar.xz", "w:xz"),
        ("model.tar.bz2", "w:bz2"),
    ],
)
def test_compressed_tar_members_are_scanned(tmp_path: Path, name: str, mode: str) -> None:
    benign = {
        "config.json": b'{"a": 1}',
        "model.safetensors": _safetensors(tmp_path),
        "code/requirements.txt": b"numpy\n" * 300,
    }
    path = _write(tmp_path, name, _tar(benign, mode))
    report = scan([path])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN], report.results
    evil = _write(tmp_path, "evil-" + name, _tar({**benign, "model.pkl": payload_bytes()}, mode))
    report = scan([evil])
    assert report.results[0].verdict is Verdict.MALICIOUS
    assert not _errors(report)
    bad = [r for r in report.results if r.verdict is Verdict.MALICIOUS]
    assert any(r.path.endswith("!model.pkl") for r in bad)


# -- zips ----------------------------------------------------------------------------------


def test_deflated_zip_holding_safetensors_is_scanned(tmp_path: Path) -> None:
    good = _write(tmp_path, "w.zip", plain_zip({"model.safetensors": _safetensors(tmp_path)}))
    assert [r.verdict for r in scan([good]).results] == [Verdict.CLEAN]
    broken = _safetensors(tmp_path)[:-8]
    bad = _write(tmp_path, "b.zip", plain_zip({"model.safetensors": broken}))
    report = scan([bad])
    assert report.results[0].verdict is Verdict.ERROR
    assert "MS-ST-MALFORMED" in _rules(report)


def test_encrypted_zip_of_documents_is_a_low_finding(tmp_path: Path) -> None:
    data = build_zip(
        [
            ZipMember("readme.txt", b"\x00" * 12 + b"secret", flags=0x1),
            ZipMember("config.json", b"\x00" * 12 + b"{}", flags=0x1),
        ]
    )
    report = scan([_write(tmp_path, "docs.zip", data)])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN]
    assert {(f.rule, f.severity) for f in report.results[0].findings} == {
        ("MS-ARCHIVE-ENCRYPTED", Severity.LOW)
    }


@pytest.mark.parametrize("member", ["model.pkl", "pytorch_model.bin", "weights", "inference.py"])
def test_encrypted_member_that_could_be_a_model_is_an_error(tmp_path: Path, member: str) -> None:
    data = build_zip([ZipMember(member, b"\x00" * 12 + b"secret", flags=0x1)])
    report = scan([_write(tmp_path, "enc.zip", data)])
    assert report.results[0].verdict is Verdict.ERROR
    assert any("encrypted member" in e for e in _errors(report))


# -- lz4 -----------------------------------------------------------------------------------


def test_lz4_frame_pickle_is_opened(tmp_path: Path) -> None:
    import lz4.frame

    path = _write(tmp_path, "model.pkl.lz4", lz4.frame.compress(payload_bytes()))
    assert walk_files(path).__next__().format is Format.LZ4
    assert scan([path]).results[0].verdict is Verdict.MALICIOUS
    benign = _write(tmp_path, "data.pkl.lz4", lz4.frame.compress(b"\x80\x04K\x01."))
    assert [r.verdict for r in scan([benign]).results] == [Verdict.CLEAN]


def test_joblib_lz4_pickles(tmp_path: Path) -> None:
    import joblib
    import lz4.frame

    good = tmp_path / "model.joblib"
    joblib.dump({"w": np.arange(10.0)}, good, compress="lz4")
    assert good.read_bytes()[:4] == b"\x04\x22\x4d\x18"
    assert [r.verdict for r in scan([good]).results] == [Verdict.CLEAN]
    # What joblib.dump(obj, 'x.joblib', compress='lz4') writes for a hostile object.
    evil = _write(tmp_path, "evil.joblib", lz4.frame.compress(payload_bytes(3)))
    report = scan([evil])
    assert report.results[0].verdict is Verdict.MALICIOUS


def test_corrupt_or_unreadable_lz4_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lz4.frame

    data = lz4.frame.compress(payload_bytes() * 50)
    corrupt = _write(tmp_path, "model.pkl.lz4", data[:20] + bytes(40) + data[60:])
    assert scan([corrupt]).results[0].verdict in (Verdict.ERROR, Verdict.MALICIOUS)
    ok = _write(tmp_path, "ok.pkl.lz4", lz4.frame.compress(b"\x80\x04K\x01."))
    monkeypatch.setitem(sys.modules, "lz4", None)
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    result = scan([ok])
    assert result.results[0].verdict is Verdict.ERROR
    assert any("lz4 package is not installed" in e for e in _errors(result))
