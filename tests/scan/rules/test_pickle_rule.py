"""The pickle rule end to end through the scan engine, on the sample corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.config import Settings
from modelseal.scan.engine import scan
from modelseal.scan.interface import ScanOptions
from modelseal.scan.model import ScanReport, Verdict
from tests.samples.pickles import (
    BENIGN,
    MALICIOUS,
    MALICIOUS_EXPECT,
    asm,
    call_pickle,
    sklearn_joblib,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pickle-corpus")
    paths = {}
    for prefix, table in (("bad", MALICIOUS), ("good", BENIGN)):
        for name, build in table.items():
            folder = root / f"{prefix}-{name}"
            folder.mkdir()
            paths[f"{prefix}:{name}"] = build(folder)
    return paths


def _scan(path: Path, **options: object) -> ScanReport:
    return scan([path], options=ScanOptions(**options))  # type: ignore[arg-type]


def _findings(report: ScanReport) -> list[tuple[str, str, str]]:
    return [(f.rule, f.severity.value, f.message) for r in report.results for f in r.findings]


def _text(report: ScanReport) -> str:
    return "\n".join(message for _, _, message in _findings(report))


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_sample_is_malicious_and_says_what_runs(
    corpus: dict[str, Path], name: str
) -> None:
    report = _scan(corpus[f"bad:{name}"])
    assert report.results[0].verdict is Verdict.MALICIOUS, _findings(report)
    assert MALICIOUS_EXPECT[name] in _text(report)


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_sample_is_clean(corpus: dict[str, Path], name: str) -> None:
    report = _scan(corpus[f"bad:{name}".replace("bad:", "good:")])
    assert report.results[0].verdict is Verdict.CLEAN, _findings(report)
    assert all(r.error is None for r in report.results)


def test_benign_corpus_stays_clean_under_strict(corpus: dict[str, Path]) -> None:
    for name in BENIGN:
        report = _scan(corpus[f"good:{name}"], strict=True)
        assert report.results[0].verdict is Verdict.CLEAN, (name, _findings(report))


def test_dangerous_finding_names_the_call_and_argument(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(call_pickle("os", "system", "true"))
    (finding,) = _scan(path).results[0].findings
    assert finding.rule == "MS-PICKLE-DANGEROUS-GLOBAL"
    assert finding.severity.value == "critical"
    assert finding.message.startswith("calls os.system('true')")
    assert finding.location == "offset 2"


def test_unknown_global_is_a_low_finding_then_critical_under_strict(tmp_path: Path) -> None:
    path = tmp_path / "custom.pkl"
    path.write_bytes(call_pickle("mycorp.models", "Net", "small"))
    report = _scan(path)
    assert report.results[0].verdict is Verdict.CLEAN
    assert _findings(report) == [
        (
            "MS-PICKLE-UNKNOWN-GLOBAL",
            "low",
            "calls mycorp.models.Net('small') — not a known-safe global",
        )
    ]
    strict = _scan(path, strict=True)
    assert strict.results[0].verdict is Verdict.MALICIOUS


def test_scikit_learn_joblib_is_clean_even_under_strict(tmp_path: Path) -> None:
    path = sklearn_joblib(tmp_path)
    assert _findings(_scan(path)) == []
    assert _findings(_scan(path, strict=True)) == []


def test_instantiate_only_class_called_with_arguments_is_unknown(tmp_path: Path) -> None:
    """``lightgbm.Booster(model_file=...)`` reads a file: pickle never saves a booster
    that way, so a stream calling it is not the known-safe rebuild."""
    bad = tmp_path / "booster_call.pkl"
    bad.write_bytes(call_pickle("lightgbm.basic", "Booster", "/etc/hostname"))
    findings = _findings(_scan(bad))
    assert [(r, s) for r, s, _ in findings] == [("MS-PICKLE-UNKNOWN-GLOBAL", "low")]
    assert "called with arguments" in findings[0][2]
    assert _scan(bad, strict=True).results[0].verdict is Verdict.MALICIOUS
    good = tmp_path / "booster_rebuild.pkl"  # what pickle writes: NEWOBJ + BUILD
    good.write_bytes(
        asm.proto(2)
        + asm.global_("lightgbm.basic", "Booster")
        + asm.EMPTY_TUPLE
        + asm.NEWOBJ
        + asm.EMPTY_DICT
        + asm.binunicode("_handle")
        + asm.binunicode("tree\nversion=v4\n")
        + asm.SETITEM
        + asm.BUILD
        + asm.STOP
    )
    assert _findings(_scan(good, strict=True)) == []


def test_user_safe_globals_make_a_known_estimator_clean(tmp_path: Path) -> None:
    path = sklearn_joblib(tmp_path, compress=("zlib", 3))
    settings = Settings(safe_globals={"sklearn.linear_model": "*"})
    report = _scan(path, strict=True, settings=settings)
    assert report.results[0].verdict is Verdict.CLEAN, _findings(report)


def test_user_safe_globals_never_silence_builtin_dangerous(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(call_pickle("os", "system", "true"))
    settings = Settings(safe_globals={"os": "*"})
    assert _scan(path, settings=settings).results[0].verdict is Verdict.MALICIOUS


def test_user_dangerous_globals_extend_the_list(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(call_pickle("mycorp.tools", "deploy", "now"))
    assert _scan(path).results[0].verdict is Verdict.CLEAN
    settings = Settings(dangerous_globals={"mycorp": "*"}, safe_globals={"mycorp.tools": "*"})
    report = _scan(path, settings=settings)
    assert report.results[0].verdict is Verdict.MALICIOUS
    assert "dangerous-globals settings" in _text(report)


def test_torchscript_names_are_safe_only_inside_torchscript(tmp_path: Path) -> None:
    path = tmp_path / "fake.pkl"
    path.write_bytes(call_pickle("__torch__.model", "Net") + b"")
    report = _scan(path)
    assert [r for r, _, _ in _findings(report)] == ["MS-PICKLE-UNKNOWN-GLOBAL"]
    assert "__torch__.model.Net" in _text(report)


def test_dynamic_call_rule_and_its_benign_look_alike(tmp_path: Path) -> None:
    bad = tmp_path / "dyn.pkl"
    bad.write_bytes(
        asm.proto(2)
        + asm.binunicode("x")
        + asm.BINPERSID
        + asm.binunicode("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )
    report = _scan(bad)
    assert [r for r, _, _ in _findings(report)] == ["MS-PICKLE-DYNAMIC-CALL"]
    assert report.results[0].verdict is Verdict.SUSPICIOUS
    assert _scan(bad, strict=True).results[0].verdict is Verdict.MALICIOUS
    good = tmp_path / "persistent.pkl"  # a persistent id used as data, not called
    good.write_bytes(asm.proto(2) + asm.binunicode("x") + asm.BINPERSID + asm.STOP)
    assert _findings(_scan(good)) == []


def test_state_tampering_rule_and_its_benign_look_alike(tmp_path: Path) -> None:
    bad = tmp_path / "tamper.pkl"
    bad.write_bytes(
        asm.proto(2)
        + asm.global_("collections", "OrderedDict")
        + asm.EMPTY_DICT
        + asm.binunicode("__reduce__")
        + asm.binint1(1)
        + asm.SETITEM
        + asm.BUILD
        + asm.STOP
    )
    report = _scan(bad)
    assert [r for r, _, _ in _findings(report)] == ["MS-PICKLE-STATE-TAMPERING"]
    assert "overwrites attributes of collections.OrderedDict" in _text(report)
    good = tmp_path / "build.pkl"  # BUILD on a freshly built object: normal
    good.write_bytes(
        asm.proto(2)
        + asm.global_("collections", "OrderedDict")
        + asm.EMPTY_TUPLE
        + asm.REDUCE
        + asm.EMPTY_DICT
        + asm.binunicode("a")
        + asm.binint1(1)
        + asm.SETITEM
        + asm.BUILD
        + asm.STOP
    )
    assert _findings(_scan(good)) == []


def test_trailing_data_rule_and_legacy_torch_look_alike(
    tmp_path: Path, corpus: dict[str, Path]
) -> None:
    bad = tmp_path / "trailing.pkl"
    bad.write_bytes(call_pickle("collections", "OrderedDict") + b"\xff" * 64)
    report = _scan(bad)
    assert [r for r, _, _ in _findings(report)] == ["MS-PICKLE-TRAILING-DATA"]
    assert report.results[0].verdict is Verdict.SUSPICIOUS
    # Legacy torch files have raw storage bytes after their pickles: not trailing data.
    legacy = _scan(corpus["good:torch_state_dict_legacy"])
    assert _findings(legacy) == []


def test_object_npy_rule_and_numeric_look_alike(corpus: dict[str, Path]) -> None:
    report = _scan(corpus["good:object_npy"])
    assert [(r, s) for r, s, _ in _findings(report)] == [("MS-PICKLE-OBJECT-NPY", "low")]
    assert _findings(_scan(corpus["good:numeric_npy"])) == []


def test_broken_stream_with_nothing_found_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pkl"
    path.write_bytes(asm.proto(2) + asm.binunicode("just data"))  # no STOP
    result = _scan(path).results[0]
    assert result.verdict is Verdict.ERROR
    assert "pickle ends without STOP" in (result.error or "")


def test_broken_stream_after_payload_is_malicious_with_error(corpus: dict[str, Path]) -> None:
    result = _scan(corpus["bad:broken_after_payload"]).results[0]
    assert result.verdict is Verdict.MALICIOUS
    assert result.error is not None


def test_payload_in_torch_zip_member_is_reported_as_member(corpus: dict[str, Path]) -> None:
    report = _scan(corpus["bad:torch_zip"])
    member = next(r for r in report.results if r.findings)
    assert member.path.endswith("!payload/data.pkl")
    assert report.results[0].verdict is Verdict.MALICIOUS


def test_torch_zip_scan_reads_only_the_pickle(tmp_path: Path) -> None:
    """A checkpoint with a large (sparse) storage scans without reading the storage."""
    import zipfile

    import torch

    path = tmp_path / "big.pt"
    torch.save({"w": torch.zeros(4)}, path)
    big = tmp_path / "big2.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(big, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("data/0"):
                data = b"\x00" * (8 << 20)
            dst.writestr(info, data)
    report = _scan(big)
    assert report.results[0].verdict is Verdict.CLEAN


def test_unknown_binaries_and_text_stay_clean(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    for index in range(20):
        # ``.dat`` claims no format (random bytes called ``.bin`` are a broken weight file).
        path = tmp_path / f"blob{index}.dat"
        path.write_bytes(rng.randbytes(rng.randrange(1, 70_000)))
        result = _scan(path).results[0]
        assert result.verdict is Verdict.CLEAN, (path, _findings(_scan(path)), result.error)
    text = tmp_path / "notes.txt"
    text.write_text("cos\nthis is just a note, not a pickle\n")
    assert _scan(text).results[0].verdict is Verdict.CLEAN


def test_lzma_alone_stream_is_scanned_only_when_it_holds_a_pickle(tmp_path: Path) -> None:
    import lzma

    bad = tmp_path / "model.lzma"
    bad.write_bytes(lzma.compress(call_pickle("os", "system", "true"), format=lzma.FORMAT_ALONE))
    assert _scan(bad).results[0].verdict is Verdict.MALICIOUS
    text = tmp_path / "notes.lzma"
    text.write_bytes(lzma.compress(b"just some notes\n" * 10, format=lzma.FORMAT_ALONE))
    assert _scan(text).results[0].verdict is Verdict.CLEAN
    lookalike = tmp_path / "blob.dat"  # starts like an LZMA header, is not one
    lookalike.write_bytes(b"\x5d\x00\x00" + bytes(range(256)) * 4)
    assert _scan(lookalike).results[0].verdict is Verdict.CLEAN


def test_findings_are_capped_on_hostile_streams(tmp_path: Path) -> None:
    body = b"".join(asm.global_(f"pkg{i}", "thing") + asm.POP for i in range(300))
    path = tmp_path / "many.pkl"
    path.write_bytes(asm.proto(2) + body + asm.NONE + asm.STOP)
    findings = _findings(_scan(path))
    assert len(findings) == 51
    assert findings[-1][2] == "... and 250 more unknown globals (not listed)"


def _built(state: bytes) -> bytes:
    """A fresh ``collections.OrderedDict()`` whose BUILD applies ``state``."""
    return (
        asm.proto(2)
        + asm.global_("collections", "OrderedDict")
        + asm.EMPTY_TUPLE
        + asm.REDUCE
        + state
        + asm.BUILD
        + asm.STOP
    )


def _dict_state(key: str) -> bytes:
    return asm.EMPTY_DICT + asm.binunicode(key) + asm.binint1(1) + asm.SETITEM


@pytest.mark.parametrize("key", ["__setstate__", "__reduce_ex__", "__dict__", "__code__"])
def test_state_key_that_changes_behaviour_is_tampering(tmp_path: Path, key: str) -> None:
    path = tmp_path / "tamper.pkl"
    path.write_bytes(_built(_dict_state(key)))
    findings = _findings(_scan(path))
    assert [(r, s) for r, s, _ in findings] == [("MS-PICKLE-STATE-TAMPERING", "high")]
    assert f"sets {key} on collections.OrderedDict()" in findings[0][2]


def test_slot_state_class_swap_is_tampering(tmp_path: Path) -> None:
    path = tmp_path / "slots.pkl"
    path.write_bytes(_built(asm.NONE + _dict_state("__class__") + asm.TUPLE2))
    findings = _findings(_scan(path))
    assert [r for r, _, _ in findings] == ["MS-PICKLE-STATE-TAMPERING"]
    assert "swaps the object's class" in findings[0][2]


@pytest.mark.parametrize("key", ["__model_bytes__", "__version__", "__doc__"])
def test_dunder_shaped_data_key_is_not_tampering(tmp_path: Path, key: str) -> None:
    """A CRF tagger's state keeps its model under a dunder-shaped key: that is data."""
    path = tmp_path / "crf.pkl"
    path.write_bytes(_built(_dict_state(key)))
    assert _findings(_scan(path)) == []


