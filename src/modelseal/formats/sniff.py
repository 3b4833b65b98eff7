"""Detect a file's format from its bytes.

Names are only hints used to break ties between formats whose bytes look alike
(a SavedModel and an ONNX file are both protobufs); a ``.bin`` or ``.pt`` name never
decides anything on its own. Detection reads a bounded head of the file and, for
archives, the archive's member list — never the whole file.
"""

from __future__ import annotations

import io
import pickletools
import struct
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from typing import BinaryIO

from modelseal.formats.format import Format
from modelseal.formats.protobuf import ProtobufError, read_varint

__all__ = [
    "HEAD_BYTES",
    "classify_tar_names",
    "classify_zip_names",
    "detect",
    "is_protobuf",
    "is_tar_header",
]

#: How many leading bytes detection looks at.
HEAD_BYTES = 64 * 1024

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_ZLIB_HEADERS = frozenset({b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"})
# Every pickle opcode: a PROTO-less pickle may start with any of them.
_PICKLE_OPCODES = frozenset(ord(op.code) for op in pickletools.opcodes if len(op.code) == 1)

_ONNX_FIELDS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26})
_SAVEDMODEL_FIELDS = frozenset({1, 2})
_KERAS_METADATA_FIELDS = frozenset({1})  # SavedMetadata.nodes


def detect(
    head: bytes,
    *,
    name: str,
    size: int,
    open_stream: Callable[[], BinaryIO] | None = None,
) -> Format:
    """Return the format of a file whose first bytes are ``head``.

    ``open_stream`` gives a seekable stream of the whole file; it is used only to
    list archive members.
    """
    if size == 0 or not head:
        return Format.EMPTY
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _detect_zip(open_stream)
    if head.startswith(b"GGUF"):
        return Format.GGUF
    if head.startswith(b"\x93NUMPY"):
        return Format.NUMPY
    if _is_hdf5(head):
        return Format.HDF5
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return Format.PYTORCH_LEGACY
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Format.PICKLE
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return Format.SEVEN_ZIP
    if head.startswith(b"\x1f\x8b"):
        return Format.GZIP
    if head.startswith(b"BZh"):
        return Format.BZIP2
    if head.startswith(b"\xfd7zXZ\x00") or _is_lzma_alone(head):
        return Format.XZ
    if head.startswith(b"\x04\x22\x4d\x18"):  # an lz4 frame (joblib's "lz4" compressor)
        return Format.LZ4
    if head[:2] in _ZLIB_HEADERS or head.startswith(b"ZF"):
        return Format.ZLIB
    if len(head) > 262 and head[257:262] == b"ustar":
        return _detect_tar(open_stream)
    if _is_safetensors(head, size):
        return Format.SAFETENSORS
    proto = _protobuf_fields(head, size)
    if proto:
        base = name.rsplit("/", 1)[-1].rsplit("!", 1)[-1]
        if base == "saved_model.pb" and proto <= _SAVEDMODEL_FIELDS:
            return Format.TF_SAVEDMODEL
        if base == "keras_metadata.pb" and proto <= _KERAS_METADATA_FIELDS:
            return Format.KERAS_METADATA
        if proto <= _ONNX_FIELDS and proto & {7, 8} and 1 in proto:
            return Format.ONNX
    else:
        # A protobuf cut short (its last field runs past the end of the file): the name
        # breaks the tie, so the file is reported as a damaged model, not as unknown.
        base = name.rsplit("/", 1)[-1].rsplit("!", 1)[-1]
        cut = _truncated_protobuf_fields(head, size)
        if cut and base == "saved_model.pb" and cut <= _SAVEDMODEL_FIELDS:
            return Format.TF_SAVEDMODEL
        if cut and base == "keras_metadata.pb" and cut <= _KERAS_METADATA_FIELDS:
            return Format.KERAS_METADATA
        if cut and base.lower().endswith(".onnx") and cut <= _ONNX_FIELDS and 1 in cut:
            return Format.ONNX
    if head[0] in _PICKLE_OPCODES and _is_proto0_pickle(head, size):
        return Format.PICKLE
    return _detect_text(head, name)


def classify_zip_names(names: Sequence[str]) -> Format:
    """Tell a PyTorch, TorchScript, NumPy or Keras zip from a plain zip by its member names."""
    files = [n for n in names if not n.endswith("/")]
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in files):
        torchscript = any(
            n.endswith("/constants.pkl") or "/code/" in n or n.startswith("code/") for n in files
        )
        return Format.TORCHSCRIPT if torchscript else Format.PYTORCH_ZIP
    if files and all(n.endswith(".npy") for n in files):
        return Format.NUMPY_NPZ
    top = {n for n in files if "/" not in n}
    if "config.json" in top and top & {"metadata.json", "model.weights.h5", "model.weights.npz"}:
        return Format.KERAS
    return Format.ZIP


def classify_tar_names(names: Sequence[str]) -> Format:
    """Tell PyTorch's legacy tar checkpoint from a plain tar by its member names."""
    if {"sys_info", "pickle", "storages"} <= {n.strip("./") for n in names}:
        return Format.PYTORCH_LEGACY_TAR
    return Format.TAR


