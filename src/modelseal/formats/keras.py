"""Keras model configs, read without Keras or TensorFlow.

* Keras v3 ``.keras`` files are zips holding ``config.json`` (the model's
  architecture), ``metadata.json`` and ``model.weights.h5``.
* Legacy HDF5 ``.h5`` files hold the same architecture as JSON in the root group's
  ``model_config`` attribute, read with ``h5py`` (imported lazily; it opens the file
  read-only and never executes anything in it).

Lambda layers store their Python function as base64 of ``marshal.dumps(code)``.
``marshal.loads`` is never called on it (it is not safe on untrusted bytes and its
format changes between Python versions): :func:`code_names` decodes it with a small,
bounded reader of the marshal format that understands code objects of CPython 3.0–3.13
and returns the names the code uses (``co_names``) and its string constants, for
nested functions too. If that reader cannot make sense of the bytes, it falls back to
listing the printable identifiers in them; :attr:`CodeNames.method` says which was used.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, Limits, seekable_source
from modelseal.formats.protobuf import Field, WireType, message

__all__ = [
    "MAX_CODE_BYTES",
    "MAX_CONFIG_BYTES",
    "CodeNames",
    "KerasConfig",
    "KerasFormatError",
    "KerasNode",
    "code_names",
    "read_keras_config",
    "read_saved_metadata",
    "read_savedmodel_keras_nodes",
]

#: Largest ``config.json`` / ``model_config`` read.
MAX_CONFIG_BYTES = 64 * 1024**2
#: Largest decoded Lambda code blob analysed.
MAX_CODE_BYTES = 4 * 1024**2

_MAX_OBJECTS = 200_000
_MAX_NESTING = 64
_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class KerasFormatError(FormatError):
    """A Keras file whose config cannot be read."""


@dataclass(frozen=True)
class KerasConfig:
    """A model architecture as Keras stored it."""

    #: The parsed JSON (a dict with ``class_name`` and ``config`` for whole models).
    config: Any
    #: ``config.json`` (Keras v3 zip) or ``model_config`` (legacy HDF5 attribute).
    source: str
    #: The Keras version that wrote the file, if recorded.
    keras_version: str | None = None
    #: Legacy HDF5 only: the ``training_config`` attribute (optimizer, losses, metrics),
    #: which names serialized objects just like the architecture does.
    training_config: Any = None


@dataclass(frozen=True)
class CodeNames:
    """What a marshalled code object refers to."""

    #: Global and attribute names used (``co_names`` of the code and nested code).
    names: tuple[str, ...]
    #: String constants (module names passed to ``__import__``, shell commands...).
    strings: tuple[str, ...]
    #: ``marshal`` (structural decode) or ``strings`` (printable-identifier fallback).
    method: str


@dataclass(frozen=True)
class KerasNode:
    """One Keras object of a SavedModel's ``keras_metadata.pb``."""

    #: Path from the root object (``root.layer-1``).
    node_path: str
    #: How Keras revives it (``_tf_keras_layer``, ``_tf_keras_sequential``...).
    identifier: str
    #: The object's JSON metadata: ``class_name``, ``config`` and, for models, the whole
    #: architecture again (``model_config``) and the ``training_config``.
    metadata: Any


def read_saved_metadata(data: bytes | memoryview, where: str) -> list[KerasNode]:
    """The nodes of a ``keras_metadata.pb`` (tf.keras 2.5+ SavedModels), without TensorFlow.

    ``SavedMetadata { repeated SavedObject nodes = 1 }`` with ``SavedObject { int32
    node_id = 2; string node_path = 3; string identifier = 4; string metadata = 5;
    VersionDef version = 6 }`` (keras/protobuf/saved_metadata.proto). Raises
    :class:`~modelseal.formats.protobuf.ProtobufError` or :class:`KerasFormatError`.
    """
    if len(data) > MAX_CONFIG_BYTES:
        raise LimitExceededError(f"{where}: larger than {MAX_CONFIG_BYTES:,} bytes")
    nodes: list[KerasNode] = []
    for field in message(data, 0):
        if field.number != 1 or field.wire_type != WireType.LENGTH_DELIMITED:
            raise KerasFormatError(f"{where}: field {field.number} is not SavedMetadata.nodes")
        if len(nodes) >= _MAX_OBJECTS:
            raise LimitExceededError(f"{where}: more than {_MAX_OBJECTS:,} Keras objects")
        strings = {3: "", 4: "", 5: ""}
        for inner in message(field.data, 1):
            if inner.number in strings and inner.wire_type == WireType.LENGTH_DELIMITED:
                strings[inner.number] = bytes(inner.data).decode("utf-8", errors="replace")
        metadata = _parse_json(strings[5], f"{where}:{strings[3]}") if strings[5] else None
        nodes.append(KerasNode(strings[3], strings[4], metadata))
    return nodes


