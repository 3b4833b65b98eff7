"""PyTorch zip checkpoints: list tensors without unpickling (and without torch).

``torch.save`` writes a zip whose ``<prefix>/data.pkl`` describes the object graph;
each tensor in it is ``torch._utils._rebuild_tensor_v2(persistent_load(('storage',
<StorageType>, key, location, numel)), storage_offset, size, stride, ...)`` and the
storage bytes live, uncompressed, in the member ``<prefix>/data/<key>``. The pickle is
simulated symbolically (:mod:`modelseal.scan.pickle.walker`); tensor names are the
dotted key paths of the dicts holding them (``layer.0.weight``), or the
``state_dict()`` names for a pickled ``nn.Module``.

Only contiguous tensors are listed: a strided view has no single byte range that
:func:`~modelseal.formats.tensors.tensor_array` could map with its shape.
"""

from __future__ import annotations

import math
import struct
import zipfile
from collections.abc import Iterator, Sequence
from typing import IO, Any, BinaryIO

from modelseal.errors import FormatError
from modelseal.formats.format import Format
from modelseal.formats.interface import TensorReader
from modelseal.formats.inventory import Entry
from modelseal.formats.tensors import DTYPE_SIZES, TensorInfo

__all__ = ["STORAGE_DTYPES", "TORCH_DTYPES", "TorchZipReader"]

#: Legacy storage class name -> canonical dtype.
STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
}

#: ``torch.<name>`` dtype globals -> canonical dtype.
TORCH_DTYPES: dict[str, str] = {
    "float32": "float32",
    "float": "float32",
    "float64": "float64",
    "double": "float64",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int16": "int16",
    "short": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
    "complex64": "complex64",
    "cfloat": "complex64",
    "complex128": "complex128",
    "cdouble": "complex128",
    "float8_e4m3fn": "float8_e4m3fn",
    "float8_e5m2": "float8_e5m2",
}

_REBUILD_TENSOR = frozenset({"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3"})
_REBUILD_PARAMETER = frozenset({"_rebuild_parameter", "_rebuild_parameter_with_state"})
_UNTYPED = frozenset({"UntypedStorage", "TypedStorage", "_UntypedStorage"})
_MAX_DEPTH = 200


class TorchZipReader(TensorReader):
    """Lists the tensors of a ``torch.save`` zip checkpoint from ``data.pkl`` alone."""

    formats = frozenset({Format.PYTORCH_ZIP, Format.TORCHSCRIPT})

    def tensors(self, entry: Entry) -> Sequence[TensorInfo]:
        """Describe every contiguous tensor; raise FormatError for a broken checkpoint."""
        if entry.fs_path is None or entry.data_offset is None:
            raise FormatError(
                f"{entry.path}: the checkpoint is not stored uncompressed on disk",
                advice="extract it from its container first",
            )
        try:
            with entry.open() as raw, zipfile.ZipFile(raw) as archive:
                infos = {info.filename: info for info in archive.infolist()}
                pickles = sorted(
                    (p for p in infos if p == "data.pkl" or p.endswith("/data.pkl")),
                    key=lambda p: (p.count("/"), p),
                )
                if not pickles:
                    raise FormatError(f"{entry.path}: no data.pkl in the checkpoint")
                data_pkl = pickles[0]
                with archive.open(infos[data_pkl]) as stream:
                    root = _read_root(stream, f"{entry.path}!{data_pkl}")
                storages = _Storages(entry, raw, infos, data_pkl[: -len("data.pkl")])
                result: list[TensorInfo] = []
                for name, args, dtype_override in _walk_tensors(root, "", 0, set()):
                    info = _tensor_info(entry, storages, name, args, dtype_override)
                    if info is not None:
                        result.append(info)
                return result
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise FormatError(f"{entry.path}: cannot read the checkpoint ({exc})") from exc


class _Storages:
    """Finds where each ``<prefix>data/<key>`` member's bytes start in the file."""

    def __init__(
        self, entry: Entry, raw: BinaryIO, infos: dict[str, zipfile.ZipInfo], prefix: str
    ) -> None:
        self._entry = entry
        self._raw = raw
        self._infos = infos
        self._prefix = prefix

    def locate(self, key: Any) -> tuple[int, int]:
        """(absolute offset in ``entry.fs_path``, size) of storage ``key``."""
        info = self._infos.get(f"{self._prefix}data/{key}")
        if info is None:
            raise FormatError(f"{self._entry.path}: storage {key!r} is missing")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise FormatError(f"{self._entry.path}: storage {key!r} is compressed; cannot map it")
        self._raw.seek(info.header_offset)
        local = self._raw.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise FormatError(f"{self._entry.path}: bad local header for storage {key!r}")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        return (self._entry.data_offset or 0) + start, info.file_size


def _read_root(stream: IO[bytes], what: str) -> Any:
    from modelseal.scan.pickle.streams import analyse_stream

    report = analyse_stream(stream)
    if report.analysis.error is not None or not report.analysis.results:
        raise FormatError(f"{what}: cannot read the checkpoint's pickle ({report.analysis.error})")
    return report.analysis.results[0]


