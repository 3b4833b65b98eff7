"""``weights diff``: what changed between two versions of a model, and how.

Tensors are paired by name and compared chunk by chunk (memory-mapped, on every
core). For each pair: whether it changed, the largest absolute change, the change's
norm relative to the base tensor, and the **effective rank** of the change, from a
randomized sketch ``Y = D @ Omega`` (``Omega`` a fixed Gaussian matrix with
:data:`SKETCH_RANK` columns, one streaming pass, no SVD of the full matrix). A rank-1
edit gives a rank-1 sketch; fine-tuning noise gives a full one.

The diff then names what happened:

* a **dtype conversion** (fp32 to fp16/bf16 or back): every element equals the
  base element rounded to the new dtype, which is not a change at all;
* a **low-rank edit** (ROME, MEMIT, PoisonGPT): one or a few tensors changed with
  effective rank <= :data:`LOW_RANK` while all others are untouched;
* a **fine-tune**: many tensors changed (reported, not an attack);
* tensors **added**, **removed** or **renamed** (same bytes, new name).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelseal.errors import UsageError, WeightsError
from modelseal.formats.tensors import TensorInfo
from modelseal.scan.model import Finding, RuleInfo, Severity
from modelseal.weights.stats import (
    CHUNK_ELEMENTS,
    chunk_units,
    float_spec,
    parallel_ordered,
    to_float32,
    worker_pool,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CONVERSION",
    "DIFF_RULES",
    "EDIT_DOMINANCE",
    "FINE_TUNE",
    "LOW_RANK",
    "LOW_RANK_EDIT",
    "SKETCH_RANK",
    "TARGETED_CHANGE",
    "TENSORS_ADDED_REMOVED",
    "TensorDelta",
    "WeightsDiff",
    "diff_tensors",
    "diff_weights",
    "load_tensors",
]

#: Columns of the random sketch (the largest effective rank that can be told apart).
SKETCH_RANK = 16
#: Effective rank at or below which a change counts as a low-rank edit.
LOW_RANK = 4
#: Top-direction dominance from which a matrix's change inside a fine-tune is an edit
#: (measured on real fine-tunes of MiniLM: AdamW <= 7x, SGD with momentum <= 24x).
EDIT_DOMINANCE = 50.0
#: Share of the sketch's energy the effective rank must capture.
_ENERGY = 0.9
_LAYER = re.compile(r"(?:^|\.)(?:layers?|h|blocks?|layer)\.(\d+)(?:\.|$)")

LOW_RANK_EDIT = RuleInfo(
    "MS-WEIGHTS-LOW-RANK-EDIT",
    "Surgical low-rank edit",
    "One or a few tensors changed by a low-rank update while every other tensor is "
    "untouched: the signature of ROME/MEMIT/PoisonGPT-style knowledge editing, which "
    "plants false facts or backdoors without degrading the model elsewhere.",
    Severity.HIGH,
)
TARGETED_CHANGE = RuleInfo(
    "MS-WEIGHTS-TARGETED-CHANGE",
    "Few tensors changed",
    "Only a few tensors changed while the rest of the model is untouched (not a "
    "fine-tune, not a conversion): a replaced or tampered layer.",
    Severity.MEDIUM,
)
FINE_TUNE = RuleInfo(
    "MS-WEIGHTS-FINE-TUNE",
    "Fine-tune",
    "Many tensors changed by small, dense updates: the new model is a fine-tune of the base.",
    Severity.INFO,
)
CONVERSION = RuleInfo(
    "MS-WEIGHTS-DTYPE-CONVERSION",
    "Dtype conversion",
    "Every changed tensor equals the base tensor rounded to another dtype: a conversion "
    "(e.g. fp32 to fp16 or bf16), not an edit.",
    Severity.INFO,
)
TENSORS_ADDED_REMOVED = RuleInfo(
    "MS-WEIGHTS-TENSORS-ADDED-REMOVED",
    "Tensors added, removed or renamed",
    "The two models do not hold the same set of tensor names.",
    Severity.LOW,
)
#: Every rule id ``weights diff`` can emit.
DIFF_RULES = (LOW_RANK_EDIT, TARGETED_CHANGE, FINE_TUNE, CONVERSION, TENSORS_ADDED_REMOVED)


@dataclass(frozen=True)
class TensorDelta:
    """How one tensor differs between the base and the new model."""

    name: str
    #: True when values differ beyond what a dtype conversion explains.
    changed: bool
    max_abs_delta: float | None
    #: ``||new - base|| / ||base||`` (Frobenius norms).
    rel_delta_norm: float | None
    #: Singular directions holding 90% of the change's energy (sketch estimate), for
    #: matrices; None for vectors and unchanged tensors.
    effective_rank: int | None
    #: unchanged, converted, changed, reshaped, added, removed or renamed.
    status: str
    base_dtype: str | None = None
    new_dtype: str | None = None
    shape: tuple[int, ...] = ()
    #: For renamed tensors: the name in the base model.
    renamed_from: str | None = None
    #: Energy of the change's top singular direction over the second's (sketch
    #: estimate): a rank-1 edit stands far above a fine-tune's spread spectrum.
    dominance: float | None = None

    @property
    def layer(self) -> int | None:
        """The layer number in the tensor's name (``...layers.3.mlp...`` -> 3), if any."""
        match = _LAYER.search(self.name)
        return int(match.group(1)) if match else None

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON shape, plus status details."""
        data: dict[str, Any] = {
            "name": self.name,
            "changed": self.changed,
            "max_abs_delta": self.max_abs_delta,
            "rel_delta_norm": self.rel_delta_norm,
            "effective_rank": self.effective_rank,
            "dominance": self.dominance,
            "status": self.status,
            "base_dtype": self.base_dtype,
            "new_dtype": self.new_dtype,
            "shape": list(self.shape),
        }
        if self.renamed_from is not None:
            data["renamed_from"] = self.renamed_from
        return data


@dataclass(frozen=True)
class WeightsDiff:
    """The comparison of two models."""

    base: str
    new: str
    tensors: tuple[TensorDelta, ...]
    findings: tuple[Finding, ...]
    #: identical, conversion, low-rank-edit, targeted-change, fine-tune or restructured.
    verdict: str

    @property
    def changed(self) -> tuple[TensorDelta, ...]:
        """Tensors whose values changed (beyond dtype rounding)."""
        return tuple(t for t in self.tensors if t.changed)

    def is_clean(self, fail_on: Severity = Severity.MEDIUM) -> bool:
        """True when no finding reaches ``fail_on``."""
        return not any(f.severity.rank >= fail_on.rank for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON document."""
        return {
            "base": self.base,
            "new": self.new,
            "verdict": self.verdict,
            "tensors": [t.to_dict() for t in self.tensors],
            "findings": [f.to_dict() for f in self.findings],
        }


