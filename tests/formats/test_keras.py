"""Reading Keras configs and decoding Lambda code without Keras, TensorFlow or marshal.loads."""

from __future__ import annotations

import base64
import marshal
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.inventory import Entry, walk_files
from modelseal.formats.keras import (
    MAX_CODE_BYTES,
    KerasFormatError,
    code_names,
    read_keras_config,
)
from tests.samples.keras import (
    dense_layer,
    lambda_code,
    legacy_sequential,
    sequential,
    write_h5,
    write_keras,
    write_weights_h5,
)


def _entry(path: Path) -> Entry:
    (entry,) = walk_files(path)
    return entry


def test_reads_keras_v3_config_and_version(tmp_path: Path) -> None:
    config = sequential([dense_layer()])
    result = read_keras_config(_entry(write_keras(tmp_path / "m.keras", config, version="3.4.1")))
    assert result is not None
    assert result.config == config and result.source == "config.json"
    assert result.keras_version == "3.4.1"


def test_reads_legacy_h5_model_config(tmp_path: Path) -> None:
    config = legacy_sequential()
    result = read_keras_config(_entry(write_h5(tmp_path / "m.h5", config)))
    assert result is not None
    assert result.config == config and result.source == "model_config"
    assert result.keras_version == "2.15.0"


def test_weights_only_files_have_no_config(tmp_path: Path) -> None:
    path = tmp_path / "model.weights.h5"
    write_weights_h5(path)
    assert read_keras_config(_entry(path)) is None
    legacy = tmp_path / "legacy_weights.h5"
    write_weights_h5(legacy, legacy=True)
    assert read_keras_config(_entry(legacy)) is None


def test_non_keras_entries_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{}")
    assert read_keras_config(_entry(path)) is None


def test_missing_or_broken_config(tmp_path: Path) -> None:
    path = write_keras(tmp_path / "m.keras", "{nope")
    with pytest.raises(KerasFormatError, match="invalid JSON"):
        read_keras_config(_entry(path))
    with pytest.raises(FormatError, match="model_config"):
        read_keras_config(_entry(write_h5(tmp_path / "m.h5", "[1, 2")))


# -- Lambda code ------------------------------------------------------------------------


def test_code_names_of_a_current_python_lambda() -> None:
    found = code_names(lambda_code("lambda x: __import__('subprocess').run(['true']) or x"))
    assert found.method == "marshal"
    assert {"__import__", "run"} <= set(found.names)
    assert {"subprocess", "true"} <= set(found.strings)


def test_code_names_include_nested_functions() -> None:
    found = code_names(lambda_code("lambda x: [getattr(v, 'f') for v in (lambda: open)()]"))
    assert found.method == "marshal"
    assert {"getattr", "open"} <= set(found.names)


def test_function_code_with_many_constant_kinds() -> None:
    source = "lambda x: ({1: 'a'}, 2.5, 3j, 10**40, -1, None, True, b'b', frozenset({1}), ...)"
    found = code_names(lambda_code(source))
    assert found.method == "marshal" and "a" in found.strings


def _w_str(text: str) -> bytes:
    return b"z" + bytes([len(text)]) + text.encode()


def _w_tuple(items: list[bytes]) -> bytes:
    return b")" + bytes([len(items)]) + b"".join(items)


def _w_bytes(data: bytes) -> bytes:
    return b"s" + struct.pack("<i", len(data)) + data


@pytest.mark.parametrize("ints", [5, 6], ids=["python3.0-3.7", "python3.8-3.10"])
def test_code_names_of_older_python_layouts(ints: int) -> None:
    """Code objects marshalled by older Pythons (built by hand: this interpreter is 3.11+)."""
    body = (
        b"c"
        + struct.pack("<i", 1) * ints
        + _w_bytes(b"t\x00d\x01\x83\x01S\x00")  # bytecode
        + _w_tuple([b"N", _w_str("os")])  # consts
        + _w_tuple([_w_str("__import__"), _w_str("system")])  # names
        + _w_tuple([_w_str("x")])  # varnames
        + _w_tuple([])  # freevars
        + _w_tuple([])  # cellvars
        + _w_str("<keras>")  # filename
        + _w_str("<lambda>")  # name
        + struct.pack("<i", 1)  # firstlineno
        + _w_bytes(b"\x00\x01")  # lnotab
    )
    found = code_names(base64.b64encode(body).decode())
    assert found.method == "marshal"
    assert found.names == ("__import__", "system") and found.strings == ("os",)


def test_references_resolve_to_earlier_strings() -> None:
    code = marshal.dumps(compile("lambda: (system, system, 'system')", "<x>", "eval"))
    found = code_names(base64.b64encode(code).decode())
    assert found.method == "marshal" and "system" in found.names


@pytest.mark.parametrize(
    "raw",
    [
        b"\xe3" + b"\x00" * 10,  # truncated code object
        b"(" + b"\xff" * 8,  # absurd container size
        b")\x01" * 5000 + b"N",  # nesting beyond the bound
        b"r\x05\x00\x00\x00",  # reference to nothing
        b"\x01os.system exec \x02",  # not marshal at all
    ],
)
def test_hostile_code_falls_back_to_identifiers(raw: bytes) -> None:
    found = code_names(base64.b64encode(raw).decode())
    assert found.method == "strings"
    if b"os.system" in raw:
        assert {"os.system", "exec"} <= set(found.names)


def test_code_size_is_bounded() -> None:
    with pytest.raises(LimitExceededError):
        code_names(base64.b64encode(bytes(MAX_CODE_BYTES + 1)).decode())


def test_marshal_loads_is_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("marshal.loads called")

    monkeypatch.setattr(marshal, "loads", refuse)
    assert code_names(lambda_code("lambda: eval('1')")).method == "marshal"


_REAL_CODE = base64.b64decode(lambda_code("lambda x: __import__('os').system('true') or [x]"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), st.integers(min_value=0, max_value=len(_REAL_CODE)))
def test_fuzz_code_names_never_crashes(noise: bytes, cut: int) -> None:
    for raw in (noise, _REAL_CODE[:cut] + noise, _REAL_CODE[:cut]):
        found = code_names(base64.b64encode(raw).decode())
        assert found.method in ("marshal", "strings")


def test_saved_metadata_nodes_are_read_without_tensorflow() -> None:
    from modelseal.formats.keras import read_saved_metadata
    from tests.samples.tensorflow import keras_metadata

    data = keras_metadata([("root", "_tf_keras_model", {"class_name": "Functional"})])
    (node,) = read_saved_metadata(data, "keras_metadata.pb")
    assert (node.node_path, node.identifier, node.metadata) == (
        "root",
        "_tf_keras_model",
        {"class_name": "Functional"},
    )
    with pytest.raises(FormatError, match=r"not SavedMetadata\.nodes"):
        read_saved_metadata(b"\x10\x01", "x.pb")
    with pytest.raises(FormatError, match="invalid JSON"):
        read_saved_metadata(data.replace(b'"Functional"}', b'"Functional" '), "x.pb")
