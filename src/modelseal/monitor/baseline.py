"""The monitor's baseline: what clean inputs look like inside one model, saved as JSON or npz.

A baseline file is an ordinary artifact: ship it next to the model and ``modelseal sign`` covers
it like any other file. Loading never unpickles (npz files are read with ``allow_pickle=False``).
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelseal._io import atomic_output
from modelseal.monitor.errors import BaselineError
from modelseal.monitor.features import STAT_NAMES
from modelseal.monitor.scoring import FeatureModel

__all__ = ["BASELINE_FORMAT", "Baseline", "load_baseline", "save_baseline"]

#: The ``format`` field of every baseline file.
BASELINE_FORMAT = "modelseal-monitor-baseline/1"

_ARRAYS = ("mean", "transform", "centres", "classes", "stats_mean", "stats_std", "held_out_scores")


@dataclass(frozen=True, eq=False)
class Baseline:
    """Everything :func:`~modelseal.monitor.watch` needs to score inputs of one model."""

    #: Names of the monitored modules (``model.named_modules()`` names).
    layers: tuple[str, ...]
    #: Length of the concatenated per-input feature vector.
    feature_dim: int
    #: The fitted feature-space model.
    model: FeatureModel
    #: Scores above this raise an alert.
    threshold: float
    #: False-alert rate on clean inputs the threshold was chosen for.
    target_far: float
    #: Number of calibration inputs.
    n_samples: int
    #: Held-out (k-fold) scores of the calibration inputs, sorted.
    held_out_scores: np.ndarray
    #: Per-layer cheap statistics (``STAT_NAMES`` for each layer): mean and standard deviation.
    stats_mean: np.ndarray
    stats_std: np.ndarray
    #: SHA-256 of the model's parameter names, dtypes and shapes (not values).
    model_fingerprint: str
    #: Free-form provenance (creation time, modelseal version, ...).
    metadata: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Small JSON-friendly description (for reports)."""
        return {
            "layers": list(self.layers),
            "feature_dim": self.feature_dim,
            "rank": self.model.rank,
            "classes": len(self.model.classes),
            "n_samples": self.n_samples,
            "threshold": self.threshold,
            "target_false_alert_rate": self.target_far,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (arrays as nested lists of floats, which round-trip exactly)."""
        return {
            "format": BASELINE_FORMAT,
            "layers": list(self.layers),
            "feature_dim": self.feature_dim,
            "threshold": self.threshold,
            "target_false_alert_rate": self.target_far,
            "n_samples": self.n_samples,
            "shrinkage": self.model.shrinkage,
            "model_fingerprint": self.model_fingerprint,
            "stat_names": list(STAT_NAMES),
            "metadata": self.metadata,
            "arrays": {name: _array(self, name).tolist() for name in _ARRAYS},
        }

    @classmethod
    def from_dict(cls, data: Any, arrays: dict[str, np.ndarray] | None = None) -> Baseline:
        """Parse the JSON form (``arrays`` overrides ``data["arrays"]``, for npz files)."""
        try:
            if data.get("format") != BASELINE_FORMAT:
                raise BaselineError(
                    f"not a modelseal monitor baseline (format {data.get('format')!r})",
                    advice="create one with `modelseal monitor calibrate` or Monitor.calibrate()",
                )
            raw = arrays if arrays is not None else data["arrays"]
            arr = {
                name: np.asarray(raw[name], dtype=np.int64 if name == "classes" else np.float64)
                for name in _ARRAYS
            }
            feature_dim = int(data["feature_dim"])
            layers = tuple(str(layer) for layer in data["layers"])
            model = FeatureModel(
                mean=arr["mean"],
                transform=arr["transform"].reshape(feature_dim, -1),
                centres=arr["centres"].reshape(len(arr["classes"]), -1),
                classes=arr["classes"],
                shrinkage=float(data["shrinkage"]),
            )
            baseline = cls(
                layers=layers,
                feature_dim=feature_dim,
                model=model,
                threshold=float(data["threshold"]),
                target_far=float(data["target_false_alert_rate"]),
                n_samples=int(data["n_samples"]),
                held_out_scores=arr["held_out_scores"],
                stats_mean=arr["stats_mean"],
                stats_std=arr["stats_std"],
                model_fingerprint=str(data["model_fingerprint"]),
                metadata=dict(data.get("metadata") or {}),
            )
        except BaselineError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BaselineError(
                f"malformed monitor baseline: {exc}",
                advice="re-create the baseline with `modelseal monitor calibrate`",
            ) from exc
        baseline._validate()
        return baseline

    def _validate(self) -> None:
        m = self.model
        k = m.transform.shape[1] if m.transform.ndim == 2 else -1
        checks = [
            (bool(self.layers), "no layers"),
            (m.mean.shape == (self.feature_dim,), "mean has the wrong length"),
            (m.transform.shape == (self.feature_dim, k) and k >= 1, "transform has a bad shape"),
            (m.centres.shape == (len(m.classes), k) and len(m.classes) >= 1, "bad class centres"),
            (self.stats_mean.shape == (len(self.layers) * len(STAT_NAMES),), "bad layer stats"),
            (self.stats_std.shape == self.stats_mean.shape, "bad layer stats"),
            (math.isfinite(self.threshold) and self.threshold > 0, "threshold is not positive"),
            (0.0 < self.target_far < 1.0, "target false-alert rate out of range"),
        ]
        arrays_finite = all(np.isfinite(_array(self, name)).all() for name in _ARRAYS)
        checks.append((arrays_finite, "arrays contain NaN or infinite values"))
        problems = sorted({msg for ok, msg in checks if not ok})
        if problems:
            raise BaselineError(
                f"inconsistent monitor baseline: {'; '.join(problems)}",
                advice="re-create the baseline with `modelseal monitor calibrate`",
            )


def _array(baseline: Baseline, name: str) -> np.ndarray:
    source: Any = (
        baseline.model if name in ("mean", "transform", "centres", "classes") else baseline
    )
    return np.asarray(getattr(source, name))


def save_baseline(baseline: Baseline, path: str | os.PathLike[str]) -> Path:
    """Write ``baseline`` atomically: ``.npz`` as compressed arrays, anything else as JSON."""
    target = Path(path)
    data = baseline.to_dict()
    if target.suffix.lower() == ".npz":
        arrays = {name: _array(baseline, name) for name in _ARRAYS}
        del data["arrays"]
        meta = np.frombuffer(json.dumps(data, sort_keys=True).encode("utf-8"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, __meta__=meta, **arrays)  # type: ignore[arg-type]
        with atomic_output(target) as handle:
            handle.write(buffer.getvalue())
    else:
        with atomic_output(target) as handle:
            handle.write(json.dumps(data, indent=1, sort_keys=True).encode("utf-8") + b"\n")
    return target


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline written by :func:`save_baseline` (JSON or npz, recognised by content)."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise BaselineError(
            f"cannot read baseline {source}: {exc.strerror or exc}",
            advice="pass the file written by `modelseal monitor calibrate`",
        ) from exc
    if raw[:4] == b"PK\x03\x04":
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            data = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
        except (KeyError, ValueError, OSError) as exc:
            raise BaselineError(f"{source}: malformed npz baseline: {exc}") from exc
        return Baseline.from_dict(data, arrays)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(
            f"{source}: not a JSON or npz baseline ({exc})",
            advice="pass the file written by `modelseal monitor calibrate`",
        ) from exc
    if not isinstance(data, dict):
        raise BaselineError(f"{source}: a baseline is a JSON object")
    return Baseline.from_dict(data)