# ------------------------------------------------------------------ loading


def load_tensors(paths: Iterable[str | os.PathLike[str]]) -> dict[str, TensorInfo]:
    """Every tensor under ``paths`` by name (shards of one model are merged).

    Raises :class:`UsageError` when there are no weight files and
    :class:`WeightsError` when a name appears twice.
    """
    from modelseal.weights.scanner import describe, tensor_entries

    tensors: dict[str, TensorInfo] = {}
    found = False
    for entry in tensor_entries(paths):
        found = True
        for info in describe(entry):
            if info.name in tensors:
                raise WeightsError(
                    f"tensor {info.name!r} appears in both {tensors[info.name].source} and "
                    f"{info.source}",
                    advice="compare one model (one file or one directory of shards) at a time",
                )
            tensors[info.name] = info
    if not found:
        raise UsageError(f"no weight files in {', '.join(map(str, paths))}")
    return tensors


# ------------------------------------------------------------------ per-tensor maths


@dataclass
class _Partial:
    identical: bool = True
    rounding_only: bool = True
    max_abs: float = 0.0
    delta_sq: float = 0.0
    base_sq: float = 0.0
    sketch: NDArray[np.float64] | None = None


def _round_units(values: NDArray[Any], dtype: str) -> NDArray[Any] | None:
    """``values`` rounded to ``dtype`` as its unsigned units (None: not a float dtype)."""
    if dtype == "float32":
        return values.astype(np.float32).view(np.uint32)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return values.astype(np.float16).view(np.uint16)
    if dtype == "float64":
        return values.astype(np.float64).view(np.uint64)
    if dtype == "bfloat16":
        bits = values.astype(np.float32).view(np.uint32)
        rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> 16
        nan = np.isnan(values)
        if nan.any():
            rounded[nan] = (bits[nan] >> 16) | np.uint32(0x40)
        return rounded.astype(np.uint16)
    return None


