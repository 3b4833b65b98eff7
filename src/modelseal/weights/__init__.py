"""Weight forensics: hidden payloads, injected values, surgical edits and lineage.

The public API (every ``modelseal weights`` command is a thin shell over it):

* :func:`scan_weights` - payloads hidden in low-order bytes/bits and injected values
  (NaN/Inf, subnormal floods, outliers, constant or duplicated tensors), as a
  scan-shaped :class:`~modelseal.scan.model.ScanReport`;
* :func:`diff_weights` - per-tensor change, relative norm and effective rank, with the
  change named (conversion, low-rank edit, fine-tune...) in a :class:`WeightsDiff`;
* :func:`weight_stats` - per-tensor statistics (:class:`TensorStats`);
* :func:`fingerprint` / :func:`identify` - compact fingerprints and attribution.

Tensors are read only through :mod:`modelseal.formats` (memory maps, chunk by chunk).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from modelseal.weights.diff import TensorDelta, WeightsDiff, diff_tensors, diff_weights
from modelseal.weights.fingerprint import Fingerprint, Match, fingerprint, identify
from modelseal.weights.scanner import WEIGHT_RULES, scan_weights
from modelseal.weights.stats import TensorStats, tensor_stats

__all__ = [
    "WEIGHT_RULES",
    "Fingerprint",
    "Match",
    "TensorDelta",
    "TensorStats",
    "WeightsDiff",
    "diff_tensors",
    "diff_weights",
    "fingerprint",
    "identify",
    "scan_weights",
    "weight_stats",
]


def weight_stats(
    paths: Iterable[str | os.PathLike[str]], *, workers: int | None = None
) -> tuple[TensorStats, ...]:
    """Per-tensor statistics of every weight file under ``paths`` (in file order)."""
    from modelseal.weights.diff import load_tensors

    return tuple(tensor_stats(list(load_tensors(paths).values()), workers=workers))
