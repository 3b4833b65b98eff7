"""Structured low-order bits: payloads without a header, told apart from formula tensors.

In trained weights the lowest mantissa bits are uniform noise, so a block whose low
byte histogram is far from uniform is a *candidate* (:func:`lowbit_anomalies`, one
histogram per block from the streaming pass). Many benign tensors are candidates
too, because their low bits are produced by their high bits:

* repeated values (Fourier/STFT bases and DCT matrices repeat each magnitude many
  times, constant fills, identity matrices);
* lattices with few distinct mantissa tails (``linspace`` with a step of 1/3);
* smooth transformations of lower-precision values (weight decay multiplying
  fp16-origin values by ``1 - lr * wd``: the new low bits are a function of the
  old high bits).

:func:`block_evidence` re-reads a candidate block and measures what a payload
would change: over *distinct* values the low bits must still be structured, carry
enough entropy to hold data, and be independent of the high bits (elements sorted
by their high bits: neighbours' low bits agree no more than independent draws do).
Printable text in the low bytes is the strongest evidence and is reported as text.

Random (encrypted or compressed) bytes are uniform like trained low bits and can only
be seen where the tensor's precision predicts something else: in values converted
from fp16/bf16, whose low bits are zero (:func:`precision_break`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from modelseal.weights.payloads import BLOCK_ELEMENTS

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "BLOCK_ELEMENTS",
    "DEPENDENCE_THRESHOLD",
    "MIN_ENTROPY",
    "MIN_PAYLOAD",
    "PRECISION_TVD",
    "TEXT_FRACTION",
    "TVD_THRESHOLD",
    "BlockEvidence",
    "LowBitAnomaly",
    "PrecisionBreak",
    "block_evidence",
    "block_tvd",
    "free_bits",
    "lowbit_anomalies",
    "precision_break",
    "precision_candidates",
    "tested_bits",
    "truncated_bits",
]

#: Smallest number of informative elements for a block to be tested.
_MIN_TESTED = 4096
#: Total variation distance from uniform above which low bits count as structured.
TVD_THRESHOLD = 0.4
#: Neighbour dependence at or above which the low bits are explained by the high bits.
DEPENDENCE_THRESHOLD = 0.3
#: Entropy (bits per element) of the tested low bits below which they hold too little
#: information to be a payload (a lattice of a few mantissa tails).
MIN_ENTROPY = 3.0
#: Fraction of printable ASCII low bytes from which a block is text (noise: 37%).
TEXT_FRACTION = 0.9
_PRINTABLE = np.zeros(256, dtype=bool)
_PRINTABLE[0x20:0x7F] = True
_PRINTABLE[[0x09, 0x0A, 0x0D]] = True


@dataclass(frozen=True)
class LowBitAnomaly:
    """A run of blocks whose low bits are structured where noise was expected."""

    first_block: int
    last_block: int
    #: Largest total variation distance from uniform seen in the run.
    tvd: float


def free_bits(dtype: str) -> int:
    """Low bits of the lowest byte that are noise in trained values of ``dtype``.

    Higher mantissa bits follow the shape of the value distribution (more so in
    narrow formats), so they are not tested.
    """
    return {"float32": 8, "float64": 8, "float16": 7, "bfloat16": 4}.get(dtype, 0)


def tested_bits(histogram: NDArray[np.int64], free: int) -> tuple[int, int] | None:
    """``(truncated, width)``: the low bits left out and the bits tested, or None.

    Low bits that are zero in almost every element (values converted from a
    narrower dtype) are left out; fewer than 3 bits left is not testable.
    """
    counts = histogram.astype(np.float64)
    counts[0] = 0.0
    total = counts.sum()
    if total < _MIN_TESTED:
        return None
    values = np.arange(256)
    truncated = 0
    while truncated < free and counts[((values >> truncated) & 1) == 1].sum() <= total * 1e-3:
        truncated += 1
    width = free - truncated
    return None if width < 3 else (truncated, width)


def block_tvd(histogram: NDArray[np.int64], free: int) -> float | None:
    """Distance from uniform of one block's low-byte histogram (None: not testable).

    Elements whose low byte is zero are left out (values of lower precision than the
    dtype, such as exact constants), and only the ``free`` lowest bits not truncated
    by a conversion are tested (see :func:`tested_bits`).
    """
    bits = tested_bits(histogram, free)
    if bits is None:
        return None
    truncated, width = bits
    counts = histogram.astype(np.float64)
    counts[0] = 0.0
    folded = np.bincount(
        (np.arange(256) >> truncated) & ((1 << width) - 1), weights=counts, minlength=1 << width
    )
    # Zero is left out (see above), and so is the most frequent value: a run of one
    # repeated weight (a constant fill) is an injection finding, not structured noise.
    keep = np.ones(1 << width, dtype=bool)
    keep[0] = False
    keep[int(np.argmax(np.where(keep, folded, -1.0)))] = False
    tested = folded[keep].sum()
    if tested < _MIN_TESTED:
        return None
    return float(0.5 * np.abs(folded[keep] / tested - 1.0 / keep.sum()).sum())


def lowbit_anomalies(block_histograms: NDArray[np.int64], dtype: str) -> list[LowBitAnomaly]:
    """Runs of blocks (rows of 256-bin low-byte histograms) with structured low bits."""
    free = free_bits(dtype)
    runs: list[LowBitAnomaly] = []
    if free == 0:
        return runs
    current: list[int] = []
    worst = 0.0
    for index, row in enumerate(block_histograms):
        tvd = block_tvd(row, free)
        if tvd is None or tvd < TVD_THRESHOLD:
            continue
        if current and current[-1] != index - 1:
            runs.append(LowBitAnomaly(current[0], current[-1], worst))
            current, worst = [], 0.0
        current.append(index)
        worst = max(worst, tvd)
    if current:
        runs.append(LowBitAnomaly(current[0], current[-1], worst))
    return runs


# ------------------------------------------------------------------ second look


@dataclass(frozen=True)
class BlockEvidence:
    """What a candidate block's low bits hold, measured on all of its elements."""

    #: Distinct element values whose tested low bits are not all zero.
    distinct: int
    #: Distance from uniform of the tested low bits over the distinct values.
    tvd: float
    #: Shannon entropy (bits) of the tested low bits over the distinct values.
    entropy: float
    #: How much more the low bits of elements adjacent in high-bit order agree than
    #: independent draws would (total variation distance of their difference).
    dependence: float
    #: Fraction of the block's non-zero lowest bytes that are printable ASCII.
    printable: float
    #: The same for the byte above (a multi-byte text payload fills both).
    printable_above: float

    @property
    def kind(self) -> Literal["text", "structured"] | None:
        """``text``, ``structured`` (data independent of the values), or None (benign)."""
        if self.entropy < MIN_ENTROPY or self.tvd < TVD_THRESHOLD:
            return None  # a lattice of few mantissa tails, or noise
        if min(self.printable, self.printable_above) >= TEXT_FRACTION and self.distinct >= 256:
            return "text"  # two text bytes per element: no formula writes ASCII
        if self.distinct < _MIN_TESTED or self.dependence >= DEPENDENCE_THRESHOLD:
            return None  # repeated values, or low bits computed from the high bits
        return "text" if self.printable >= TEXT_FRACTION else "structured"

    def describe(self) -> str:
        """The numbers, for a finding's message."""
        return (
            f"{self.printable:.0%} of the lowest bytes printable (trained weights: 37%), "
            f"distance {self.tvd:.2f} from uniform over {self.distinct:,} distinct values "
            f"(threshold {TVD_THRESHOLD}; trained weights < 0.05), {self.entropy:.1f} bits of "
            f"entropy (payloads >= {MIN_ENTROPY}), dependence on the high bits "
            f"{self.dependence:.2f} (formula tensors and rescaled values >= "
            f"{DEPENDENCE_THRESHOLD})"
        )