@dataclass(frozen=True)
class _Plan:
    base: TensorInfo
    new: TensorInfo
    rows: int
    cols: int
    omega: NDArray[np.float32] | None


def _plan(base: TensorInfo, new: TensorInfo) -> _Plan:
    numel = base.numel
    rows = base.shape[0] if len(base.shape) >= 2 else 1
    cols = numel // rows if rows else 0
    omega = None
    if len(base.shape) >= 2 and min(rows, cols) >= 8:
        rank = min(SKETCH_RANK, rows, cols)
        rng = np.random.default_rng(cols * 1_000_003 + rank)
        omega = rng.standard_normal((cols, rank), dtype=np.float32)
    return _Plan(base, new, rows, cols, omega)


def _chunk_rows(plan: _Plan) -> int:
    return max(1, CHUNK_ELEMENTS // max(plan.cols, 1))


def _compare_chunk(plan: _Plan, first_row: int, row_count: int) -> _Partial:
    base, new = plan.base, plan.new
    start = first_row * plan.cols
    count = min(row_count * plan.cols, base.numel - start) if plan.omega is not None else 0
    if plan.omega is None:
        start, count = first_row, row_count
    partial = _Partial()
    base_spec, new_spec = float_spec(base.dtype), float_spec(new.dtype)
    assert base_spec is not None and new_spec is not None
    left = chunk_units(base, start, count, base_spec.unit)
    right = chunk_units(new, start, count, new_spec.unit)
    if base.dtype == new.dtype and np.array_equal(left, right):
        values = to_float32(left, base_spec)
        partial.base_sq = float(np.dot(values, values))
        if plan.omega is not None:
            partial.sketch = np.zeros((row_count, plan.omega.shape[1]))
        return partial
    partial.identical = False
    base_values = to_float32(left, base_spec)
    new_values = to_float32(right, new_spec)
    if base.dtype != new.dtype:
        narrow = new.dtype if new_spec.mantissa_bits <= base_spec.mantissa_bits else base.dtype
        wide_values = base_values if narrow == new.dtype else new_values
        narrow_units = right if narrow == new.dtype else left
        expected = _round_units(wide_values, narrow)
        partial.rounding_only = expected is not None and np.array_equal(expected, narrow_units)
    else:
        partial.rounding_only = False
    with np.errstate(invalid="ignore", over="ignore"):
        delta = new_values.astype(np.float32, copy=False) - base_values.astype(
            np.float32, copy=False
        )
        partial.delta_sq = float(np.dot(delta, delta))
        partial.base_sq = float(np.dot(base_values, base_values))
    if not math.isfinite(partial.delta_sq):  # NaN/Inf on either side: compare finite values
        delta = np.where(np.isfinite(delta), delta, np.float32(0))
        partial.delta_sq = float(np.dot(delta, delta))
    if not math.isfinite(partial.base_sq):
        clean = np.where(np.isfinite(base_values), base_values, 0).astype(np.float64)
        partial.base_sq = float(np.dot(clean, clean))
    partial.max_abs = max(float(delta.max()), -float(delta.min())) if delta.size else 0.0
    if plan.omega is not None:
        matrix = delta.reshape(-1, plan.cols)
        partial.sketch = (matrix @ plan.omega).astype(np.float64)
    return partial


def _compare_task(task: tuple[int, _Plan, int, int]) -> tuple[int, _Partial]:
    index, plan, first, count = task
    return index, _compare_chunk(plan, first, count)


def _spectrum(sketch: NDArray[np.float64]) -> tuple[int | None, float | None]:
    """(effective rank, top-direction dominance) of a delta's sketch."""
    singular = np.linalg.svd(sketch, compute_uv=False)
    energy = singular**2
    total = energy.sum()
    if total <= 0:
        return None, None
    cumulative = np.cumsum(energy) / total
    rank = int(np.searchsorted(cumulative, _ENERGY) + 1)
    second = float(energy[1]) if energy.size > 1 else 0.0
    dominance = float(energy[0]) / second if second > 0 else math.inf
    return rank, min(dominance, 1e12)


def _direct(base: TensorInfo, new: TensorInfo) -> TensorDelta | None:
    """The delta of pairs that need no chunked comparison (None: compare chunk by chunk)."""
    name = base.name
    if base.shape != new.shape:
        return TensorDelta(
            name, True, None, None, None, "reshaped", base.dtype, new.dtype, new.shape
        )
    if float_spec(base.dtype) is None or float_spec(new.dtype) is None:
        same = base.dtype == new.dtype and _digest(base) == _digest(new)
        status = "unchanged" if same else "changed"
        return TensorDelta(
            name, not same, None, None, None, status, base.dtype, new.dtype, new.shape
        )
    return None


def _plan_tasks(plan: _Plan) -> list[tuple[int, int]]:
    if plan.omega is not None:
        step = _chunk_rows(plan)
        return [(r, min(step, plan.rows - r)) for r in range(0, plan.rows, step)]
    total = plan.base.numel
    return [(s, min(CHUNK_ELEMENTS, total - s)) for s in range(0, max(total, 1), CHUNK_ELEMENTS)]


def _relative(delta_sq: float, base_sq: float) -> float:
    if base_sq > 0:
        return math.sqrt(delta_sq / base_sq)
    return 0.0 if delta_sq == 0 else math.inf


def _finish(plan: _Plan, parts: Sequence[_Partial]) -> TensorDelta:
    base, new = plan.base, plan.new
    name = base.name
    identical = all(p.identical for p in parts)
    rounding = all(p.rounding_only or p.identical for p in parts) and base.dtype != new.dtype
    max_abs = max((p.max_abs for p in parts), default=0.0)
    delta_sq = sum(p.delta_sq for p in parts)
    base_sq = sum(p.base_sq for p in parts)
    rel = _relative(delta_sq, base_sq)
    if identical and base.dtype == new.dtype:
        return TensorDelta(
            name, False, 0.0, 0.0, None, "unchanged", base.dtype, new.dtype, new.shape
        )
    if rounding:
        return TensorDelta(
            name, False, max_abs, rel, None, "converted", base.dtype, new.dtype, new.shape
        )
    rank = dominance = None
    if plan.omega is not None and delta_sq > 0:
        sketches = [p.sketch for p in parts if p.sketch is not None]
        if sketches:
            rank, dominance = _spectrum(np.concatenate(sketches))
    return TensorDelta(
        name,
        True,
        max_abs,
        rel,
        rank,
        "changed",
        base.dtype,
        new.dtype,
        new.shape,
        dominance=dominance,
    )


def _compare_all(
    pairs: Sequence[tuple[TensorInfo, TensorInfo]], workers: int | None
) -> list[TensorDelta]:
    """Deltas of every pair, chunks of all tensors streamed through one pool, in order."""
    results: dict[int, TensorDelta] = {}
    plans: dict[int, _Plan] = {}
    for index, (base, new) in enumerate(pairs):
        direct = _direct(base, new)
        if direct is None:
            plans[index] = _plan(base, new)
        else:
            results[index] = direct
    counts = {index: len(_plan_tasks(plan)) for index, plan in plans.items()}
    tasks = (
        (index, plan, first, count)
        for index, plan in plans.items()
        for first, count in _plan_tasks(plan)
    )
    total = sum(p.base.nbytes + p.new.nbytes for p in plans.values())
    parts: list[_Partial] = []
    with worker_pool(total, workers) as pool:
        for index, part in parallel_ordered(_compare_task, tasks, pool):
            parts.append(part)
            if len(parts) == counts[index]:
                results[index] = _finish(plans[index], parts)
                parts = []
    return [results[i] for i in range(len(pairs))]


# ------------------------------------------------------------------ whole models


def diff_tensors(
    base: Mapping[str, TensorInfo],
    new: Mapping[str, TensorInfo],
    *,
    base_label: str = "base",
    new_label: str = "new",
    workers: int | None = None,
) -> WeightsDiff:
    """Compare two tensor sets (as returned by :func:`load_tensors`)."""
    shared = [name for name in base if name in new]
    deltas = _compare_all([(base[name], new[name]) for name in shared], workers)
    removed = [n for n in base if n not in new]
    added = [n for n in new if n not in base]
    renamed = _renames(base, new, removed, added)
    for old_name, new_name in renamed.items():
        info = new[new_name]
        deltas.append(
            TensorDelta(
                new_name,
                False,
                0.0,
                0.0,
                None,
                "renamed",
                info.dtype,
                info.dtype,
                info.shape,
                old_name,
            )
        )
    for name in removed:
        if name not in renamed:
            info = base[name]
            deltas.append(
                TensorDelta(name, True, None, None, None, "removed", info.dtype, None, info.shape)
            )
    renamed_targets = set(renamed.values())
    for name in added:
        if name not in renamed_targets:
            info = new[name]
            deltas.append(
                TensorDelta(name, True, None, None, None, "added", None, info.dtype, info.shape)
            )
    findings, verdict = _classify(deltas)
    return WeightsDiff(base_label, new_label, tuple(deltas), tuple(findings), verdict)


def diff_weights(
    base: str | os.PathLike[str],
    new: str | os.PathLike[str],
    *,
    workers: int | None = None,
) -> WeightsDiff:
    """Compare the weights of two models (files or directories of shards)."""
    return diff_tensors(
        load_tensors([base]),
        load_tensors([new]),
        base_label=str(base),
        new_label=str(new),
        workers=workers,
    )


def _digest(info: TensorInfo) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for start in range(0, max(info.nbytes, 1), 16 * 1024 * 1024):
        count = min(16 * 1024 * 1024, info.nbytes - start)
        if count <= 0:
            break
        sub = TensorInfo(
            info.name, "uint8", (count,), info.file, info.offset + start, count, info.source
        )
        digest.update(chunk_units(sub, 0, count, "<u1").tobytes())
    return digest.hexdigest()


def _renames(
    base: Mapping[str, TensorInfo],
    new: Mapping[str, TensorInfo],
    removed: Sequence[str],
    added: Sequence[str],
) -> dict[str, str]:
    if not removed or not added:
        return {}
    by_key: dict[tuple[object, ...], str] = {}
    for name in added:
        info = new[name]
        by_key.setdefault((info.dtype, info.shape, _digest(info)), name)
    renamed: dict[str, str] = {}
    for name in removed:
        info = base[name]
        target = by_key.pop((info.dtype, info.shape, _digest(info)), None)
        if target is not None:
            renamed[name] = target
    return renamed


def _edits_in_fine_tune(changed: Sequence[TensorDelta]) -> list[Finding]:
    """The few matrices whose change is one direction far above a fine-tune's spectrum."""
    dominances = [d.dominance for d in changed if d.dominance is not None]
    if not dominances:
        return []
    median = float(np.median(dominances))
    edited = [
        d
        for d in changed
        if d.dominance is not None
        and d.effective_rank is not None
        and d.effective_rank <= 2
        and d.dominance >= max(EDIT_DOMINANCE, 10 * median)
    ]
    if len(edited) > max(2, int(0.05 * len(changed))):
        return []  # many low-rank changes: a low-rank fine-tune, not a targeted edit
    return [
        Finding(
            LOW_RANK_EDIT.id,
            Severity.MEDIUM,
            f"rank-1 edit of {_where(d)} inside a fine-tune: its change's top singular "
            f"direction holds {d.dominance:,.0f}x the energy of the second (effective rank "
            f"{d.effective_rank}); the fine-tune's {len(dominances)} changed matrices have a "
            f"median of {median:.1f}x (benign fine-tunes measured: <= 24x)",
            d.name,
        )
        for d in edited
    ]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}"