def read_savedmodel_keras_nodes(data: bytes | memoryview, where: str) -> list[KerasNode]:
    """Keras objects recorded inside ``saved_model.pb`` itself (TF 2.0-2.4 wrote no
    ``keras_metadata.pb``): ``SavedModel.meta_graphs`` (2) -> ``MetaGraphDef.object_graph_def``
    (7) -> ``SavedObjectGraph.nodes`` (1) -> ``SavedObject.user_object`` (4) ->
    ``SavedUserObject { identifier = 1; metadata = 3 }``, for ``_tf_keras*`` identifiers.
    """
    nodes: list[KerasNode] = []
    for meta in _length_delimited(message(data, 0), 2):
        for graph in _length_delimited(message(meta, 1), 7):
            for index, node in enumerate(_length_delimited(message(graph, 2), 1)):
                for user in _length_delimited(message(node, 3), 4):
                    strings = {1: "", 3: ""}
                    for inner in message(user, 4):
                        if inner.number in strings and inner.wire_type == WireType.LENGTH_DELIMITED:
                            strings[inner.number] = bytes(inner.data).decode("utf-8", "replace")
                    if strings[1].startswith("_tf_keras") and strings[3]:
                        if len(nodes) >= _MAX_OBJECTS:
                            raise LimitExceededError(f"{where}: too many Keras objects")
                        path = f"object_graph/node[{index}]"
                        metadata = _parse_json(strings[3], f"{where}:{path}")
                        nodes.append(KerasNode(path, strings[1], metadata))
    return nodes


def _length_delimited(fields: Iterable[Field], number: int) -> Iterator[memoryview]:
    for field in fields:
        if field.number == number and field.wire_type == WireType.LENGTH_DELIMITED:
            yield field.data


def read_keras_config(entry: Entry, limits: Limits | None = None) -> KerasConfig | None:
    """The architecture stored in a ``.keras`` zip or a legacy ``.h5`` file.

    Returns None for HDF5 files without a ``model_config`` attribute (plain weight
    files, including the ``model.weights.h5`` inside ``.keras`` zips). Raises
    :class:`KerasFormatError` when the config is present but unreadable.
    """
    limits = limits or Limits()
    if entry.format == Format.KERAS:
        return _read_zip_config(entry, limits)
    if entry.format == Format.HDF5:
        return _read_hdf5_config(entry, limits)
    return None


def _read_zip_config(entry: Entry, limits: Limits) -> KerasConfig:
    opener = seekable_source(entry, limits)
    try:
        with opener() as stream, zipfile.ZipFile(stream) as archive:
            config = _zip_json(archive, "config.json", entry.path)
            try:
                metadata = _zip_json(archive, "metadata.json", entry.path)
            except KerasFormatError:
                metadata = None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise KerasFormatError(f"{entry.path}: unreadable .keras archive ({exc})") from exc
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return KerasConfig(config, "config.json", version if isinstance(version, str) else None)


def _zip_json(archive: zipfile.ZipFile, name: str, where: str) -> Any:
    try:
        info = archive.getinfo(name)
    except KeyError as exc:
        raise KerasFormatError(f"{where}: no {name} in the .keras archive") from exc
    if info.file_size > MAX_CONFIG_BYTES:
        raise LimitExceededError(f"{where}: {name} of {info.file_size:,} bytes is too large")
    with archive.open(info) as member:
        data = member.read(MAX_CONFIG_BYTES + 1)
    return _parse_json(data, f"{where}!{name}")


def _parse_json(data: bytes | str, where: str) -> Any:
    if len(data) > MAX_CONFIG_BYTES:
        raise LimitExceededError(f"{where}: config larger than {MAX_CONFIG_BYTES:,} bytes")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise KerasFormatError(f"{where}: invalid JSON model config ({exc})") from exc


