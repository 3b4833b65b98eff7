"""Drive the walker over whole files: every pickle in a stream, and the raw data
between pickles that real formats put there.

* plain pickles: every pickle to the end of the stream (data after ``STOP`` too);
* legacy PyTorch (``torch.save(..., _use_new_zipfile_serialization=False)``): magic
  number, protocol, sys_info, data and storage-key pickles; the raw storage bytes
  that follow are not pickles and are not read;
* joblib: after the ``BUILD`` of a ``NumpyArrayWrapper`` the array's raw bytes (or, for
  object arrays, a nested pickle) follow inside the stream; they are sized from the
  wrapper's state and skipped (or walked);
* the ``storages`` and ``tensors`` members of the legacy tar format;
* NumPy ``.npy`` files: the header, and the pickle after it for object arrays.
"""

from __future__ import annotations

import ast
import enum
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from modelseal.errors import FormatError, LimitExceededError
from modelseal.scan.pickle.expansion import Expansion, find_expansions
from modelseal.scan.pickle.globals import classify
from modelseal.scan.pickle.walker import (
    Global,
    Limits,
    Obj,
    PickleAnalysis,
    PickleParseError,
    SymDict,
    Walker,
)

__all__ = [
    "TORCH_LEGACY_MAGIC",
    "NpyHeader",
    "StreamKind",
    "StreamReport",
    "analyse_stream",
    "looks_like_pickle",
    "read_npy_header",
    "storage_element_size",
]

#: The first pickle of a legacy ``torch.save`` file holds this integer.
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_NPY_MAGIC = b"\x93NUMPY"
_NPY_MAX_HEADER = 1 << 20

#: Bytes per element of torch's legacy storage classes (``torch.FloatStorage``...).
_STORAGE_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QInt8Storage": 1,
    "QUInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}


class StreamKind(str, enum.Enum):
    """How the bytes of a stream are laid out."""

    #: One or more pickles (plain pickle, joblib, legacy torch: detected from content).
    PICKLES = "pickles"
    #: The ``storages`` member of a legacy torch tar.
    TORCH_TAR_STORAGES = "torch-tar-storages"
    #: The ``tensors`` member of a legacy torch tar.
    TORCH_TAR_TENSORS = "torch-tar-tensors"


@dataclass
class StreamReport:
    """A :class:`PickleAnalysis` plus what the stream turned out to be."""

    analysis: PickleAnalysis
    #: ``pickle``, ``joblib`` or ``pytorch-legacy``.
    flavour: str = "pickle"
    #: Pickles walked.
    pickles: int = 0
    #: Offset of bytes after the last pickle that are not a pickle, if any.
    trailing_offset: int | None = None
    #: Values that expand far beyond the stream (see :mod:`.expansion`).
    expansions: list[Expansion] = field(default_factory=list)


def storage_element_size(storage_type: Any) -> int | None:
    """Bytes per element of a legacy storage class global, or None if unknown."""
    if isinstance(storage_type, Global) and storage_type.module in ("torch", "torch.cuda"):
        return _STORAGE_SIZES.get(storage_type.name)
    return None


def analyse_stream(
    stream: IO[bytes],
    kind: StreamKind = StreamKind.PICKLES,
    *,
    base: int = 0,
    limits: Limits | None = None,
) -> StreamReport:
    """Walk every pickle in ``stream``; never raises for a bad stream.

    A stream that breaks leaves ``analysis.error`` set with everything found before
    the break kept.
    """
    walker = Walker(stream, base=base, limits=limits)
    report = StreamReport(walker.analysis)
    walker.after_build = _joblib_hook(report)
    try:
        if kind is StreamKind.TORCH_TAR_STORAGES:
            _torch_tar_storages(walker, report)
        elif kind is StreamKind.TORCH_TAR_TENSORS:
            _torch_tar_tensors(walker, report)
        else:
            _pickles(walker, report)
    except (FormatError, LimitExceededError) as exc:
        report.analysis.error = exc.message
    except (OSError, EOFError) as exc:
        report.analysis.error = f"cannot read the stream: {exc}"
    except (ValueError, TypeError, OverflowError, RecursionError, struct.error) as exc:
        # Hostile input the checks above did not foresee: fail safe, keep the facts.
        report.analysis.error = f"malformed pickle ({type(exc).__name__}: {exc})"
    report.analysis.end_offset = walker.src.pos
    report.expansions = find_expansions(report.analysis, walker.src.pos - base)
    return report


def _walk(walker: Walker, report: StreamReport) -> Any:
    value = walker.walk_pickle()
    report.pickles += 1
    return value


