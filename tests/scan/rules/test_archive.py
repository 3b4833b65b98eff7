"""Structural checks of zip, tar and 7z containers: hostile samples and benign look-alikes."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, Limits, walk_files
from modelseal.scan.engine import scan
from modelseal.scan.interface import ScanOptions
from modelseal.scan.model import Finding, Severity, Verdict
from modelseal.scan.rules import all_rules
from modelseal.scan.rules.archive import ArchiveRule
from tests.samples.containers import (
    ZipMember,
    build_tar,
    build_zip,
    nested_zip,
    plain_zip,
    seven_zip_bytes,
    sparse_torch_zip,
    symlink_member,
)
from tests.samples.resources import measure

_RULE = ArchiveRule()


def _entry(path: Path) -> Entry:
    (entry,) = walk_files(path)
    return entry


def _check(path: Path, options: ScanOptions | None = None) -> list[Finding]:
    entry = _entry(path)
    assert _RULE.applies_to(entry, ScanOptions()), entry.format
    return list(_RULE.check(entry, options or ScanOptions()))


def _rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_rule_is_registered() -> None:
    assert any(isinstance(rule, ArchiveRule) for rule in all_rules())


def test_rule_infos_are_well_formed() -> None:
    ids = [info.id for info in ArchiveRule.infos]
    assert len(ids) == len(set(ids))
    for info in ArchiveRule.infos:
        assert info.id.startswith("MS-ARCHIVE-") and info.name and info.description


# -- benign look-alikes ----------------------------------------------------------------


def test_plain_zip_with_tricky_but_safe_names_is_clean(tmp_path: Path) -> None:
    data = plain_zip(
        {
            "model/config.json": b"{}",
            "model/a/../weights.bin": b"\x00" * 64,  # climbs but stays inside
            "..notes.txt": b"dots in a name are fine",
            "link.txt": b"../../etc/passwd",  # a regular file that merely looks like a link
        }
    )
    assert _check(_write(tmp_path, "ok.zip", data)) == []


def test_handwritten_zip_with_honest_headers_is_clean(tmp_path: Path) -> None:
    data = build_zip([ZipMember("a.txt"), ZipMember("b.txt", b"x" * 1000, deflate=True)])
    assert _check(_write(tmp_path, "ok.zip", data)) == []


def test_real_torch_checkpoint_is_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), path)
    assert _entry(path).format == Format.PYTORCH_ZIP
    assert _check(path) == []
    report = scan([path])
    assert not any(f.rule.startswith("MS-ARCHIVE") for r in report.results for f in r.findings)


def test_compressed_numeric_npz_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez_compressed(path, a=np.arange(1000, dtype=np.float32), b=np.zeros((8, 8)))
    assert _entry(path).format == Format.NUMPY_NPZ
    assert _check(path) == []


def test_zip_nested_within_the_limit_is_clean(tmp_path: Path) -> None:
    path = _write(tmp_path, "nested.zip", nested_zip(2))
    report = scan([path])
    assert [r.verdict for r in report.results] == [Verdict.CLEAN]


def test_plain_tar_is_clean(tmp_path: Path) -> None:
    path = build_tar(tmp_path / "ok.tar", [("file", "dir/a.txt", b"hi"), ("file", "b.txt", b"x")])
    assert _check(path) == []


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule", "severity"),
    [
        ("../../home/user/.bashrc", "MS-ARCHIVE-PATH-TRAVERSAL", Severity.CRITICAL),
        ("a/../../evil.py", "MS-ARCHIVE-PATH-TRAVERSAL", Severity.CRITICAL),
        ("..\\..\\evil.py", "MS-ARCHIVE-PATH-TRAVERSAL", Severity.CRITICAL),
        ("/etc/cron.d/job", "MS-ARCHIVE-ABSOLUTE-PATH", Severity.HIGH),
        ("C:/Windows/evil.dll", "MS-ARCHIVE-ABSOLUTE-PATH", Severity.HIGH),
        ("dir\\file.txt", "MS-ARCHIVE-ODD-NAME", Severity.MEDIUM),
        ("name\x01.txt", "MS-ARCHIVE-ODD-NAME", Severity.MEDIUM),
    ],
)
def test_hostile_zip_names(tmp_path: Path, name: str, rule: str, severity: Severity) -> None:
    path = _write(tmp_path, "bad.zip", build_zip([ZipMember("ok.txt"), ZipMember(name)]))
    findings = [f for f in _check(path) if f.rule == rule]
    assert findings and findings[0].severity == severity
    assert findings[0].location == name


def test_traversal_zip_is_malicious_in_a_scan(tmp_path: Path) -> None:
    path = _write(tmp_path, "slip.zip", build_zip([ZipMember("../../evil.py", b"print(1)")]))
    (result, *_) = scan([path]).results
    assert result.verdict == Verdict.MALICIOUS


def test_hostile_tar_names_and_links(tmp_path: Path) -> None:
    path = build_tar(
        tmp_path / "bad.tar",
        [
            ("file", "../escape.txt", b"x"),
            ("file", "/abs.txt", b"x"),
            ("symlink", "cfg/link", "../../../etc/passwd"),
            ("symlink", "cfg/abs", "/etc/shadow"),
            ("symlink", "cfg/inside", "../data.txt"),
            ("hardlink", "hard", "/etc/passwd"),
            ("fifo", "pipe", ""),
            ("chardev", "dev", ""),
        ],
    )
    by_location: dict[str, set[str]] = {}
    for finding in _check(path):
        by_location.setdefault(finding.location, set()).add(finding.rule)
    assert by_location["../escape.txt"] == {"MS-ARCHIVE-PATH-TRAVERSAL"}
    assert by_location["/abs.txt"] == {"MS-ARCHIVE-ABSOLUTE-PATH"}
    assert by_location["cfg/link"] == {"MS-ARCHIVE-SYMLINK-ESCAPE"}
    assert by_location["cfg/abs"] == {"MS-ARCHIVE-SYMLINK-ESCAPE"}
    assert by_location["cfg/inside"] == {"MS-ARCHIVE-SYMLINK"}  # stays in the archive
    assert by_location["hard"] == {"MS-ARCHIVE-SYMLINK-ESCAPE"}
    assert by_location["pipe"] == by_location["dev"] == {"MS-ARCHIVE-SPECIAL-FILE"}


def test_tar_duplicate_names(tmp_path: Path) -> None:
    path = build_tar(tmp_path / "dup.tar", [("file", "a.txt", b"1"), ("file", "a.txt", b"2")])
    assert _rules(_check(path)) == {"MS-ARCHIVE-DUPLICATE-NAME"}


def test_truncated_tar_is_an_error_not_clean(tmp_path: Path) -> None:
    good = build_tar(tmp_path / "t.tar", [("file", "../x", b"a" * 600), ("file", "b", b"b" * 9000)])
    path = _write(tmp_path, "cut.tar", good.read_bytes()[:1800])
    report = scan([path])
    result = report.results[0]
    assert result.verdict is not Verdict.CLEAN
    rules = {f.rule for r in report.results for f in r.findings}
    assert "MS-ARCHIVE-PATH-TRAVERSAL" in rules  # kept from the partial parse


# -- links ------------------------------------------------------------------------------


def test_zip_symlink_members(tmp_path: Path) -> None:
    data = build_zip(
        [
            ZipMember("model/config.json", b"{}"),
            symlink_member("model/weights.bin", "../../../../home/user/.ssh/id_rsa"),
            symlink_member("model/abs", "/etc/passwd"),
            symlink_member("model/alias.json", "config.json"),
        ]
    )
    findings = _check(_write(tmp_path, "links.zip", data))
    got = {(f.location, f.rule) for f in findings}
    assert got == {
        ("model/weights.bin", "MS-ARCHIVE-SYMLINK-ESCAPE"),
        ("model/abs", "MS-ARCHIVE-SYMLINK-ESCAPE"),
        ("model/alias.json", "MS-ARCHIVE-SYMLINK"),
    }


def test_zip_regular_file_with_link_like_mode_bits_is_clean(tmp_path: Path) -> None:
    member = ZipMember(
        "a.txt", b"../../x", create_system=3, external_attr=(stat.S_IFREG | 0o644) << 16
    )
    assert _check(_write(tmp_path, "ok.zip", build_zip([member]))) == []


# -- duplicate names, header mismatches, overlap --------------------------------------


def test_duplicate_zip_names(tmp_path: Path) -> None:
    data = build_zip([ZipMember("data.pkl", b"safe"), ZipMember("data.pkl", b"other")])
    findings = _check(_write(tmp_path, "dup.zip", data))
    assert _rules(findings) == {"MS-ARCHIVE-DUPLICATE-NAME"}
    assert findings[0].severity == Severity.HIGH


def test_local_name_differs_from_central_directory(tmp_path: Path) -> None:
    data = build_zip([ZipMember("model.json", local_name="evil.pkl")])
    findings = _check(_write(tmp_path, "mismatch.zip", data))
    assert _rules(findings) == {"MS-ARCHIVE-HEADER-MISMATCH"}
    assert "evil.pkl" in findings[0].message


def test_local_method_differs_from_central_directory(tmp_path: Path) -> None:
    data = bytearray(build_zip([ZipMember("a.txt", b"abc")]))
    data[8] = 8  # local header says deflate, central directory says stored
    findings = _check(_write(tmp_path, "method.zip", bytes(data)))
    assert "MS-ARCHIVE-HEADER-MISMATCH" in _rules(findings)


def test_overlapping_members(tmp_path: Path) -> None:
    data = build_zip([ZipMember("a.txt", b"x" * 100), ZipMember("b.txt", b"x" * 100, reuse=0)])
    findings = _check(_write(tmp_path, "overlap.zip", data))
    assert "MS-ARCHIVE-OVERLAP" in _rules(findings)
    # the reused local header names a.txt, not b.txt
    assert "MS-ARCHIVE-HEADER-MISMATCH" in _rules(findings)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_local_header_missing_from_central_directory(tmp_path: Path, position: int) -> None:
    members = [ZipMember("config.json", b"{}"), ZipMember("weights.bin", b"\x00" * 256)]
    members.insert(position, ZipMember("payload.pkl", b"\x80\x02cos\nsystem\n.", hidden=True))
    findings = _check(_write(tmp_path, "hidden.zip", build_zip(members)))
    assert [(f.rule, f.location) for f in findings] == [("MS-ARCHIVE-HIDDEN-MEMBER", "payload.pkl")]


def test_data_descriptors_between_members_are_not_hidden_members(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(_Unseekable(buffer), "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", b"a" * 1000)
        archive.writestr("b.txt", b"b" * 1000)
    path = _write(tmp_path, "streamed.zip", buffer.getvalue())
    assert all(i.flag_bits & 0x8 for i in zipfile.ZipFile(path).infolist())
    assert _check(path) == []


class _Unseekable(io.RawIOBase):
    """Makes zipfile write data descriptors, as streaming writers do."""

    def __init__(self, inner: io.BytesIO) -> None:
        self._inner = inner

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self._inner.write(data)

    def tell(self) -> int:
        return self._inner.tell()

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass


# -- flags, CRC, compression -----------------------------------------------------------


def test_crc_mismatch(tmp_path: Path) -> None:
    data = build_zip([ZipMember("ok.txt"), ZipMember("data.pkl", b"payload", crc=0x12345678)])
    findings = _check(_write(tmp_path, "crc.zip", data))
    assert _rules(findings) == {"MS-ARCHIVE-CRC-MISMATCH"}
    assert findings[0].location == "data.pkl"


def test_crc_mismatch_in_deflated_member(tmp_path: Path) -> None:
    data = build_zip([ZipMember("w.bin", b"abc" * 1000, deflate=True, crc=1)])
    assert _rules(_check(_write(tmp_path, "crc.zip", data))) == {"MS-ARCHIVE-CRC-MISMATCH"}


def test_torch_storages_are_not_crc_checked(tmp_path: Path) -> None:
    # A storage with a wrong CRC is skipped (its bytes are data, never unpickled);
    # the same mismatch on the pickle is reported.
    members = [
        ZipMember("archive/data.pkl", b"\x80\x02}q\x00."),
        ZipMember("archive/data/0", b"\x00" * 64, crc=7),
        ZipMember("archive/version", b"3\n"),
    ]
    path = _write(tmp_path, "ckpt.pt", build_zip(members))
    assert _entry(path).format == Format.PYTORCH_ZIP
    assert _check(path) == []
    bad = [ZipMember("archive/data.pkl", b"\x80\x02}q\x00.", crc=7), *members[1:]]
    path = _write(tmp_path, "bad.pt", build_zip(bad))
    assert _rules(_check(path)) == {"MS-ARCHIVE-CRC-MISMATCH"}


def test_encrypted_member(tmp_path: Path) -> None:
    data = build_zip([ZipMember("data.pkl", b"\x00" * 12 + b"secret", flags=0x1)])
    findings = _check(_write(tmp_path, "enc.zip", data))
    assert [(f.rule, f.severity) for f in findings] == [("MS-ARCHIVE-ENCRYPTED", Severity.HIGH)]


def test_reserved_flags_and_unknown_method(tmp_path: Path) -> None:
    data = build_zip([ZipMember("a.bin", flags=0x4000), ZipMember("b.bin", method=99)])
    findings = _check(_write(tmp_path, "odd.zip", data))
    assert {(f.location, f.rule) for f in findings} == {
        ("a.bin", "MS-ARCHIVE-ODD-FLAGS"),
        ("b.bin", "MS-ARCHIVE-ODD-FLAGS"),
    }


def test_data_descriptor_and_utf8_flags_are_normal(tmp_path: Path) -> None:
    data = build_zip([ZipMember("ü.txt", flags=0x0808)])
    assert _check(_write(tmp_path, "dd.zip", data)) == []


# -- bombs ------------------------------------------------------------------------------


def test_real_deflate_bomb(tmp_path: Path) -> None:
    data = plain_zip({"zeros.bin": bytes(32 * 1024**2)})
    findings = _check(_write(tmp_path, "bomb.zip", data))
    assert _rules(findings) == {"MS-ARCHIVE-ZIP-BOMB"}


def test_huge_declared_size_is_a_bomb_and_is_not_inflated(tmp_path: Path) -> None:
    data = build_zip([ZipMember("big.bin", b"\x00" * 1000, deflate=True, file_size=0xFFFFFFF0)])
    path = _write(tmp_path, "liar.zip", data)
    with measure() as usage:
        findings = _check(path)
    assert usage.peak_bytes < 64 * 1024 * 1024  # nothing sized by the declared 4 GiB
    assert "MS-ARCHIVE-ZIP-BOMB" in _rules(findings)


def test_total_size_limit(tmp_path: Path) -> None:
    members = [ZipMember(f"m{i}.bin", b"\x00" * 5000, deflate=True) for i in range(3)]
    path = _write(tmp_path, "many.zip", build_zip(members))
    small = ScanOptions(limits=Limits(max_member_bytes=10_000))
    findings = _check(path, small)
    assert [f.rule for f in findings] == ["MS-ARCHIVE-ZIP-BOMB"]
    assert _check(path) == []  # the same archive under default limits


def test_compressible_but_small_member_is_not_a_bomb(tmp_path: Path) -> None:
    data = plain_zip({"zeros.bin": bytes(4 * 1024**2)})  # ratio ~1000 but only 4 MiB
    assert _check(_write(tmp_path, "ok.zip", data)) == []


# -- nesting, 7z, bad input ------------------------------------------------------------


def test_nesting_beyond_the_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, "deep.zip", nested_zip(6))
    report = scan([path], options=ScanOptions(limits=Limits(max_depth=3)))
    deep = [f for r in report.results for f in r.findings if f.rule == "MS-ARCHIVE-TOO-DEEP"]
    assert len(deep) == 1
    assert report.results[0].verdict == Verdict.SUSPICIOUS
    assert scan([path], options=ScanOptions(limits=Limits(max_depth=8))).results[0].verdict == (
        Verdict.CLEAN
    )


def test_seven_zip_signature_alone_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "model.7z", seven_zip_bytes())
    assert _entry(path).format == Format.SEVEN_ZIP
    result = scan([path]).results[0]
    assert result.verdict == Verdict.ERROR and "7z" in (result.error or "")


def test_xz_stream_is_not_mistaken_for_7z(tmp_path: Path) -> None:
    import lzma

    path = _write(tmp_path, "notes.txt.xz", lzma.compress(b"plain text\n"))
    assert scan([path]).results[0].verdict == Verdict.CLEAN


@pytest.mark.parametrize("cut", [22, 40, -10])
def test_truncated_zip_is_an_error(tmp_path: Path, cut: int) -> None:
    data = build_zip([ZipMember("a.txt", b"x" * 50), ZipMember("b.txt", b"y" * 50)])
    path = _write(tmp_path, "cut.zip", data[:cut])
    result = scan([path]).results[0]
    assert result.verdict is Verdict.ERROR  # a .zip that does not parse: broken, never clean


def test_garbage_after_zip_signature_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "junk.zip", b"PK\x03\x04" + bytes(range(256)) * 4)
    result = scan([path]).results[0]
    assert result.verdict == Verdict.ERROR
    assert "zip" in (result.error or "")


def test_nested_member_is_checked_too(tmp_path: Path) -> None:
    inner = build_zip([ZipMember("../../evil.py", b"print(1)")])
    outer = plain_zip({"inner.zip": inner}, compression=zipfile.ZIP_DEFLATED)
    report = scan([_write(tmp_path, "outer.zip", outer)])
    assert report.results[0].verdict == Verdict.MALICIOUS
    member = next(r for r in report.results if r.path.endswith("!inner.zip"))
    assert [f.rule for f in member.findings] == ["MS-ARCHIVE-PATH-TRAVERSAL"]


def test_large_stored_checkpoint_is_not_read(tmp_path: Path) -> None:
    # A sparse 2 GiB storage member: the scan must not read it (nor map it into memory).
    path = sparse_torch_zip(tmp_path / "big.pt", 2 * 1024**3 - 4096)
    entry = _entry(path)
    assert entry.format == Format.PYTORCH_ZIP
    with measure() as usage:
        assert list(_RULE.check(entry, ScanOptions())) == []
    assert usage.read_bytes < 64 * 1024 * 1024, usage
    assert usage.peak_bytes < 64 * 1024 * 1024, usage


def test_stream_is_seekable_for_nested_compressed_members(tmp_path: Path) -> None:
    inner = build_zip([ZipMember("a", crc=5)])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x/inner.zip", inner)
    report = scan([_write(tmp_path, "o.zip", buffer.getvalue())])
    rules = {f.rule for r in report.results for f in r.findings}
    assert rules == {"MS-ARCHIVE-CRC-MISMATCH"}


def test_gzipped_tar_is_checked(tmp_path: Path) -> None:
    import gzip

    tar = build_tar(tmp_path / "x.tar", [("file", "ok.txt", b"x"), ("symlink", "s", "/etc/passwd")])
    path = _write(tmp_path, "bundle.tar.gz", gzip.compress(tar.read_bytes()))
    report = scan([path])
    member = next(r for r in report.results if r.path.endswith("!bundle.tar"))
    assert "MS-ARCHIVE-SYMLINK-ESCAPE" in {f.rule for f in member.findings}
    assert report.results[0].verdict is not Verdict.CLEAN


def test_broken_seven_zip_inside_a_zip_makes_the_zip_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "b.zip", plain_zip({"weights.7z": seven_zip_bytes()}))
    assert scan([path]).results[0].verdict == Verdict.ERROR