def _read_hdf5_config(entry: Entry, limits: Limits) -> KerasConfig | None:
    import h5py  # heavy: only when an HDF5 file is scanned

    opener = seekable_source(entry, limits)
    try:
        with opener() as stream, h5py.File(stream, "r") as handle:
            raw = handle.attrs.get("model_config")
            training = handle.attrs.get("training_config")
            version = handle.attrs.get("keras_version")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise KerasFormatError(f"{entry.path}: unreadable HDF5 file ({exc})") from exc
    if raw is None:
        return None
    config = _parse_json(_attr_text(raw), f"{entry.path}:model_config")
    training_config = None
    if training is not None:
        training_config = _parse_json(_attr_text(training), f"{entry.path}:training_config")
    if isinstance(version, bytes):
        version = version.decode("utf-8", errors="replace")
    return KerasConfig(
        config,
        "model_config",
        version if isinstance(version, str) else None,
        training_config,
    )


def _attr_text(value: Any) -> bytes | str:
    """An HDF5 string attribute as str or bytes (h5py returns str, bytes or numpy scalars)."""
    if isinstance(value, (bytes, str)):
        return value
    if hasattr(value, "tobytes"):
        return bytes(value.tobytes())
    raise KerasFormatError(f"attribute of type {type(value).__name__} is not a JSON string")


# -- Lambda code ----------------------------------------------------------------------