def _detect_zip(open_stream: Callable[[], BinaryIO] | None) -> Format:
    if open_stream is None:
        return Format.ZIP
    try:
        with open_stream() as stream, zipfile.ZipFile(stream) as archive:
            return classify_zip_names(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return Format.ZIP


def _detect_tar(open_stream: Callable[[], BinaryIO] | None) -> Format:
    if open_stream is None:
        return Format.TAR
    try:
        with open_stream() as stream, tarfile.open(fileobj=stream, mode="r:") as archive:
            names = []
            for member in archive:
                names.append(member.name)
                if len(names) > 64:
                    break
            return classify_tar_names(names)
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return Format.TAR


def is_tar_header(head: bytes) -> bool:
    """Whether ``head`` starts with a ustar header whose checksum holds (whatever else
    the bytes are: a pickle can be a tar too)."""
    if len(head) < 512 or head[257:262] != b"ustar":
        return False
    try:
        with tarfile.open(fileobj=io.BytesIO(head[:512] + bytes(1024)), mode="r:") as archive:
            return archive.next() is not None
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return False


def _is_hdf5(head: bytes) -> bool:
    # HDF5 allows a user block of 512 * 2**k bytes before the superblock.
    return any(head[offset : offset + 8] == _HDF5_MAGIC for offset in (0, 512, 1024, 2048, 4096))


def _is_lzma_alone(head: bytes) -> bool:
    # The legacy .lzma header (joblib's "lzma" compressor writes it): properties byte
    # 0x5d, a 4-byte dictionary size, then the size or 8 x 0xff for "unknown".
    return (
        len(head) >= 13
        and head[0] == 0x5D
        and head[1:3] == b"\x00\x00"
        and (head[5:13] == b"\xff" * 8 or int.from_bytes(head[5:13], "little") < 2**48)
    )


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len <= size - 8 and head[8:9] == b"{"


def _walk_protobuf(head: bytes, size: int) -> tuple[frozenset[int], int | None, str, int]:
    """Read ``head`` as a protobuf message's top-level fields.

    Returns the numbers of the fields read whole, the number of the field the walk
    stopped inside (if any), how it ended (``complete``, ``cut`` by the head's end, a
    field that ``overrun``s the file, or ``invalid``) and where it stopped.
    """
    fields: set[int] = set()
    pos = 0
    number: int | None = None
    try:
        while pos < len(head):
            number = None
            key, pos = read_varint(head, pos)
            number, wire = key >> 3, key & 7
            if number == 0 or number > 1000 or wire not in (0, 1, 2, 5):
                return frozenset(), None, "invalid", pos
            if wire == 0:
                _, pos = read_varint(head, pos)
            elif wire == 2:
                length, pos = read_varint(head, pos)
                if pos + length > size:
                    return frozenset(fields), number, "overrun", pos
                pos += length
            else:
                pos += 8 if wire == 1 else 4
            fields.add(number)
            number = None
    except ProtobufError:
        return frozenset(fields), number, "cut", pos
    return frozenset(fields), None, "complete", pos


def _protobuf_fields(head: bytes, size: int) -> frozenset[int]:
    """Top-level field numbers if ``head`` parses as a protobuf message, else empty."""
    fields, _, ending, pos = _walk_protobuf(head, size)
    if ending in ("invalid", "overrun"):
        return frozenset()
    return fields if pos >= min(len(head), size) or len(fields) >= 2 else frozenset()


def is_protobuf(head: bytes, size: int) -> bool:
    """Whether ``head`` (of a ``size``-byte file) reads as a protobuf message's fields
    (a walk cut by the end of the head, not of the file, still counts)."""
    fields, _, ending, _ = _walk_protobuf(head, size)
    return bool(fields) and (ending == "complete" or (ending == "cut" and len(head) < size))


def _truncated_protobuf_fields(head: bytes, size: int) -> frozenset[int]:
    """Top-level field numbers of a protobuf whose last field runs past the file's end."""
    fields, partial, ending, _ = _walk_protobuf(head, size)
    if ending == "overrun" or (ending == "cut" and len(head) >= size):
        return fields | ({partial} if partial is not None else set())
    return frozenset()


def _is_proto0_pickle(head: bytes, size: int) -> bool:
    count = 0
    try:
        for opcode, _arg, position in pickletools.genops(io.BytesIO(head)):
            count += 1
            if opcode.name == "STOP":
                # Text can parse as a short pickle ("import x\ns.y" is INST, SETITEM,
                # STOP); a real one ends the file (binary pickles carry PROTO instead).
                return count >= 2 and not head[(position or 0) + 1 :].strip() and len(head) >= size
    except Exception:  # pickletools raises many types on garbage; any means "not a pickle"
        # A head cut in the middle of a long valid pickle is still a pickle.
        return len(head) < size and count >= 8
    return False


def _detect_text(head: bytes, name: str) -> Format:
    if b"\x00" in head:
        return Format.UNKNOWN
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut by the head limit
            return Format.UNKNOWN
        text = head[: exc.start].decode("utf-8")
    stripped = text.lstrip()
    if name.endswith(".py") or stripped.startswith(("#!/usr/bin/env python", "#!/usr/bin/python")):
        return Format.PYTHON
    # a ``.txt`` file is read as lines (``vocab.txt`` starts with ``[PAD]``), never as JSON
    if stripped[:1] in ("{", "[") and not name.lower().endswith(".txt"):
        return Format.JSON
    return Format.TEXT
