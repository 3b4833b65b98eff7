"""The GGUF header reader: real files, and hostile ones that must fail cleanly and fast."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.gguf import GgufReader, chat_templates, read_gguf
from modelseal.formats.inventory import walk
from modelseal.formats.tensors import describe_tensors, tensor_array
from tests.samples.chat_templates import CHATML
from tests.samples.gguf import raw_gguf, raw_kv, raw_string, raw_tensor_info, write_gguf


def _entry(path: Path):
    return next(walk([path]))


def _write(tmp_path: Path, data: bytes, name: str = "x.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def real_gguf(tmp_path: Path) -> Path:
    return write_gguf(tmp_path / "model.gguf", templates={"tokenizer.chat_template": CHATML})


def test_reads_metadata_of_a_real_file(real_gguf: Path) -> None:
    entry = _entry(real_gguf)
    assert entry.format is Format.GGUF
    gf = read_gguf(entry)
    assert gf.version == 3
    assert gf.architecture == "llama"
    assert gf.metadata["general.name"] == "tiny-test-model"
    assert gf.metadata["llama.context_length"] == 128
    assert gf.value_types["llama.context_length"] == "uint32"
    assert gf.metadata["tokenizer.ggml.tokens"] == ("<s>", "</s>", "hello", "world")
    assert gf.value_types["tokenizer.ggml.tokens"] == "array[string]"
    assert chat_templates(gf) == {"tokenizer.chat_template": CHATML}
    assert gf.unused_bytes == 0


def test_tensors_match_the_reference_reader(real_gguf: Path) -> None:
    import gguf

    tensors = {t.name: t for t in describe_tensors(_entry(real_gguf))}
    assert {n: t.dtype for n, t in tensors.items()} == {
        "token_embd.weight": "float32",
        "output_norm.weight": "float16",
        "blk.0.attn_q.weight": "q8_0",
    }
    assert tensors["token_embd.weight"].shape == (4, 8)
    assert tensors["blk.0.attn_q.weight"].shape == (2, 32)
    reference = {t.name: t for t in gguf.GGUFReader(str(real_gguf)).tensors}
    for name, info in tensors.items():
        assert info.offset == reference[name].data_offset
        assert info.nbytes == reference[name].n_bytes
    values = tensor_array(tensors["token_embd.weight"])
    assert np.array_equal(values, np.arange(32, dtype=np.float32).reshape(4, 8))


def test_offsets_are_absolute_inside_a_stored_zip(tmp_path: Path, real_gguf: Path) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("readme.txt", "padding " * 100)
        zf.write(real_gguf, "model.gguf")
    member = next(e for e in walk([archive]) if e.path.endswith("!model.gguf"))
    assert member.format is Format.GGUF
    embd = next(t for t in GgufReader().tensors(member) if t.name == "token_embd.weight")
    assert embd.file == archive
    assert np.array_equal(tensor_array(embd), np.arange(32, dtype=np.float32).reshape(4, 8))


def test_metadata_is_readable_from_a_compressed_member(tmp_path: Path, real_gguf: Path) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(real_gguf, "model.gguf")
    member = next(e for e in walk([archive]) if e.path.endswith("!model.gguf"))
    assert read_gguf(member).metadata["general.name"] == "tiny-test-model"
    with pytest.raises(FormatError, match="not stored uncompressed"):
        GgufReader().tensors(member)


F32, Q8_0 = 0, 8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGUX" + b"\x00" * 40, "bad magic"),
        (b"GGUF\x03\x00", "truncated"),
        (raw_gguf(version=1), "version 1 is not supported"),
        (raw_gguf(version=7), "unsupported GGUF version 7"),
        (raw_gguf([raw_kv("a", "x"), raw_kv("a", "y")]), "duplicate GGUF metadata key 'a'"),
        (raw_gguf([raw_kv("a", b"", type_id=99)]), "unknown GGUF value type 99"),
        (raw_gguf([raw_kv("general.alignment", 24)]), "power-of-two"),
        (raw_gguf([raw_kv("k", "v")], n_kv=5), "cannot fit"),
        (raw_gguf(n_tensors=3), "cannot fit"),
        (
            raw_gguf(tensors=[raw_tensor_info("t", [4], F32, 0)] * 2, data=b"\0" * 32),
            "duplicate GGUF tensor name",
        ),
        (
            raw_gguf(tensors=[raw_tensor_info("t", [4], F32, 8)], data=b"\0" * 64),
            "not aligned",
        ),
        (
            raw_gguf(
                tensors=[raw_tensor_info("a", [16], F32, 0), raw_tensor_info("b", [4], F32, 32)],
                data=b"\0" * 64,
            ),
            "overlaps",
        ),
        (
            raw_gguf(tensors=[raw_tensor_info("t", [1024], F32, 0)], data=b"\0" * 64),
            "truncated",
        ),
        (raw_gguf(tensors=[raw_tensor_info("t", [4], 77, 0)], data=b"\0" * 32), "unknown GGML"),
        (
            raw_gguf(tensors=[raw_tensor_info("t", [1] * 5, F32, 0)], data=b"\0" * 32),
            "5 dimensions",
        ),
        (
            raw_gguf(tensors=[raw_tensor_info("t", [16, 2], Q8_0, 0)], data=b"\0" * 64),
            "block size 32",
        ),
        (
            raw_gguf(tensors=[raw_tensor_info("t" * 80, [4], F32, 0)], data=b"\0" * 32),
            "longer than 63",
        ),
        (
            raw_gguf(tensors=[raw_tensor_info("t", [2**40, 2**40], F32, 0)], data=b"\0" * 32),
            "absurd shape",
        ),
    ],
)
def test_malformed_headers_are_format_errors(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        read_gguf(_entry(_write(tmp_path, data)))


@pytest.mark.parametrize(
    "record",
    [
        # a 2**40-element uint8 array: makes gguf.GGUFReader spin forever
        struct.pack("<Q", 3) + b"arr" + struct.pack("<IIQ", 9, 0, 2**40),
        # a string claiming 2**62 bytes
        struct.pack("<Q", 1) + b"s" + struct.pack("<IQ", 8, 2**62),
        # a key name claiming 2**62 bytes
        struct.pack("<Q", 2**62),
        # arrays nested deeper than the limit
        struct.pack("<Q", 1) + b"n" + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 6,
    ],
)
def test_absurd_lengths_fail_fast_without_allocating(tmp_path: Path, record: bytes) -> None:
    data = raw_gguf([record], n_kv=1) + b"\0" * 64
    with pytest.raises(FormatError):  # LimitExceededError is a FormatError
        read_gguf(_entry(_write(tmp_path, data)))


def test_absurd_counts_are_limit_errors(tmp_path: Path) -> None:
    with pytest.raises(LimitExceededError, match="metadata keys"):
        read_gguf(_entry(_write(tmp_path, raw_gguf(n_kv=2**60) + b"\0" * 64)))
    with pytest.raises(LimitExceededError, match="tensors"):
        read_gguf(_entry(_write(tmp_path, raw_gguf(n_tensors=2**60) + b"\0" * 64)))


def test_every_truncation_of_a_real_file_is_a_format_error(tmp_path: Path) -> None:
    full = write_gguf(tmp_path / "full.gguf", templates={"tokenizer.chat_template": CHATML})
    data = full.read_bytes()
    gf = read_gguf(_entry(full))
    data_end = gf.data_offset + max(t.relative_offset + t.nbytes for t in gf.tensors)
    for cut in range(0, data_end, 7):
        path = _write(tmp_path, data[:cut], "cut.gguf")
        with pytest.raises(FormatError, match=r"truncated|bad magic|cannot fit"):
            read_gguf(_entry(path))


def test_hidden_bytes_after_the_last_tensor_are_counted(tmp_path: Path) -> None:
    tensors = [raw_tensor_info("t", [8], F32, 0)]
    clean = raw_gguf(tensors=tensors, data=b"\1" * 32)
    assert read_gguf(_entry(_write(tmp_path, clean))).unused_bytes == 0
    hidden = raw_gguf(tensors=tensors, data=b"\1" * 32 + b"payload" * 100)
    assert read_gguf(_entry(_write(tmp_path, hidden, "h.gguf"))).unused_bytes == 700


def test_invalid_utf8_values_are_recorded_not_fatal(tmp_path: Path) -> None:
    data = raw_gguf([raw_string("general.name") + struct.pack("<I", 8) + raw_string(b"\xff")])
    gf = read_gguf(_entry(_write(tmp_path, data)))
    assert gf.invalid_utf8_keys == ("general.name",)
    assert gf.metadata["general.name"] == "\ufffd"


def test_big_endian_files_are_read(tmp_path: Path) -> None:
    data = (
        b"GGUF"
        + struct.pack(">IQQ", 3, 0, 1)
        + struct.pack(">Q", 3)
        + b"key"
        + struct.pack(">II", 4, 7)
    )
    gf = read_gguf(_entry(_write(tmp_path, data)))
    assert gf.byte_order == ">"
    assert gf.metadata == {"key": 7}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_files_never_crash(tmp_path: Path, data: st.DataObject) -> None:
    template = write_gguf(tmp_path / "base.gguf", quantized=True)
    blob = bytearray(template.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    path = _write(tmp_path, bytes(blob), "mutated.gguf")
    try:
        gf = read_gguf(_entry(path))
    except FormatError:
        return
    assert gf.data_offset <= len(blob)


def test_ggml_type_table_matches_the_gguf_package() -> None:
    from gguf.constants import GGML_QUANT_SIZES

    from modelseal.formats.gguf import GGML_TYPES

    reference = {int(t): (t.name, b, s) for t, (b, s) in GGML_QUANT_SIZES.items()}
    assert dict(GGML_TYPES) == reference
