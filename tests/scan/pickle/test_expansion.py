"""Pickle expansion ("billion laughs"): estimated from opcodes, never materialised."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from modelseal.scan.engine import scan
from modelseal.scan.model import Verdict
from modelseal.scan.pickle import analyse_stream
from modelseal.scan.pickle.expansion import MIN_EXPANSION, expanded_size
from tests.samples.pickles import asm

_APPENDS = b"e"
_SETITEMS = b"u"
_DICT_ITEMS = 10


def _long(n: int) -> bytes:
    """LONG1: an integer of any size."""
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def _dup_tuples(levels: int) -> bytes:
    """x, then DUP + TUPLE2 ``levels`` times: ((x, x), (x, x))... -> 2**levels leaves."""
    return asm.proto(2) + asm.binunicode("lol") + (asm.DUP + asm.TUPLE2) * levels + asm.STOP


def _memo_lists(levels: int, width: int = 10) -> bytes:
    """The classic shape: level k is a list holding level k-1 ``width`` times (BINGET)."""
    out = asm.proto(2) + asm.binunicode("lol" * 10) + asm.binput(0)
    for level in range(1, levels + 1):
        out += asm.EMPTY_LIST + asm.MARK + asm.binget(level - 1) * width + _APPENDS
        out += asm.binput(level)
    return out + asm.STOP


def _memo_dicts(levels: int) -> bytes:
    out = asm.proto(2) + asm.binunicode("ha") + asm.binput(0)
    for level in range(1, levels + 1):
        out += asm.EMPTY_DICT + asm.MARK
        for key in range(_DICT_ITEMS):
            out += asm.binint1(key) + asm.binget(level - 1)
        out += _SETITEMS + asm.binput(level)
    return out + asm.STOP


def _call(module: str, name: str, *args: bytes) -> bytes:
    tuple_op = {1: asm.TUPLE1, 2: asm.TUPLE2}[len(args)]
    return (
        asm.proto(2) + asm.global_(module, name) + b"".join(args) + tuple_op + asm.REDUCE + asm.STOP
    )


def _scan(tmp_path: Path, name: str, data: bytes) -> list[tuple[str, str, str]]:
    path = tmp_path / name
    path.write_bytes(data)
    report = scan([path])
    assert all(r.error is None for r in report.results), report.results
    return [(f.rule, f.severity.value, f.message) for r in report.results for f in r.findings]


def _expansions(findings: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [f for f in findings if f[0] == "MS-PICKLE-EXPANSION"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("dup_tuples.pkl", _dup_tuples(60)),
        ("memo_lists.pkl", _memo_lists(9)),
        ("memo_dicts.pkl", _memo_dicts(9)),
    ],
)
def test_shared_reference_bomb_is_high(tmp_path: Path, name: str, data: bytes) -> None:
    assert len(data) < 2000
    findings = _scan(tmp_path, name, data)
    (finding,) = _expansions(findings)
    assert finding[1] == "high"
    assert "memo references repeat the same values" in finding[2]


def test_bomb_size_is_estimated_symbolically() -> None:
    report = analyse_stream(io.BytesIO(_dup_tuples(60)))
    (expansion,) = report.expansions
    assert expansion.size == 2**60 * 3 + 2**60 - 1  # leaves of 3 chars plus the tuples
    assert expanded_size(report.analysis.results[0], [10**6]) == expansion.size


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (_call("operator", "mul", asm.binunicode("A"), _long(10**12)), "operator.mul('A'"),
        (_call("_operator", "mul", _long(10**10), asm.binunicode("ab")), "_operator.mul("),
        (_call("builtins", "bytearray", _long(10**12)), "builtins.bytearray("),
        (_call("builtins", "pow", _long(10), _long(10**12)), "builtins.pow("),
        (_call("operator", "lshift", _long(1), _long(10**13)), "operator.lshift("),
        (_call("builtins", "str.__mul__", asm.binunicode("x"), _long(10**11)), "str.__mul__"),
    ],
)
def test_load_time_allocation_is_high(tmp_path: Path, call: bytes, expected: str) -> None:
    (finding,) = _expansions(_scan(tmp_path, "alloc.pkl", call))
    assert finding[1] == "high"
    assert "while loading" in finding[2]
    assert expected in finding[2]


def test_materialised_range_is_an_allocation(tmp_path: Path) -> None:
    data = (
        asm.proto(2)
        + asm.global_("builtins", "bytes")
        + asm.global_("builtins", "range")
        + _long(10**12)
        + asm.TUPLE1
        + asm.REDUCE
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )
    (finding,) = _expansions(_scan(tmp_path, "range.pkl", data))
    assert "1,000,000,000,000" in finding[2]


def test_benign_look_alikes_are_not_expansions(tmp_path: Path) -> None:
    shared = list(range(100))
    ordinary = {
        # real pickles with shared references: one list referenced many times
        "shared.pkl": pickle.dumps({"rows": [shared] * 1000, "again": [shared] * 10}),
        # a modest nesting of shared levels
        "nested.pkl": _memo_lists(5),
        "small_dup.pkl": _dup_tuples(20),
        # a cycle (a list that contains itself) is built once
        "cycle.pkl": asm.proto(2) + asm.EMPTY_LIST + asm.DUP + asm.APPEND + asm.STOP,
        # small multiplications and buffers
        "small_mul.pkl": _call("operator", "mul", asm.binunicode("ab"), asm.binint1(3)),
        "small_bytes.pkl": _call("builtins", "bytearray", asm.binint1(16)),
        "big_data.pkl": pickle.dumps(b"\x00" * (4 << 20)),
    }
    for name, data in ordinary.items():
        assert _expansions(_scan(tmp_path, name, data)) == [], name
    # sharing that is large in absolute terms but proportionate to the stream
    report = analyse_stream(io.BytesIO(ordinary["big_data.pkl"]))
    assert expanded_size(report.analysis.results[0], [10]) == 4 << 20 < MIN_EXPANSION


def test_estimate_is_bounded_on_deep_hostile_nesting(tmp_path: Path) -> None:
    """50,000 nested lists are walked iteratively (no recursion limit) in a budget."""
    depth = 50_000
    data = asm.proto(2) + asm.EMPTY_LIST * depth + asm.APPEND * (depth - 1) + asm.STOP
    report = analyse_stream(io.BytesIO(data))
    assert report.analysis.error is None
    assert expanded_size(report.analysis.results[0], [depth]) == depth
    assert expanded_size(report.analysis.results[0], [depth // 2]) is None  # budget spent
    path = tmp_path / "deep.pkl"
    path.write_bytes(data)
    assert scan([path]).results[0].verdict is Verdict.CLEAN