def code_names(encoded: str) -> CodeNames:
    """The names used by a Lambda's base64-encoded marshalled code (never unmarshalled)."""
    try:
        raw = base64.b64decode(encoded.encode("ascii", errors="replace"), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise KerasFormatError(f"Lambda code is not valid base64 ({exc})") from exc
    if len(raw) > MAX_CODE_BYTES:
        raise LimitExceededError(f"Lambda code of {len(raw):,} bytes is too large to analyse")
    try:
        value, _ = _MarshalReader(raw).read(0, 0)
    except _MarshalError:
        value = None
    if isinstance(value, _Code):
        names: dict[str, None] = {}
        strings: dict[str, None] = {}
        value.collect(names, strings)
        return CodeNames(tuple(names), tuple(strings), "marshal")
    found = dict.fromkeys(m.decode("ascii") for m in _IDENTIFIER.findall(raw) if len(m) > 1)
    return CodeNames(tuple(found), (), "strings")


class _MarshalError(Exception):
    pass


@dataclass(frozen=True)
class _Code:
    names: tuple[Any, ...]
    consts: tuple[Any, ...]

    def collect(self, names: dict[str, None], strings: dict[str, None]) -> None:
        for name in self.names:
            if isinstance(name, str):
                names[name] = None
        for const in self.consts:
            _collect_const(const, names, strings)


def _collect_const(const: Any, names: dict[str, None], strings: dict[str, None]) -> None:
    if isinstance(const, _Code):
        const.collect(names, strings)
    elif isinstance(const, str):
        strings[const] = None
    elif isinstance(const, (tuple, frozenset)):
        for item in const:
            _collect_const(item, names, strings)


# Field layouts of code objects: "i" is an int32, "o" an object, "b"/"s"/"t" an object
# that must be bytes / str / tuple. Tried newest first.
_CODE_LAYOUTS = (
    # 3.11 - 3.13: argcount posonly kwonly stacksize flags | code consts names
    # localsplusnames localspluskinds filename name qualname | firstlineno | linetable
    # exceptiontable
    "iiiiibtttbsssibb",
    # 3.8 - 3.10: argcount posonly kwonly nlocals stacksize flags | code consts names
    # varnames freevars cellvars filename name | firstlineno | lnotab/linetable
    "iiiiiibtttttssib",
    # 3.0 - 3.7: argcount kwonly nlocals stacksize flags | ... as above
    "iiiiibtttttssib",
)
_CODE_FIELDS = {"code": 0, "consts": 1, "names": 2}


class _MarshalReader:
    """A bounded reader of the marshal format; builds plain values, never code objects."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._refs: list[Any] = []
        self._count = 0

    def _take(self, pos: int, size: int) -> tuple[bytes, int]:
        if size < 0 or pos + size > len(self._data):
            raise _MarshalError("truncated")
        return self._data[pos : pos + size], pos + size

    def _int32(self, pos: int) -> tuple[int, int]:
        raw, pos = self._take(pos, 4)
        value: int = struct.unpack("<i", raw)[0]
        return value, pos

    def _byte(self, pos: int) -> tuple[int, int]:
        raw, pos = self._take(pos, 1)
        return raw[0], pos

    def read(self, pos: int, depth: int) -> tuple[Any, int]:
        self._count += 1
        if self._count > _MAX_OBJECTS or depth > _MAX_NESTING:
            raise _MarshalError("too many or too deeply nested objects")
        code_byte, pos = self._byte(pos)
        flag, kind = code_byte & 0x80, chr(code_byte & 0x7F)
        slot = None
        if flag:
            slot = len(self._refs)
            self._refs.append(None)
        value, pos = self._read_kind(kind, pos, depth)
        if slot is not None:
            self._refs[slot] = value
        return value, pos

    def _read_kind(self, kind: str, pos: int, depth: int) -> tuple[Any, int]:
        simple = {"0": None, "N": None, "F": False, "T": True, "S": None, ".": Ellipsis}
        if kind in simple:
            return simple[kind], pos
        if kind == "i":
            return self._int32(pos)
        if kind == "l":
            digits, pos = self._int32(pos)
            _, pos = self._take(pos, 2 * abs(digits))
            return 0, pos
        if kind == "g":
            raw, pos = self._take(pos, 8)
            return struct.unpack("<d", raw)[0], pos
        if kind == "y":
            _, pos = self._take(pos, 16)
            return 0j, pos
        if kind == "f":
            size, pos = self._byte(pos)
            _, pos = self._take(pos, size)
            return 0.0, pos
        if kind == "x":
            for _ in range(2):
                size, pos = self._byte(pos)
                _, pos = self._take(pos, size)
            return 0j, pos
        if kind == "s":
            size, pos = self._int32(pos)
            return self._take(pos, size)
        if kind in "tuaA":
            size, pos = self._int32(pos)
            raw, pos = self._take(pos, size)
            return raw.decode("utf-8", errors="replace"), pos
        if kind in "zZ":
            size, pos = self._byte(pos)
            raw, pos = self._take(pos, size)
            return raw.decode("latin-1"), pos
        if kind in "()[<>":
            # ")" is a small tuple with a one-byte size; the others have int32 sizes.
            size, pos = self._byte(pos) if kind == ")" else self._int32(pos)
            if size < 0 or size > len(self._data):
                raise _MarshalError("bad container size")
            items = []
            for _ in range(size):
                item, pos = self.read(pos, depth + 1)
                items.append(item)
            return (frozenset(_hashable(i) for i in items) if kind in "<>" else tuple(items)), pos
        if kind == "{":
            items = []
            while True:
                if pos < len(self._data) and self._data[pos] == ord("0"):
                    return tuple(items), pos + 1
                key, pos = self.read(pos, depth + 1)
                value, pos = self.read(pos, depth + 1)
                items.extend((key, value))
        if kind == "r":
            index, pos = self._int32(pos)
            if not 0 <= index < len(self._refs):
                raise _MarshalError("bad reference")
            return self._refs[index], pos
        if kind == "c":
            return self._read_code(pos, depth)
        raise _MarshalError(f"unknown marshal type {kind!r}")

    def _read_code(self, pos: int, depth: int) -> tuple[_Code, int]:
        start_refs, start_count = len(self._refs), self._count
        for layout in _CODE_LAYOUTS:
            try:
                return self._read_code_layout(layout, pos, depth)
            except _MarshalError:
                del self._refs[start_refs:]
                self._count = start_count
        raise _MarshalError("code object matches no known layout")

    def _read_code_layout(self, layout: str, pos: int, depth: int) -> tuple[_Code, int]:
        objects: list[Any] = []
        for field in layout:
            if field == "i":
                _, pos = self._int32(pos)
                continue
            value, pos = self.read(pos, depth + 1)
            expected = {"b": bytes, "s": str, "t": tuple}[field]
            if not isinstance(value, expected):
                raise _MarshalError("field type does not match the layout")
            objects.append(value)
        return _Code(names=objects[_CODE_FIELDS["names"]], consts=objects[1]), pos


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