def _pickles(walker: Walker, report: StreamReport) -> None:
    first = _walk(walker, report)
    if first == TORCH_LEGACY_MAGIC and type(first) is int:
        # magic, protocol, sys_info, data, storage keys; raw storages follow.
        report.flavour = "pytorch-legacy"
        for _ in range(4):
            _walk(walker, report)
        return
    analysis = walker.analysis
    while not walker.at_eof():
        start = walker.src.pos
        rest = walker.peek(_MAX_PADDING + 1)
        if len(rest) <= _MAX_PADDING and not rest.strip(_PADDING):
            # A newline or zero padding after STOP (Python 2 era numpy and text-mode
            # writers add one) is not trailing data -- if it really ends the stream
            # (peek may stop at a buffer boundary). None of these bytes is an opcode.
            walker.skip(len(rest), "padding")
            if not walker.at_eof():
                report.trailing_offset = start
            return
        facts = _fact_count(analysis)
        try:
            _walk(walker, report)
        except PickleParseError:
            if _fact_count(analysis) == facts:
                # Bytes after the last STOP that do not parse as a pickle and import
                # or call nothing before breaking: pickle.load never reads them.
                # Reported as trailing data, not as a broken stream.
                report.trailing_offset = start
                return
            raise


_PADDING = b" \t\r\n\x00"
_MAX_PADDING = 4096


def _fact_count(analysis: PickleAnalysis) -> int:
    return (
        len(analysis.references)
        + len(analysis.calls)
        + len(analysis.dynamic_calls)
        + len(analysis.mutations)
        + len(analysis.persistent_ids)
    )


def _joblib_hook(report: StreamReport) -> Callable[[Walker, Any], None]:
    def hook(walker: Walker, obj: Any) -> None:
        if not _is_joblib_wrapper(obj):
            return
        report.flavour = "joblib"
        # BUILD updates the instance dict: later states add to earlier ones, and joblib
        # reads an array after *every* BUILD of a wrapper.
        state = SymDict()
        for part in obj.states:
            if not isinstance(part, SymDict):
                raise PickleParseError("joblib NumpyArrayWrapper with a non-dict state")
            state.pairs.extend(part.pairs)
        dtype = state.get("dtype")
        if _dtype_has_object(dtype):
            # joblib writes object arrays as a nested pickle in the same stream.
            _walk(walker, report)
            walker.analysis.joblib_arrays += 1
            return
        shape = state.get("shape")
        itemsize = _dtype_itemsize(dtype)
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise PickleParseError(f"joblib array with an unreadable shape {shape!r}")
        if itemsize is None:
            raise PickleParseError("joblib array with a dtype that cannot be sized")
        if state.get("numpy_array_alignment_bytes") is not None:
            (padding,) = walker.read(1, "joblib alignment padding length")
            walker.skip(padding, "joblib alignment padding")
        walker.skip(itemsize * math.prod(shape), "joblib array data")
        walker.analysis.joblib_arrays += 1

    return hook


_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_INSTANTIATORS = frozenset(
    {("copyreg", "_reconstructor"), ("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__")}
)


def _is_joblib_wrapper(obj: Any) -> bool:
    """Whether joblib would see a ``NumpyArrayWrapper`` instance (built directly or
    through ``copyreg``): it then reads the array bytes that follow, and so must we."""
    if not isinstance(obj, Obj) or not isinstance(obj.func, Global):
        return False
    func = (obj.func.module, obj.func.name)
    if func == _WRAPPER:
        return True
    args = obj.args if isinstance(obj.args, tuple) else ()
    return (
        func in _INSTANTIATORS
        and bool(args)
        and isinstance(args[0], Global)
        and (args[0].module, args[0].name) == _WRAPPER
    )


def _dtype_parts(dtype: Any) -> tuple[str, Any] | None:
    if (
        isinstance(dtype, Obj)
        and isinstance(dtype.func, Global)
        and dtype.func.name == "dtype"
        and dtype.func.module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray")
        and isinstance(dtype.args, tuple)
        and dtype.args
        and isinstance(dtype.args[0], str)
    ):
        return dtype.args[0], dtype.states[-1] if dtype.states else None
    return None


def _dtype_has_object(dtype: Any, depth: int = 0) -> bool:
    parts = _dtype_parts(dtype)
    if parts is None or depth > 8:
        return False
    descr, state = parts
    if descr.startswith("O"):
        return True
    if isinstance(state, tuple) and len(state) > 4 and isinstance(state[4], SymDict):
        for _name, field in state[4].pairs:
            if isinstance(field, tuple) and field and _dtype_has_object(field[0], depth + 1):
                return True
    return False


_DESCR_SIZE = re.compile(r"^[a-zA-Z?](\d*)$")


def _dtype_itemsize(dtype: Any) -> int | None:
    parts = _dtype_parts(dtype)
    if parts is None:
        return None
    descr, state = parts
    if (
        descr[:1] in ("S", "U", "V", "a")  # numpy takes elsize from the state only for these
        and isinstance(state, tuple)
        and len(state) > 5
        and isinstance(state[5], int)
        and state[5] > 0
    ):
        return state[5]
    match = _DESCR_SIZE.match(descr)
    if match is None:
        return None
    if match.group(1):
        return int(match.group(1))
    return {"b": 1, "?": 1, "B": 1}.get(descr)


