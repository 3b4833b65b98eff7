"""Streaming per-tensor statistics: one pass over each tensor, chunk by chunk, on every core.

Each tensor is memory-mapped one chunk at a time (through
:func:`modelseal.formats.tensor_array`), so memory stays bounded by a few chunks no
matter how large the file is. Chunks run on a thread pool: the work is numpy ufuncs,
reductions and table lookups, which release the GIL. A chunk yields everything the
detectors need in that single pass: an exponent histogram (NaN/Inf, subnormals and
outliers), per-block histograms of the lowest byte (hidden payloads), moments and a
strided sample (statistics, fingerprints) and payload-header candidates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelseal.formats.tensors import DTYPE_SIZES, TensorInfo, tensor_array
from modelseal.weights.payloads import (
    BLOCK_ELEMENTS,
    Layout,
    SignatureHit,
    layouts_for,
    search_chunk,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CHUNK_ELEMENTS",
    "QUANTILES",
    "FloatSpec",
    "TensorStats",
    "float_spec",
    "iter_chunks",
    "parallel_ordered",
    "tensor_stats",
    "to_float32",
    "worker_pool",
]

#: Elements per chunk (a multiple of the payload test's block size).
CHUNK_ELEMENTS = 64 * BLOCK_ELEMENTS
#: Every how many elements the exponent and low-byte histograms sample.
_EXP_SAMPLE = 8
_LOW_SAMPLE = 4
#: Elements a chunk reads past its end so headers crossing chunk boundaries are found.
_OVERLAP = 1024
#: Size of the strided sample kept per tensor (quantiles, fingerprints).
SAMPLE_SIZE = 65536
#: Quantiles reported per tensor.
QUANTILES: tuple[float, ...] = (0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999)


@dataclass(frozen=True)
class FloatSpec:
    """How to take a float dtype apart: unsigned view, exponent field, mantissa."""

    dtype: str
    unit: str
    exponent_shift: int
    exponent_max: int
    mantissa_bits: int

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return DTYPE_SIZES[self.dtype]


_FLOATS = {
    "float32": FloatSpec("float32", "<u4", 23, 0xFF, 23),
    "float16": FloatSpec("float16", "<u2", 10, 0x1F, 10),
    "bfloat16": FloatSpec("bfloat16", "<u2", 7, 0xFF, 7),
    "float64": FloatSpec("float64", "<u8", 52, 0x7FF, 52),
}


def float_spec(dtype: str) -> FloatSpec | None:
    """The :class:`FloatSpec` of ``dtype``, or None for non-float (or quantized) dtypes."""
    return _FLOATS.get(dtype)


def to_float32(units: NDArray[Any], spec: FloatSpec) -> NDArray[np.float32]:
    """Decode unsigned ``units`` of a float dtype to float32 (float64 stays float64)."""
    if spec.dtype == "float32":
        return units.view(np.float32)
    if spec.dtype == "float16":
        return units.view(np.float16).astype(np.float32)
    if spec.dtype == "bfloat16":
        return (units.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return units.view(np.float64)


@dataclass(frozen=True)
class TensorStats:
    """Summary statistics of one tensor's values (floats; counts only for others)."""

    name: str
    source: str
    dtype: str
    shape: tuple[int, ...]
    numel: int
    mean: float | None = None
    std: float | None = None
    #: Excess kurtosis (0 for a Gaussian).
    kurtosis: float | None = None
    min: float | None = None
    max: float | None = None
    #: Quantile level (as text, e.g. "0.5") to value, from a strided sample.
    quantiles: Mapping[str, float] = field(default_factory=dict)
    nan: int = 0
    inf: int = 0
    subnormal: int = 0
    zero: int = 0
    #: Shannon entropy (bits, 0-8) of the lowest byte of each element.
    lowbit_entropy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = dataclasses.asdict(self)
        data["shape"] = list(self.shape)
        data["quantiles"] = dict(self.quantiles)
        return data


# ------------------------------------------------------------------ thread pool


#: Below this many bytes of tensors, work runs in-process (pool start-up would dominate).
PROCESS_MIN_BYTES = 192 * 1024 * 1024


@contextlib.contextmanager
def worker_pool(total_bytes: int, workers: int | None = None) -> Iterator[Executor | None]:
    """A process pool for ``total_bytes`` of tensor work, or None to run in-process.

    Chunk analysis is many short numpy calls: under threads the GIL serialises them,
    so large inputs use processes (each maps its own chunks; only small results are
    sent back). Workers are forked: spawned ones would re-run the caller's main
    module, which library callers cannot be asked to guard.
    """
    count = workers or os.cpu_count() or 1
    if count <= 1 or total_bytes < PROCESS_MIN_BYTES:
        yield None
        return
    import multiprocessing

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        yield pool