def _global_name(value: Any) -> tuple[str, str] | None:
    from modelseal.scan.pickle.walker import Global

    if isinstance(value, Global):
        return value.module, value.name
    return None


def _walk_tensors(
    value: Any, prefix: str, depth: int, seen: set[int]
) -> Iterator[tuple[str, tuple[Any, ...], str | None]]:
    """Yield (dotted name, rebuild args, dtype from _rebuild_tensor_v3) per tensor."""
    from modelseal.scan.pickle.walker import Obj, SymDict

    if depth > _MAX_DEPTH or id(value) in seen:
        return
    if isinstance(value, Obj | SymDict | list | tuple):
        seen.add(id(value))
    if isinstance(value, Obj):
        func = _global_name(value.func)
        args = value.args if isinstance(value.args, tuple) else ()
        if func is not None and func[0] == "torch._utils":
            if func[1] in _REBUILD_TENSOR:
                dtype = None
                if func[1] == "_rebuild_tensor_v3" and len(args) > 6:
                    dtype = _torch_dtype(args[6])
                yield prefix, args, dtype
                return
            if func[1] in _REBUILD_PARAMETER and args:
                yield from _walk_tensors(args[0], prefix, depth + 1, seen)
                return
        module_state = _module_state(value)
        if module_state is not None:
            for key in ("_parameters", "_buffers"):
                yield from _walk_tensors(module_state.get(key), prefix, depth + 1, seen)
            yield from _walk_tensors(module_state.get("_modules"), prefix, depth + 1, seen)
            return
        yield from _walk_pairs(value.pairs, prefix, depth, seen)
        for index, item in enumerate(value.items):
            yield from _walk_tensors(item, _join(prefix, str(index)), depth + 1, seen)
        for state in value.states:
            yield from _walk_tensors(state, prefix, depth + 1, seen)
    elif isinstance(value, SymDict):
        yield from _walk_pairs(value.pairs, prefix, depth, seen)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk_tensors(item, _join(prefix, str(index)), depth + 1, seen)


def _walk_pairs(
    pairs: list[tuple[Any, Any]], prefix: str, depth: int, seen: set[int]
) -> Iterator[tuple[str, tuple[Any, ...], str | None]]:
    for key, item in pairs:
        if isinstance(key, str | int) and not isinstance(key, bool):
            yield from _walk_tensors(item, _join(prefix, str(key)), depth + 1, seen)


def _module_state(value: Any) -> Any:
    """The attribute dict of a pickled ``nn.Module`` (has ``_modules``), if it is one."""
    from modelseal.scan.pickle.walker import SymDict

    for state in value.states:
        if (
            isinstance(state, SymDict)
            and state.get("_modules") is not None
            and state.get("_parameters") is not None
        ):
            return state
    return None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _torch_dtype(value: Any) -> str | None:
    name = _global_name(value)
    if name is None or name[0] != "torch":
        return None
    return TORCH_DTYPES.get(name[1])


def _tensor_info(
    entry: Entry,
    storages: _Storages,
    name: str,
    args: tuple[Any, ...],
    dtype_override: str | None,
) -> TensorInfo | None:
    from modelseal.scan.pickle.walker import Persistent

    if len(args) < 4 or not isinstance(args[0], Persistent):
        raise FormatError(f"{entry.path}: tensor {name!r} has no storage reference")
    pid = args[0].pid
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise FormatError(f"{entry.path}: tensor {name!r} has an unknown storage id {pid!r}")
    storage_type, key = _global_name(pid[1]), pid[2]
    dtype = dtype_override
    if dtype is None and storage_type is not None and storage_type[0] in ("torch", "torch.cuda"):
        dtype = "uint8" if storage_type[1] in _UNTYPED else STORAGE_DTYPES.get(storage_type[1])
    if dtype is None:
        return None  # quantized or unknown storage type: not a plain tensor
    storage_offset, size, stride = args[1], args[2], args[3]
    if not (
        isinstance(storage_offset, int)
        and storage_offset >= 0
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(n, int) and n >= 0 for n in (*size, *stride))
    ):
        raise FormatError(f"{entry.path}: tensor {name!r} has an invalid geometry")
    if not _contiguous(size, stride):
        return None
    base, storage_size = storages.locate(key)
    itemsize = DTYPE_SIZES[dtype]
    nbytes = math.prod(size) * itemsize
    start = storage_offset * itemsize
    if start + nbytes > storage_size:
        raise FormatError(
            f"{entry.path}: tensor {name!r} ({nbytes:,} bytes at {start:,}) overruns its "
            f"storage of {storage_size:,} bytes"
        )
    return TensorInfo(
        name=name,
        dtype=dtype,
        shape=tuple(size),
        file=entry.fs_path,  # type: ignore[arg-type]
        offset=base + start,
        nbytes=nbytes,
        source=entry.path,
    )


def _contiguous(size: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = 1
    for dim, step in zip(reversed(size), reversed(stride), strict=True):
        if dim != 1 and step != expected:
            return False
        expected *= dim
    return True