@pytest.mark.parametrize("name", ["cut.pkl", "cut.txt", "cut"])
def test_truncated_text_pickle_naming_exec_is_malicious(tmp_path: Path, name: str) -> None:
    """A protocol 0 payload cut off after its global looks like text; it is a broken
    payload (malicious, with the break as error), whatever the file is called."""
    full = b"cbuiltins\nexec\n(Vprint(1)\ntR."
    path = tmp_path / name
    path.write_bytes(full[:-4])
    result = _scan(path).results[0]
    assert result.verdict is Verdict.MALICIOUS, (result, _findings(_scan(path)))
    assert "imports builtins.exec" in _text(_scan(path))
    assert "pickle stream broken" in (result.error or "")


@pytest.mark.parametrize(
    "text",
    [
        b"cos\nthis is just a note, not a pickle\n",
        b"cmy notes\nabout things\nand more\n",
        b"cbuiltins\nexec is a builtin I read about\n",
    ],
)
def test_text_that_starts_like_a_global_stays_clean(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(text)
    result = _scan(path).results[0]
    assert result.verdict is Verdict.CLEAN, _findings(_scan(path))


def test_newline_or_zero_padding_after_stop_is_not_trailing_data(tmp_path: Path) -> None:
    for padding in (b"\n", b"\r\n", b"\x00" * 512):
        path = tmp_path / "padded.pkl"
        path.write_bytes(call_pickle("collections", "OrderedDict") + padding)
        assert _findings(_scan(path)) == [], padding
    path = tmp_path / "hidden.pkl"  # padding that hides a second pickle is not padding
    path.write_bytes(
        call_pickle("collections", "OrderedDict") + b"\n" + call_pickle("os", "system", "true")
    )
    assert _scan(path).results[0].verdict is not Verdict.CLEAN


def test_python2_npy_header_with_long_literals_parses(tmp_path: Path) -> None:
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }"
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path = tmp_path / "py2.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 16)
    result = _scan(path).results[0]
    assert result.error is None and result.verdict is Verdict.CLEAN


