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
from typing import TYPE_CHECKING

from modelseal._lazy import lazy_exports

if TYPE_CHECKING:
    from modelseal.weights.stats import TensorStats

# Public name -> "module:attribute", imported on first use, so that importing a submodule
# (such as the rule descriptions in ``modelseal.weights.rules``) does not pull in numpy.
_LAZY: dict[str, str] = {
    "WEIGHT_RULES": "modelseal.weights.rules:WEIGHT_RULES",
    "Fingerprint": "modelseal.weights.lineage:Fingerprint",
    "Match": "modelseal.weights.lineage:Match",
    "TensorDelta": "modelseal.weights.diff:TensorDelta",
    "TensorStats": "modelseal.weights.stats:TensorStats",
    "WeightsDiff": "modelseal.weights.diff:WeightsDiff",
    "diff_tensors": "modelseal.weights.diff:diff_tensors",
    "diff_weights": "modelseal.weights.diff:diff_weights",
    "fingerprint": "modelseal.weights.lineage:fingerprint",
    "identify": "modelseal.weights.lineage:identify",
    "scan_weights": "modelseal.weights.scanner:scan_weights",
}

__all__ = [*sorted(_LAZY), "weight_stats"]
__getattr__, _dir = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)


def weight_stats(
    paths: Iterable[str | os.PathLike[str]], *, workers: int | None = None
) -> tuple[TensorStats, ...]:
    """Per-tensor statistics of every weight file under ``paths`` (in file order)."""
    from modelseal.weights.diff import load_tensors
    from modelseal.weights.stats import tensor_stats

    return tuple(tensor_stats(list(load_tensors(paths).values()), workers=workers))