def parallel_ordered(
    function: Callable[[Any], Any], tasks: Iterable[Any], pool: Executor | None
) -> Iterator[Any]:
    """``map(function, tasks)`` on ``pool`` (in-process if None), in order, with bounded
    look-ahead so memory stays bounded. ``function`` must be picklable for a pool."""
    if pool is None:
        yield from map(function, tasks)
        return
    pending: deque[Future[Any]] = deque()
    limit = 2 * (getattr(pool, "_max_workers", None) or 2)
    try:
        for task in tasks:
            pending.append(pool.submit(function, task))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def iter_chunks(info: TensorInfo, chunk: int = CHUNK_ELEMENTS) -> Iterator[tuple[int, int]]:
    """``(first unit, unit count)`` of each chunk of ``info`` (at least one chunk).

    Units are elements, or bytes for quantized dtypes mapped as raw blocks.
    """
    total = info.numel if info.dtype in DTYPE_SIZES else info.nbytes
    yield 0, min(chunk, total)
    for start in range(chunk, total, chunk):
        yield start, min(chunk, total - start)


def chunk_units(info: TensorInfo, start: int, count: int, unit: str) -> NDArray[Any]:
    """Memory-map elements ``[start, start + count)`` of ``info`` as unsigned ``unit``s."""
    size = DTYPE_SIZES[info.dtype]
    sub = dataclasses.replace(
        info, shape=(count,), offset=info.offset + start * size, nbytes=count * size
    )
    return tensor_array(sub).reshape(-1).view(unit)


# ------------------------------------------------------------------ chunk analysis


@dataclass
class ChunkResult:
    """What one chunk contributes to its tensor's accumulator."""

    start: int
    count: int
    #: Histogram of the exponents of every 8th element.
    exponent_hist: NDArray[np.int64] | None = None
    #: Exact counts of exponent 0 (zeros, subnormals) and 1 (the first normal binade).
    exp_zero: int = 0
    exp_one: int = 0
    #: Largest exponent of a finite element (-1 if none).
    top_exponent: int = -1
    block_hists: NDArray[np.int64] | None = None
    #: fp32 only: per block, sampled elements whose lowest byte is set but bits 8-12 are
    #: not (bytes written over fp16/bf16-origin values; 1 in 32 of trained values).
    confined: NDArray[np.int64] | None = None
    moments: tuple[float, float, float, float, int] = (0.0, 0.0, 0.0, 0.0, 0)
    minimum: float = math.inf
    maximum: float = -math.inf
    nan: int = 0
    inf: int = 0
    zero: int = 0
    sample: NDArray[Any] | None = None
    constant: bool = False
    first_unit: int = 0
    hits: list[SignatureHit] = field(default_factory=list)


