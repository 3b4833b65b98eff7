"""The engine: results per file, member roll-up, fail-safe errors."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelseal.errors import FormatError
from modelseal.formats import Entry, Format, walk
from modelseal.scan import Finding, RuleInfo, ScanOptions, Severity, Verdict, scan, scan_entry
from modelseal.scan.interface import Rule

_MARK = RuleInfo("TEST-MARK", "Marker", "A test rule.", Severity.CRITICAL)


class _MarkerRule(Rule):
    """Flags pickles containing b'EVIL'; raises after flagging when they contain b'BREAK'."""

    formats = frozenset({Format.PICKLE})
    infos = (_MARK,)

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        data = entry.head()
        if b"EVIL" in data:
            yield Finding(_MARK.id, Severity.CRITICAL, "evil marker", "byte 0")
        if b"BREAK" in data:
            raise FormatError("stream breaks")


class _CrashingRule(Rule):
    formats = None
    infos = ()

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        raise ZeroDivisionError("bug")
        yield  # pragma: no cover


@pytest.fixture
def marker_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    import modelseal.scan.engine as engine

    monkeypatch.setattr(engine, "all_rules", lambda: (_MarkerRule(),))


def test_partial_findings_survive_a_parse_error(tmp_path: Path, marker_rules: None) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps("EVIL BREAK"))
    (result,) = scan([path]).results
    assert result.verdict is Verdict.MALICIOUS
    assert result.error == "stream breaks"
    assert [f.rule for f in result.findings] == ["TEST-MARK"]


def test_parse_error_alone_is_error_never_clean(tmp_path: Path, marker_rules: None) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps("BREAK"))
    (result,) = scan([path]).results
    assert result.verdict is Verdict.ERROR


def test_rule_bug_fails_safe(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}")
    entry = next(iter(walk([path])))
    result = scan_entry(entry, (_CrashingRule(),), ScanOptions())
    assert result.verdict is Verdict.ERROR
    assert "internal error" in (result.error or "")


def test_members_roll_up_into_the_archive(tmp_path: Path, marker_rules: None) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok.pkl", pickle.dumps("fine"))
        z.writestr("bad.pkl", pickle.dumps("EVIL"))
    report = scan([archive])
    paths = [r.path for r in report.results]
    # Clean members are not listed; the bad one is, as outer!inner.
    assert paths == [str(archive), f"{archive}!bad.pkl"]
    outer = report.results[0]
    assert outer.own_verdict is Verdict.CLEAN
    assert outer.verdict is Verdict.MALICIOUS
    assert not report.is_clean()


def test_summary_and_fail_on(tmp_path: Path, marker_rules: None) -> None:
    (tmp_path / "a.pkl").write_bytes(pickle.dumps("EVIL"))
    (tmp_path / "b.pkl").write_bytes(pickle.dumps("fine"))
    report = scan([tmp_path])
    summary = report.summary()
    assert summary["files"] == 2
    assert summary["malicious"] == 1 and summary["clean"] == 1
    assert summary["by_severity"]["critical"] == 1
    assert not report.is_clean(Severity.CRITICAL)


def _mixed_tree(root: Path) -> Path:
    from tests.samples.pickles import BENIGN, MALICIOUS

    for index, (name, build) in enumerate([*MALICIOUS.items(), *BENIGN.items()][:40]):
        folder = root / f"{index:02d}-{name}"
        folder.mkdir(parents=True)
        build(folder)
    (root / "broken.pkl").write_bytes(b"\x80\x04\x95garbage")
    (root / "gen.json").write_text('{"chat_template": "{{ cycler.__init__.__globals__ }}"}')
    with zipfile.ZipFile(root / "bundle.zip", "w") as archive:
        archive.writestr("inner/evil.pkl", pickle.dumps(print, protocol=2))
    return root


def test_process_pool_gives_the_same_report_in_the_same_order(tmp_path: Path) -> None:
    root = _mixed_tree(tmp_path / "tree")
    serial = scan([root], workers=1)
    seen: list[tuple[int, int]] = []
    pooled = scan([root], workers=2, progress=lambda done, total, _: seen.append((done, total)))
    assert pooled.results == serial.results
    assert {r.verdict for r in serial.results} >= {Verdict.MALICIOUS, Verdict.CLEAN, Verdict.ERROR}
    files = len(seen)
    assert seen == [(i, files) for i in range(1, files + 1)]


def test_small_scans_stay_in_process(tmp_path: Path) -> None:
    from modelseal.scan import engine

    entries = list(walk([_mixed_tree(tmp_path / "tree")]))
    assert engine._pool_size(entries[:10], None) == 1
    assert engine._pool_size(entries[:1], 2) == 1
    assert engine._pool_size(entries[:10], 1) == 1
    assert engine._pool_size(entries[:10], 2) == 2
