"""The symbolic walker: resolution of globals, multi-pickle streams, hostile input."""

from __future__ import annotations

import io
import pickle
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelseal.scan.pickle import Limits, analyse_stream
from modelseal.scan.pickle.streams import StreamReport
from tests.samples.pickles import asm, call_pickle, payload_bytes
from tests.samples.resources import measure


def _analyse(data: bytes, limits: Limits | None = None) -> StreamReport:
    return analyse_stream(io.BytesIO(data), limits=limits)


def _refs(report: StreamReport) -> set[tuple[str, str]]:
    return {(r.module, r.name) for r in report.analysis.references}


def test_never_unpickles(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the scanner must never unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    report = _analyse(payload_bytes(4))
    assert ("posix", "system") in _refs(report)


def test_call_text_includes_constant_arguments() -> None:
    report = _analyse(call_pickle("os", "system", "echo hi"))
    (call,) = report.analysis.calls
    assert call.text == "os.system('echo hi')"
    assert call.opcode == "REDUCE"


def test_memoize_after_pop_and_binget_resolve_stack_global() -> None:
    data = (
        asm.proto(4)
        + asm.short_binunicode("os")
        + asm.MEMOIZE
        + asm.POP
        + asm.short_binunicode("system")
        + asm.MEMOIZE
        + asm.POP
        + asm.binget(0)
        + asm.binget(1)
        + asm.STACK_GLOBAL
        + asm.STOP
    )
    assert _refs(_analyse(data)) == {("os", "system")}


def test_partial_resolves_the_inner_call() -> None:
    data = (
        asm.proto(2)
        + asm.global_("functools", "partial")
        + asm.global_("os", "system")
        + asm.binunicode("true")
        + asm.TUPLE2
        + asm.REDUCE
        + asm.EMPTY_TUPLE
        + asm.REDUCE
        + asm.STOP
    )
    texts = [c.text for c in _analyse(data).analysis.calls]
    assert "os.system('true')" in texts


def test_sys_modules_getitem_resolves_a_module() -> None:
    data = (
        asm.proto(2)
        + asm.global_("builtins", "getattr")
        + asm.global_("operator", "getitem")
        + asm.global_("sys", "modules")
        + asm.binunicode("os")
        + asm.TUPLE2
        + asm.REDUCE
        + asm.binunicode("system")
        + asm.TUPLE2
        + asm.REDUCE
        + asm.STOP
    )
    assert ("os", "system") in _refs(_analyse(data))


def test_every_pickle_in_a_stream_is_walked() -> None:
    data = pickle.dumps([1, 2], 2) + pickle.dumps("x", 0) + call_pickle("os", "system", "x")
    report = _analyse(data)
    assert report.pickles == 3
    assert ("os", "system") in _refs(report)
    assert report.analysis.error is None


def test_trailing_garbage_is_reported_not_parsed() -> None:
    report = _analyse(pickle.dumps({"a": 1}, 4) + b"\xff\xfe\xfd")
    assert report.trailing_offset is not None
    assert report.analysis.error is None


def test_error_keeps_facts_found_before_the_break() -> None:
    report = _analyse(call_pickle("os", "system", "true")[:-1] + b"(")
    assert report.analysis.error is not None
    assert ("os", "system") in _refs(report)


def test_opcode_limit_stops_a_long_stream() -> None:
    data = asm.proto(2) + asm.EMPTY_LIST + (asm.NONE + asm.APPEND) * 5000 + asm.STOP
    report = _analyse(data, Limits(max_opcodes=1000))
    assert "opcodes" in (report.analysis.error or "")


def test_memo_and_stack_limits() -> None:
    many_puts = asm.proto(4) + asm.NONE + b"".join(asm.long_binput(i) for i in range(300))
    report = _analyse(many_puts + asm.STOP, Limits(max_memo=100))
    assert "memo" in (report.analysis.error or "")
    deep = asm.proto(4) + asm.NONE * 500 + asm.STOP
    report = _analyse(deep, Limits(max_stack=100))
    assert "stack" in (report.analysis.error or "")


def test_huge_declared_string_is_skipped_not_loaded() -> None:
    # A BINUNICODE8 that claims 2**60 bytes: truncated error, no allocation.
    data = asm.proto(4) + b"\x8d" + struct.pack("<Q", 1 << 60) + b"abc" * 30
    with measure() as usage:
        report = _analyse(data)
    assert usage.peak_bytes < 16 * 1024 * 1024
    assert "truncated" in (report.analysis.error or "")


def test_large_string_argument_is_kept_as_a_blob() -> None:
    big = "A" * 3_000_000
    report = _analyse(pickle.dumps({"blob": big, "n": 1}, 4))
    assert report.analysis.error is None
    assert report.pickles == 1


def test_legacy_torch_stops_before_raw_storages() -> None:
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.full((64,), 46.0)}, buffer, _use_new_zipfile_serialization=False)
    report = _analyse(buffer.getvalue())
    assert report.flavour == "pytorch-legacy"
    assert report.pickles == 5
    assert report.trailing_offset is None
    assert report.analysis.error is None
    assert report.analysis.end_offset < len(buffer.getvalue())


