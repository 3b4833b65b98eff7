"""Injected values: NaN/Inf, subnormal floods, far outliers, constant and duplicated tensors.

Every test compares a tensor with what its own value distribution predicts, so it
holds for any dtype and any model size:

* **non-finite values** never come out of a successful training run (small graph
  constants such as a running max's ``-inf`` start value are ordinary);
* **subnormals**: the subnormal range is exactly as wide as the first normal binade
  next to it, so a smooth distribution puts about as many values in one as in the
  other; far more subnormals is a flood (a classic CPU slow-down attack);
* **outliers**: an element whose exponent is 16 or more above the tensor's 99.9th
  percentile (65,536 times larger) is an exponent bit flip, not a trained weight;
* **constant** tensors of two or more dimensions with a non-zero value (low: buffers
  are initialised so too), and
  **duplicated** tensors (identical bytes under different names) are not what
  training produces (tied embeddings are the known exception and are skipped).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np

from modelseal.scan.model import Finding, Severity
from modelseal.weights.rules import CONSTANT, DUPLICATE, NONFINITE, OUTLIER, SUBNORMAL_FLOOD
from modelseal.weights.stats import (
    FloatSpec,
    TensorAccumulator,
    chunk_units,
    float_spec,
    iter_chunks,
    to_float32,
)

__all__ = [
    "CONSTANT",
    "DUPLICATE",
    "NONFINITE",
    "OUTLIER",
    "OUTLIER_EXPONENT_GAP",
    "SMALL_CONSTANT",
    "SUBNORMAL_FLOOD",
    "duplicate_findings",
    "injection_findings",
]


#: Tensors of at most this many elements are graph constants rather than parameters.
SMALL_CONSTANT = 64
#: Exponent distance above the 99.9th percentile that makes an element an outlier.
OUTLIER_EXPONENT_GAP = 16
_MIN_OUTLIER_ELEMENTS = 64
_TIED = re.compile(r"(embed|lm_head|wte|tok_embeddings|shared|output\.weight)", re.IGNORECASE)


def injection_findings(acc: TensorAccumulator) -> Iterator[Finding]:
    """Findings about injected values in one analysed tensor."""
    if not acc.is_float or acc.exponent_hist is None:
        return
    info = acc.info
    spec = float_spec(info.dtype)
    assert spec is not None
    if acc.nan or acc.inf:
        severity, note = Severity.HIGH, ""
        if info.numel <= SMALL_CONSTANT:
            # Exported graphs keep -inf/inf/NaN constants (a running max's start value,
            # a mask fill, nan_to_num's operand): ordinary, unlike non-finite parameters.
            severity, note = Severity.LOW, " (a small graph constant, not a parameter)"
        elif not acc.nan and "mask" in info.name.lower():
            severity, note = Severity.LOW, " (an attention mask)"
        yield Finding(
            NONFINITE.id,
            severity,
            f"tensor {info.name!r} holds {acc.nan:,} NaN and {acc.inf:,} infinite values "
            f"out of {info.numel:,}{note}",
            f"{info.name}[{_first_index(acc, _nonfinite_mask)}]",
        )
    subnormal = acc.exp_zero - acc.zero
    neighbour = acc.exp_one
    if subnormal >= 64 and subnormal > 8 * neighbour + 64 and subnormal * 1000 >= info.numel:
        yield Finding(
            SUBNORMAL_FLOOD.id,
            SUBNORMAL_FLOOD.default_severity,
            f"tensor {info.name!r} holds {subnormal:,} subnormal values "
            f"({subnormal / info.numel:.1%} of its elements) where its distribution "
            f"predicts about {neighbour:,}",
            f"{info.name}[{_first_index(acc, _subnormal_mask)}]",
        )
    yield from _outliers(acc)
    magnitude_bits = ((acc.first_unit or 0) << 1) & ((1 << (8 * spec.itemsize)) - 1)
    if acc.constant and len(info.shape) >= 2 and info.numel >= 256 and magnitude_bits:
        value = acc.minimum
        yield Finding(
            CONSTANT.id,
            CONSTANT.default_severity,
            f"every one of the {info.numel:,} elements of matrix {info.name!r} equals {value:g}",
            info.name,
        )


def _outliers(acc: TensorAccumulator) -> Iterator[Finding]:
    info = acc.info
    spec = float_spec(info.dtype)
    assert spec is not None and acc.exponent_hist is not None
    normal = acc.exponent_hist[1 : spec.exponent_max].astype(np.int64)
    total = int(normal.sum())
    if total < _MIN_OUTLIER_ELEMENTS:
        return
    cumulative = np.cumsum(normal)
    q999 = int(np.searchsorted(cumulative, 0.999 * total)) + 1
    threshold = max(q999 + OUTLIER_EXPONENT_GAP, _bias(spec.exponent_max))
    if threshold >= spec.exponent_max:
        return
    if acc.top_exponent < threshold:
        return
    count, first = _count_and_first(acc, threshold)
    peak = max(abs(acc.minimum), abs(acc.maximum))
    typical = abs(acc.sample[np.isfinite(acc.sample)]).max(initial=0.0) if acc.samples else 0.0
    yield Finding(
        OUTLIER.id,
        OUTLIER.default_severity,
        f"tensor {info.name!r} has {count:,} element(s) at least 65,536x larger than its "
        f"99.9th percentile (largest magnitude {peak:.3g}; a typical sampled maximum is "
        f"{typical:.3g}): an exponent bit flip or injected value",
        f"{info.name}[{first}]",
    )


def _bias(exponent_max: int) -> int:
    return exponent_max // 2  # the exponent of 1.0


def _exponent_at_least(units: np.ndarray, spec: FloatSpec, threshold: int) -> np.ndarray:
    exponents = (units >> spec.exponent_shift) & spec.exponent_max
    mask: np.ndarray = (exponents >= threshold) & (exponents < spec.exponent_max)
    return mask


def _nonfinite_mask(units: np.ndarray, spec: FloatSpec) -> np.ndarray:
    exponents = (units >> spec.exponent_shift) & spec.exponent_max
    mask: np.ndarray = exponents == spec.exponent_max
    return mask


def _subnormal_mask(units: np.ndarray, spec: FloatSpec) -> np.ndarray:
    exponents = (units >> spec.exponent_shift) & spec.exponent_max
    mask: np.ndarray = (exponents == 0) & ((units << 1) != 0)
    return mask


def _count_and_first(acc: TensorAccumulator, threshold: int) -> tuple[int, int]:
    """Exact outlier count and first index (a second pass, run only when needed)."""
    spec = float_spec(acc.info.dtype)
    assert spec is not None
    count, first = 0, -1
    for start, size in iter_chunks(acc.info):
        units = chunk_units(acc.info, start, size, spec.unit)
        found = np.flatnonzero(_exponent_at_least(units, spec, threshold))
        if found.size and first < 0:
            first = start + int(found[0])
        count += int(found.size)
    return count, first


def _first_index(acc: TensorAccumulator, predicate) -> int:  # type: ignore[no-untyped-def]
    """The first element satisfying ``predicate`` (a second pass, run only when needed)."""
    spec = float_spec(acc.info.dtype)
    assert spec is not None
    for start, count in iter_chunks(acc.info):
        units = chunk_units(acc.info, start, count, spec.unit)
        found = np.flatnonzero(predicate(units, spec))
        if found.size:
            return start + int(found[0])
    return -1


def duplicate_findings(accumulators: Sequence[TensorAccumulator]) -> Iterator[Finding]:
    """Tensors of one file that hold identical bytes under different names."""
    groups: dict[tuple[object, ...], list[TensorAccumulator]] = defaultdict(list)
    for acc in accumulators:
        info = acc.info
        if not acc.is_float or info.numel < 1024 or acc.constant:
            continue
        key = (info.dtype, info.numel, *acc.sums, acc.first_unit)
        groups[key].append(acc)
    for group in groups.values():
        if len(group) < 2:
            continue
        first = group[0]
        for other in group[1:]:
            names = (first.info.name, other.info.name)
            if any(_TIED.search(name) for name in names) or not _same_bytes(first, other):
                continue
            yield Finding(
                DUPLICATE.id,
                DUPLICATE.default_severity,
                f"tensors {names[0]!r} and {names[1]!r} hold identical values "
                f"({first.info.numel:,} elements)",
                names[1],
            )


def _same_bytes(a: TensorAccumulator, b: TensorAccumulator) -> bool:
    spec = float_spec(a.info.dtype)
    assert spec is not None
    for start, count in iter_chunks(a.info):
        left = chunk_units(a.info, start, count, spec.unit)
        right = chunk_units(b.info, start, count, spec.unit)
        if not np.array_equal(left, right):
            return False
    return True


def preview_values(acc: TensorAccumulator, element: int, count: int = 4) -> list[float]:
    """A few decoded values from ``element`` on (for messages)."""
    spec = float_spec(acc.info.dtype)
    assert spec is not None
    units = chunk_units(acc.info, element, min(count, acc.info.numel - element), spec.unit)
    return [float(v) for v in to_float32(units, spec)]