def _int(value: Any, what: str, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise PickleParseError(f"legacy torch {what} is not a count: {value!r}")
    return value


def _torch_tar_storages(walker: Walker, report: StreamReport) -> None:
    count = _int(_walk(walker, report), "storage count", 10_000_000)
    for _ in range(count):
        args = _walk(walker, report)
        if not (isinstance(args, tuple) and len(args) == 3):
            raise PickleParseError(
                f"legacy torch storage header is not (key, location, type): {args!r}"
            )
        size = storage_element_size(args[2])
        if size is None:
            raise PickleParseError(f"unknown legacy storage type {args[2]!r}")
        (numel,) = struct.unpack("<q", walker.read(8, "storage size"))
        if numel < 0:
            raise PickleParseError("negative storage size")
        walker.skip(numel * size, "storage data")
    _walk(walker, report)  # storage views


def _torch_tar_tensors(walker: Walker, report: StreamReport) -> None:
    count = _int(_walk(walker, report), "tensor count", 10_000_000)
    for _ in range(count):
        _walk(walker, report)
        (ndim,) = struct.unpack("<i", walker.read(4, "tensor rank"))
        if not 0 <= ndim <= 64:
            raise PickleParseError(f"legacy torch tensor with rank {ndim}")
        walker.skip(4 + 16 * ndim + 8, "tensor geometry")


@dataclass(frozen=True)
class NpyHeader:
    """The header of a ``.npy`` file."""

    descr: Any
    fortran_order: bool
    shape: tuple[int, ...]
    #: Where the array data (or, for object arrays, the pickle) starts.
    data_offset: int

    @property
    def has_object(self) -> bool:
        """True for object dtypes: loading needs ``allow_pickle=True``."""
        return _descr_has_object(self.descr)


def _descr_has_object(descr: Any, depth: int = 0) -> bool:
    if depth > 16:
        return True
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list | tuple):
        return any(_descr_has_object(part, depth + 1) for part in descr)
    return False


_PY2_LONG = re.compile(r"\b(\d+)L\b")


def read_npy_header(stream: IO[bytes]) -> NpyHeader:
    """Parse a ``.npy`` header (``ast.literal_eval`` only) or raise :class:`FormatError`."""
    prefix = stream.read(8)
    if len(prefix) < 8 or not prefix.startswith(_NPY_MAGIC):
        raise FormatError("not a .npy file (bad magic)")
    major = prefix[6]
    if major == 1:
        raw_len = stream.read(2)
        size_len = 2
    elif major in (2, 3):
        raw_len = stream.read(4)
        size_len = 4
    else:
        raise FormatError(f".npy format version {major} is not supported")
    if len(raw_len) != size_len:
        raise FormatError("truncated .npy header")
    (length,) = struct.unpack("<H" if size_len == 2 else "<I", raw_len)
    if length > _NPY_MAX_HEADER:
        raise LimitExceededError(f".npy header of {length:,} bytes exceeds the limit")
    raw = stream.read(length)
    if len(raw) != length:
        raise FormatError("truncated .npy header")
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
        try:
            header = ast.literal_eval(text.strip())
        except SyntaxError:
            # Python 2 writers put long literals in the shape: ``(2L,)``.
            header = ast.literal_eval(_PY2_LONG.sub(r"\1", text.strip()))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise FormatError(f".npy header is not a Python literal: {exc}") from exc
    if not isinstance(header, dict) or {"descr", "fortran_order", "shape"} - set(header):
        raise FormatError(".npy header lacks descr/fortran_order/shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise FormatError(f".npy header has an invalid shape {shape!r}")
    return NpyHeader(header["descr"], bool(header["fortran_order"]), shape, 8 + size_len + length)


def looks_like_pickle(head: bytes, *, truncated: bool) -> bool:
    """True if ``head`` starts with a complete pickle (at least two opcodes), with
    eight valid opcodes when it is only the head of a longer stream, or with a stream
    that imports a known-dangerous global before it breaks.

    Catches pickles that do not start with ``PROTO`` (``pickle.loads`` accepts them;
    a protocol 0 pickle is text), truncated ones included: a cut-off
    ``cbuiltins\nexec\n...`` is a broken payload, not a text file.
    """
    import io

    walker = Walker(io.BytesIO(head), limits=Limits(max_opcodes=200_000))
    try:
        walker.walk_pickle()
    except (FormatError, LimitExceededError, ValueError, TypeError, OverflowError, struct.error):
        return (truncated and walker.opcodes >= 8) or _names_dangerous(walker.analysis)
    return walker.opcodes >= 2


def _names_dangerous(analysis: PickleAnalysis) -> bool:
    """Whether a (broken) stream imported a known-dangerous global whose module and
    name are importable identifiers (text that merely starts with ``c`` is not)."""
    return any(
        _dotted(ref.module)
        and _dotted(ref.name)
        and classify(ref.module, ref.name).kind == "dangerous"
        for ref in analysis.references
    )


def _dotted(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))