@pytest.mark.parametrize(
    ("module", "name", "argument"),
    [
        ("_aix_support", "_read_cmd_output", "true"),
        ("imaplib", "IMAP4_stream", "true"),
        ("lib2to3.pgen2.driver", "load_grammar", "grammar.pickle"),
        ("_pyrepl.pager", "pipe_pager", "text"),
        ("test.support.script_helper", "assert_python_ok", "-c"),
        ("logging", "FileHandler", "/tmp/x"),
        ("_interpreters", "run_string", "print(1)"),
        ("torch", "compile", "model"),
        ("torch.serialization", "add_safe_globals", "x"),
        ("copyreg", "add_extension", "os"),
        ("joblib", "dump", "/tmp/x"),
        ("uuid", "_popen", "true"),
    ],
)
def test_stdlib_and_library_gadgets_are_critical_by_default(
    tmp_path: Path, module: str, name: str, argument: str
) -> None:
    path = tmp_path / "gadget.pkl"
    path.write_bytes(call_pickle(module, name, argument))
    report = _scan(path)
    assert report.results[0].verdict is Verdict.MALICIOUS, _findings(report)
    assert f"calls {module}.{name}({argument!r})" in _text(report)


@pytest.mark.parametrize(
    ("module", "name", "argument"),
    [("builtins", "len", "abc"), ("__future__", "annotations", ""), ("builtins", "abs", "")],
)
def test_harmless_builtins_are_safe(tmp_path: Path, module: str, name: str, argument: str) -> None:
    path = tmp_path / "harmless.pkl"
    path.write_bytes(call_pickle(module, name, argument) if argument else call_pickle(module, name))
    assert _findings(_scan(path, strict=True)) == []