def test_joblib_arrays_are_skipped_including_object_arrays() -> None:
    import joblib
    import numpy as np

    objects = np.empty(2, dtype=object)
    objects[:] = ["a", ("b", 1)]
    buffer = io.BytesIO()
    joblib.dump({"f": np.arange(1000.0), "u": np.array(["x", "yy"]), "o": objects}, buffer)
    report = _analyse(buffer.getvalue())
    assert report.flavour == "joblib"
    assert report.analysis.joblib_arrays == 3
    assert report.analysis.error is None
    assert report.trailing_offset is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    report = _analyse(asm.proto(2) + data)
    assert report.analysis.end_offset <= len(data) + 2


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=200))
def test_fuzz_mutated_real_pickles_never_raise(noise: bytes, where: int) -> None:
    data = bytearray(payload_bytes(2))
    where = min(where, len(data) - 1)
    data[where : where + len(noise)] = noise
    _analyse(bytes(data))


def _joblib_with_hidden_payload(wrapper: bytes, dtype_state_elsize: int) -> bytes:
    """A joblib-like stream: a wrapper for 8 float64 values (64 raw bytes) whose raw
    bytes would swallow the payload if the walker mis-sized them."""
    state = (
        asm.EMPTY_DICT
        + asm.binunicode("shape")
        + asm.binint1(8)
        + asm.TUPLE1
        + asm.SETITEM
        + asm.binunicode("dtype")
        + asm.global_("numpy", "dtype")
        + asm.binunicode("f8")
        + b"\x89\x88"  # NEWFALSE NEWTRUE
        + asm.TUPLE3
        + asm.REDUCE
        + asm.MARK
        + asm.binint1(3)
        + asm.binunicode("<")
        + asm.NONE * 3
        + asm.binint1(dtype_state_elsize)
        + asm.binint1(1)
        + asm.binint1(0)
        + asm.TUPLE
        + asm.BUILD
        + asm.SETITEM
    )
    raw = b"\x00" * 64
    tail = asm.POP + call_pickle("os", "system", "true")[2:]
    return asm.proto(2) + wrapper + state + asm.BUILD + raw + tail


def test_joblib_array_size_ignores_elsize_for_fixed_size_dtypes() -> None:
    wrapper = asm.global_("joblib.numpy_pickle", "NumpyArrayWrapper") + asm.EMPTY_TUPLE
    data = _joblib_with_hidden_payload(wrapper + asm.NEWOBJ, dtype_state_elsize=1)
    report = _analyse(data)
    assert report.analysis.joblib_arrays == 1
    assert ("os", "system") in _refs(report)


def test_joblib_wrapper_built_through_copyreg_is_recognised() -> None:
    wrapper = (
        asm.global_("copyreg", "_reconstructor")
        + asm.global_("joblib.numpy_pickle", "NumpyArrayWrapper")
        + asm.global_("builtins", "object")
        + asm.NONE
        + asm.TUPLE3
        + asm.REDUCE
    )
    report = _analyse(_joblib_with_hidden_payload(wrapper, dtype_state_elsize=8))
    assert report.analysis.joblib_arrays == 1
    assert ("os", "system") in _refs(report)


def test_ext_codes_are_reported_as_globals() -> None:
    report = _analyse(asm.proto(2) + asm.ext1(7) + asm.STOP)
    assert _refs(report) == {("copyreg", "_extension_registry[7]")}


def test_trailing_garbage_that_parses_a_little_is_still_trailing_data() -> None:
    report = _analyse(pickle.dumps([1], 2) + b"N)K\x05\xff\xff")
    assert report.trailing_offset is not None
    assert report.analysis.error is None


def test_trailing_pickle_that_imports_then_breaks_is_an_error_with_facts() -> None:
    report = _analyse(pickle.dumps([1], 2) + asm.global_("os", "system") + b"\xff")
    assert report.trailing_offset is None
    assert report.analysis.error is not None
    assert ("os", "system") in _refs(report)


def test_operator_call_resolves_the_inner_call() -> None:
    data = (
        asm.proto(2)
        + asm.global_("operator", "call")
        + asm.global_("os", "system")
        + asm.binunicode("true")
        + asm.TUPLE2
        + asm.REDUCE
        + asm.STOP
    )
    texts = [c.text for c in _analyse(data).analysis.calls]
    assert "os.system('true')" in texts


def test_global_names_are_read_like_cpython_not_like_pickletools() -> None:
    # pickletools undoes escapes in GLOBAL lines; CPython's unpickler does not, so a
    # backslash name must not turn into a real one (and spaces do not split names).
    escaped = asm.proto(2) + b"co\\x73\nsystem\n" + asm.STOP
    assert _refs(_analyse(escaped)) == {("o\\x73", "system")}
    spaced = asm.proto(2) + b"cmy mod\nsome name\n" + asm.STOP
    assert _refs(_analyse(spaced)) == {("my mod", "some name")}
    unicode_name = asm.proto(2) + "cpkg\nnäme\n".encode() + asm.STOP
    assert _refs(_analyse(unicode_name)) == {("pkg", "näme")}


def test_large_protocol_0_and_1_strings_parse() -> None:
    """A valid protocol 0/1 pickle holding its model bytes in one 4 MB string is
    not an error (the text argument is read in chunks; only its head is kept)."""
    model = {"weights": "x" * (4 << 20), "raw": b"\x00\xff" * (1 << 20), "name": "m"}
    for protocol in (0, 1):
        report = _analyse(pickle.dumps(model, protocol=protocol))
        assert report.analysis.error is None, (protocol, report.analysis.error)
        assert report.pickles == 1


def test_text_arguments_stay_bounded() -> None:
    data = pickle.dumps("y" * (3 << 20), protocol=0)
    report = _analyse(data, Limits(max_text_arg=2 << 20))
    assert "longer than 2,097,152 bytes" in (report.analysis.error or "")
    # A string line that never ends is a broken stream, not a hang.
    report = _analyse(b"V" + b"a" * (3 << 20))
    assert "no newline" in (report.analysis.error or "")