def analyze_chunk(
    info: TensorInfo, start: int, count: int, *, signatures: bool = True
) -> ChunkResult:
    """One pass over elements ``[start, start + count)`` of ``info``."""
    spec = float_spec(info.dtype)
    total = info.numel if info.dtype in DTYPE_SIZES else info.nbytes
    extra = min(_OVERLAP, total - start - count) if signatures else 0
    result = ChunkResult(start, count)
    if spec is None:
        if signatures and count:
            size = DTYPE_SIZES.get(info.dtype, 1)
            raw = _raw_chunk(info, start, count + extra, size)
            layouts: Sequence[Layout] = layouts_for(1, False)
            result.hits = search_chunk(raw, layouts, start * size, count * size)
        return result
    units = chunk_units(info, start, count + extra, spec.unit)
    own = units[:count]
    exponents = _exponents(own, spec)
    top = spec.exponent_max
    # np.bincount holds the GIL: exact counts come from GIL-free comparisons, and the
    # full exponent histogram (for the robust scale) from a 1-in-8 sample.
    result.exponent_hist = np.bincount(exponents[::_EXP_SAMPLE], minlength=top + 1).astype(np.int64)
    result.exp_zero = int(np.count_nonzero(exponents == 0))
    result.exp_one = int(np.count_nonzero(exponents == 1))
    special = int(np.count_nonzero(exponents == top))
    if special:
        mantissa = own & ((1 << spec.mantissa_bits) - 1)
        result.nan = int(np.count_nonzero((exponents == top) & (mantissa != 0)))
        result.inf = special - result.nan
        finite = exponents[exponents != top]
        result.top_exponent = int(finite.max()) if finite.size else -1
    elif count:
        result.top_exponent = int(exponents.max())
    if result.exp_zero:
        result.zero = int(np.count_nonzero((own << 1) == 0))
    result.block_hists = _block_histograms(own, start)
    if spec.dtype == "float32":
        result.confined = _confined_counts(own, result.block_hists.shape[0])
    values = to_float32(own, spec)
    if result.nan or result.inf:
        values = values[np.isfinite(values)]
    if values.size:
        result.moments = _moments(values)
        result.minimum = float(values.min())
        result.maximum = float(values.max())
    stride = max(1, info.numel // SAMPLE_SIZE)
    phase = (-start) % stride
    result.sample = to_float32(np.ascontiguousarray(own[phase::stride]), spec).copy()
    result.first_unit = int(own[0]) if count else 0
    result.constant = (
        bool(count) and bool(np.all(own[:256] == own[0])) and bool(np.all(own == own[0]))
    )
    if signatures:
        result.hits = search_chunk(units, layouts_for(spec.itemsize, True), start, count)
    return result


def _exponents(units: NDArray[Any], spec: FloatSpec) -> NDArray[Any]:
    """The exponent field of each element (two passes: a shift and a narrowing cast)."""
    if spec.exponent_max == 0xFF:  # float32, bfloat16: the cast drops the sign bit
        return (units >> spec.exponent_shift).astype(np.uint8)
    if spec.exponent_max == 0x1F:
        return (units >> spec.exponent_shift).astype(np.uint8) & np.uint8(0x1F)
    return ((units >> spec.exponent_shift) & spec.exponent_max).astype(np.uint16)


def _moments(values: NDArray[Any]) -> tuple[float, float, float, float, int]:
    """Power sums 1-4 (float32 maths, redone in float64 if that overflows)."""
    with np.errstate(over="ignore", invalid="ignore"):
        squares = values * values
        sums = (
            float(values.sum(dtype=np.float64)),
            float(squares.sum(dtype=np.float64)),
            float(np.dot(squares, values)),
            float(np.dot(squares, squares)),
        )
    if not all(math.isfinite(v) for v in sums):
        wide = values.astype(np.float64)
        squares64 = wide * wide
        with np.errstate(over="ignore", invalid="ignore"):
            sums = (
                float(wide.sum()),
                float(squares64.sum()),
                float(np.dot(squares64, wide)),
                float(np.dot(squares64, squares64)),
            )
    return (*sums, int(values.size))


def _raw_chunk(info: TensorInfo, start: int, count: int, size: int) -> NDArray[np.uint8]:
    if info.dtype not in DTYPE_SIZES:  # quantized blocks: mapped as raw bytes
        array = tensor_array(info)
        return np.asarray(array[start : start + count]).view(np.uint8)
    return chunk_units(info, start, count, "<u1")


_BLOCK_BASE: dict[int, NDArray[np.intp]] = {}


def _block_histograms(units: NDArray[Any], start: int) -> NDArray[np.int64]:
    """256-bin histograms of the lowest byte of every 4th element, one per block."""
    count = units.shape[0]
    low = units.view(np.uint8).reshape(count, units.dtype.itemsize)[::_LOW_SAMPLE, 0]
    blocks = -(-count // BLOCK_ELEMENTS)
    sampled = low.shape[0]
    base = _BLOCK_BASE.get(sampled)
    if base is None:
        base = (np.arange(sampled, dtype=np.intp) * _LOW_SAMPLE // BLOCK_ELEMENTS) * 256
        if count == CHUNK_ELEMENTS:
            _BLOCK_BASE[sampled] = base
    index = low.astype(np.intp)
    index += base
    return np.bincount(index, minlength=blocks * 256).reshape(blocks, 256).astype(np.int64)


def _confined_counts(units: NDArray[Any], blocks: int) -> NDArray[np.int64]:
    """Per block, sampled fp32 elements with a non-zero lowest byte and bits 8-12 zero."""
    rows = units.view(np.uint8).reshape(units.shape[0], 4)
    low, above = rows[::_LOW_SAMPLE, 0], rows[::_LOW_SAMPLE, 1]
    where = np.flatnonzero((above & np.uint8(0x1F)) == 0)
    where = where[low[where] != 0]
    return np.bincount(where // (BLOCK_ELEMENTS // _LOW_SAMPLE), minlength=blocks).astype(np.int64)


# ------------------------------------------------------------------ accumulation


@dataclass
class TensorAccumulator:
    """Combines the :class:`ChunkResult` s of one tensor, in order."""

    info: TensorInfo
    exponent_hist: NDArray[np.int64] | None = None
    exp_zero: int = 0
    exp_one: int = 0
    top_exponent: int = -1
    block_hists: list[NDArray[np.int64]] = field(default_factory=list)
    confined: list[NDArray[np.int64]] = field(default_factory=list)
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    finite: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf
    nan: int = 0
    inf: int = 0
    zero: int = 0
    samples: list[NDArray[Any]] = field(default_factory=list)
    constant: bool = True
    first_unit: int | None = None
    hits: list[SignatureHit] = field(default_factory=list)
    chunks: int = 0

    def add(self, chunk: ChunkResult) -> None:
        """Fold in the next chunk."""
        self.chunks += 1
        self.hits.extend(chunk.hits)
        if chunk.exponent_hist is None:
            self.constant = False
            return
        if self.exponent_hist is None:
            self.exponent_hist = chunk.exponent_hist.copy()
        else:
            self.exponent_hist += chunk.exponent_hist
        self.exp_zero += chunk.exp_zero
        self.exp_one += chunk.exp_one
        self.top_exponent = max(self.top_exponent, chunk.top_exponent)
        if chunk.block_hists is not None:
            self.block_hists.append(chunk.block_hists)
        if chunk.confined is not None:
            self.confined.append(chunk.confined)
        for i in range(4):
            self.sums[i] += chunk.moments[i]
        self.finite += chunk.moments[4]
        self.minimum = min(self.minimum, chunk.minimum)
        self.maximum = max(self.maximum, chunk.maximum)
        self.nan += chunk.nan
        self.inf += chunk.inf
        self.zero += chunk.zero
        if chunk.sample is not None:
            self.samples.append(chunk.sample)
        if self.first_unit is None:
            self.first_unit = chunk.first_unit
        self.constant = self.constant and chunk.constant and chunk.first_unit == self.first_unit

    @property
    def is_float(self) -> bool:
        """True when the tensor was analysed as floats."""
        return self.exponent_hist is not None

    @property
    def sample(self) -> NDArray[Any]:
        """The strided sample of the whole tensor."""
        if not self.samples:
            return np.empty(0, dtype=np.float32)
        return np.concatenate(self.samples)

    def blocks(self) -> NDArray[np.int64]:
        """All per-block low-byte histograms, in order."""
        if not self.block_hists:
            return np.zeros((0, 256), dtype=np.int64)
        return np.concatenate(self.block_hists)

    def confined_counts(self) -> NDArray[np.int64]:
        """All per-block confined counts (fp32 tensors; empty otherwise), in order."""
        if not self.confined:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(self.confined)

    def stats(self) -> TensorStats:
        """The :class:`TensorStats` of the tensor."""
        info = self.info
        base = TensorStats(info.name, info.source, info.dtype, info.shape, info.numel)
        if not self.is_float:
            return base
        spec = float_spec(info.dtype)
        assert spec is not None and self.exponent_hist is not None
        n = self.finite
        mean = std = kurt = None
        if n:
            s1, s2, s3, s4 = (s / n for s in self.sums)
            mean = s1
            var = max(s2 - s1 * s1, 0.0)
            std = math.sqrt(var)
            if var > 0:
                m4 = s4 - 4 * s1 * s3 + 6 * s1 * s1 * s2 - 3 * s1**4
                kurt = m4 / (var * var) - 3.0
        sample = self.sample
        sample = sample[np.isfinite(sample)]
        quantiles = (
            {
                str(q): float(v)
                for q, v in zip(QUANTILES, np.quantile(sample, QUANTILES), strict=True)
            }
            if sample.size
            else {}
        )
        low = self.blocks().sum(axis=0).astype(np.float64)
        entropy = None
        if low.sum():
            p = low[low > 0] / low.sum()
            entropy = float(-(p * np.log2(p)).sum())
        subnormal = self.exp_zero - self.zero
        return dataclasses.replace(
            base,
            mean=mean,
            std=std,
            kurtosis=kurt,
            min=self.minimum if n else None,
            max=self.maximum if n else None,
            quantiles=quantiles,
            nan=self.nan,
            inf=self.inf,
            subnormal=subnormal,
            zero=self.zero,
            lowbit_entropy=entropy,
        )


def _chunk_task(task: tuple[int, TensorInfo, int, int, bool]) -> tuple[int, ChunkResult]:
    index, info, start, count, signatures = task
    return index, analyze_chunk(info, start, count, signatures=signatures)


def analyze_tensors(
    tensors: Sequence[TensorInfo], *, signatures: bool = True, workers: int | None = None
) -> Iterator[TensorAccumulator]:
    """Analyse ``tensors`` chunk by chunk (on all cores when large); yield each, in order."""
    tasks = (
        (index, info, start, count, signatures)
        for index, info in enumerate(tensors)
        for start, count in iter_chunks(info)
    )
    totals = [sum(1 for _ in iter_chunks(info)) for info in tensors]
    current: TensorAccumulator | None = None
    with worker_pool(sum(info.nbytes for info in tensors), workers) as pool:
        for index, chunk in parallel_ordered(_chunk_task, tasks, pool):
            if current is None:
                current = TensorAccumulator(tensors[index])
            current.add(chunk)
            if current.chunks == totals[index]:
                yield current
                current = None


def tensor_stats(tensors: Sequence[TensorInfo], *, workers: int | None = None) -> list[TensorStats]:
    """Statistics of every tensor in ``tensors`` (no payload search)."""
    return [acc.stats() for acc in analyze_tensors(tensors, signatures=False, workers=workers)]