def block_evidence(units: NDArray[np.unsignedinteger], free: int) -> BlockEvidence | None:
    """Measure one candidate block (``units``: its elements as unsigned ints)."""
    flat = units.reshape(-1)
    itemsize = flat.dtype.itemsize
    low_bytes = flat.view(np.uint8).reshape(-1, itemsize)
    histogram = np.bincount(low_bytes[:, 0], minlength=256).astype(np.int64)
    bits = tested_bits(histogram, free)
    if bits is None:
        return None
    truncated, width = bits
    size = 1 << width
    field = ((low_bytes[:, 0] >> truncated) & (size - 1)).astype(np.int64)
    informative = field != 0
    values, fields = flat[informative], field[informative]
    distinct = np.unique(values)
    distinct_fields = (distinct.view(np.uint8).reshape(-1, itemsize)[:, 0] >> truncated) & (
        size - 1
    )
    p = np.bincount(distinct_fields, minlength=size).astype(np.float64)
    p /= max(p.sum(), 1.0)
    nonzero = p[p > 0]
    entropy = float(-(nonzero * np.log2(nonzero)).sum())
    tvd = float(0.5 * np.abs(p[1:] / max(p[1:].sum(), 1e-12) - 1.0 / (size - 1)).sum())
    order = np.argsort(values >> np.uint8(8), kind="stable")
    sorted_fields = fields[order]
    difference = (sorted_fields[1:] - sorted_fields[:-1]) % size
    observed = np.bincount(difference, minlength=size) / max(difference.size, 1)
    # Independent draws from the marginal m differ by d with probability sum_x m(x) m(x+d).
    marginal = np.bincount(fields, minlength=size) / max(fields.size, 1)
    spectrum = np.fft.fft(marginal)
    expected = np.real(np.fft.ifft(np.conj(spectrum) * spectrum))
    dependence = float(0.5 * np.abs(observed - expected).sum())
    return BlockEvidence(
        distinct=int(distinct.size),
        tvd=tvd,
        entropy=entropy,
        dependence=dependence,
        printable=_printable(low_bytes[:, 0]),
        printable_above=_printable(low_bytes[:, 1]) if itemsize >= 4 else 0.0,
    )