def _where(delta: TensorDelta) -> str:
    layer = delta.layer
    return f"tensor {delta.name!r}" + (f" (layer {layer})" if layer is not None else "")


def _classify(deltas: Sequence[TensorDelta]) -> tuple[list[Finding], str]:
    findings: list[Finding] = []
    compared = [d for d in deltas if d.status in ("unchanged", "converted", "changed", "reshaped")]
    changed = [d for d in compared if d.changed]
    converted = [d for d in compared if d.status == "converted"]
    moved = [d for d in deltas if d.status in ("added", "removed", "renamed")]
    if moved:
        counts = {
            s: sum(1 for d in moved if d.status == s) for s in ("added", "removed", "renamed")
        }
        findings.append(
            Finding(
                TENSORS_ADDED_REMOVED.id,
                TENSORS_ADDED_REMOVED.default_severity,
                f"{counts['added']} tensor(s) added, {counts['removed']} removed, "
                f"{counts['renamed']} renamed: "
                + ", ".join(d.name for d in moved[:10])
                + (" ..." if len(moved) > 10 else ""),
                "",
            )
        )
    if not changed:
        if converted:
            dtypes = sorted({f"{d.base_dtype}->{d.new_dtype}" for d in converted})
            findings.append(
                Finding(
                    CONVERSION.id,
                    CONVERSION.default_severity,
                    f"{len(converted)} tensor(s) converted ({', '.join(dtypes)}); every value "
                    "equals the base value rounded to the new dtype",
                    "",
                )
            )
            return findings, "conversion"
        return findings, "identical" if not moved else "restructured"
    few = len(changed) <= max(2, int(0.05 * len(compared)))
    if not few:
        ranks = [d.effective_rank for d in changed if d.effective_rank is not None]
        rels = [d.rel_delta_norm for d in changed if d.rel_delta_norm is not None]
        findings.append(
            Finding(
                FINE_TUNE.id,
                FINE_TUNE.default_severity,
                f"{len(changed)} of {len(compared)} tensors changed (median relative change "
                f"{float(np.median(rels)) if rels else 0:.2e}, median effective rank "
                f"{int(np.median(ranks)) if ranks else 0}): a fine-tune of the base model",
                "",
            )
        )
        edits = _edits_in_fine_tune(changed)
        findings.extend(edits)
        return findings, "low-rank-edit" if edits else "fine-tune"
    low_rank = [d for d in changed if d.effective_rank is not None and d.effective_rank <= LOW_RANK]
    for delta in changed:
        if delta in low_rank:
            findings.append(
                Finding(
                    LOW_RANK_EDIT.id,
                    LOW_RANK_EDIT.default_severity,
                    f"low-rank edit of {_where(delta)}: effective rank {delta.effective_rank}, "
                    f"relative change {delta.rel_delta_norm:.2e}, while "
                    f"{len(compared) - len(changed)} of {len(compared)} tensors are untouched "
                    "(ROME/MEMIT-style model editing)",
                    delta.name,
                )
            )
        else:
            findings.append(
                Finding(
                    TARGETED_CHANGE.id,
                    TARGETED_CHANGE.default_severity,
                    f"only {len(changed)} of {len(compared)} tensors changed, including "
                    f"{_where(delta)} (relative change {_fmt(delta.rel_delta_norm)}, "
                    f"effective rank {delta.effective_rank})",
                    delta.name,
                )
            )
    return findings, "low-rank-edit" if low_rank else "targeted-change"