def _printable(column: NDArray[np.uint8]) -> float:
    present = column[column != 0]
    return float(_PRINTABLE[present].mean()) if present.size else 0.0


# ------------------------------------------------------------------ precision


@dataclass(frozen=True)
class PrecisionBreak:
    """Elements of a narrow-origin tensor whose low byte holds data outside its precision.

    Values converted from fp16/bf16 keep the low ``truncated`` bits zero. Training
    them further in fp32 changes every mantissa bit, so among elements with a
    non-zero low byte only ``2^-(truncated - 8)`` keep bits 8 and up zero; a payload
    written over the low byte alone keeps them all zero.
    """

    first: int
    count: int
    #: Low bits that are zero in the tensor's narrow-origin blocks.
    truncated: int
    #: Elements of the block with a non-zero lowest byte.
    informative: int
    #: Of those, elements whose bits 8 to ``truncated - 1`` are still zero.
    confined: int
    #: Distance from uniform of the confined elements' lowest bytes.
    tvd: float
    #: Tensor indices of the first and last confined element.
    span: tuple[int, int] = (0, 0)

    @property
    def expected(self) -> float:
        """Confined elements that values trained further in fp32 would give."""
        return self.informative / (1 << (self.truncated - 8))

    @property
    def is_payload(self) -> bool:
        """At least 1 KB of uniform bytes where the precision predicts (almost) none."""
        return (
            self.confined >= MIN_PAYLOAD
            and self.confined >= 8 * self.expected + 64
            and self.tvd < PRECISION_TVD + 0.5 * math.sqrt(2 * 255 / (math.pi * self.confined))
        )


#: Smallest precision break reported: 1 KB of random bytes, less the ~0.4% that are 0.
MIN_PAYLOAD = 1000
#: Largest distance from uniform of a precision break's bytes beyond sampling noise
#: (small benign updates skew them: +1 to +20 ulps, distance > 0.9).
PRECISION_TVD = 0.25
_NARROW = 0.999


def precision_candidates(
    block_histograms: NDArray[np.int64], confined: NDArray[np.int64]
) -> tuple[int | None, list[int]]:
    """(a block whose lowest bytes are all zero, or None; blocks to re-read) of a tensor.

    ``confined`` counts, per block, sampled elements with a non-zero lowest byte and
    bits 8-12 zero. Blocks are re-read when the tensor has narrow-origin blocks and
    they are not narrow, or when they hold far more confined elements than trained
    values give (1 in 32 of those with a non-zero lowest byte).
    """
    totals = block_histograms.sum(axis=1)
    zero = block_histograms[:, 0] if block_histograms.size else totals
    is_narrow = (totals > 0) & (zero >= _NARROW * totals)
    narrow = np.flatnonzero(is_narrow)
    informative = totals - zero
    many = (confined >= 64) & (confined >= informative / 16 + 32)
    wide = (~is_narrow & (totals > 0)) if narrow.size else many
    return (int(narrow[0]) if narrow.size else None), [int(b) for b in np.flatnonzero(wide)]


def truncated_bits(units: NDArray[np.uint32]) -> int:
    """Low bits that are zero in every non-zero element of ``units`` (fp32, up to 16)."""
    present = units[(units << np.uint32(1)) != 0]
    if present.size == 0:
        return 0
    combined = int(np.bitwise_or.reduce(present & np.uint32(0xFFFF)))
    return 16 if combined == 0 else (combined & -combined).bit_length() - 1


def precision_break(units: NDArray[np.uint32], first: int, truncated: int) -> PrecisionBreak | None:
    """Measure one wide block of an fp32 tensor whose other blocks have ``truncated`` zero bits."""
    if truncated <= 8:
        return None
    low = units & np.uint32(0xFF)
    informative = low != 0
    middle = (units >> np.uint32(8)) & np.uint32((1 << (truncated - 8)) - 1)
    confined = informative & (middle == 0)
    count = int(confined.sum())
    histogram = np.bincount(low[confined], minlength=256)[1:].astype(np.float64)
    tvd = float(0.5 * np.abs(histogram / histogram.sum() - 1.0 / 255).sum()) if count else 1.0
    where = np.flatnonzero(confined)
    span = (first + int(where[0]), first + int(where[-1])) if count else (first, first)
    return PrecisionBreak(
        first, int(units.shape[0]), truncated, int(informative.sum()), count, tvd, span
    )
