"""Attribution without provenance: compact weight fingerprints and model identification.

A fingerprint keeps, for every matrix of a model, :data:`SAMPLE_POINTS` values read
at fixed pseudo-random positions (the positions depend only on the tensor's size, so
every model of the same architecture is sampled at the same places) plus the
tensor's mean and standard deviation. These are random coordinate projections of
the weights: a dtype conversion or a fine-tune moves each value only slightly, so
the samples of a derived model stay almost perfectly correlated with the original's,
while an independently initialised model of the same architecture is uncorrelated.

:func:`identify` scores a model against known fingerprints with the median Pearson
correlation over the matrices both share, and calls it derived at
:data:`DERIVED_THRESHOLD`.
"""

from __future__ import annotations

import base64
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelseal.errors import UsageError, WeightsError
from modelseal.formats.tensors import TensorInfo, tensor_array
from modelseal.weights.stats import float_spec, to_float32

__all__ = [
    "DERIVED_THRESHOLD",
    "FINGERPRINT_KIND",
    "SAMPLE_POINTS",
    "Fingerprint",
    "Match",
    "TensorPrint",
    "fingerprint",
    "fingerprint_tensors",
    "identify",
    "load_fingerprints",
    "similarity",
]

#: Values sampled per matrix.
SAMPLE_POINTS = 256
#: Score at or above which a model is reported as derived from a known one.
DERIVED_THRESHOLD = 0.5
#: The ``kind`` field of fingerprint files.
FINGERPRINT_KIND = "modelseal-weights-fingerprint"
_MIN_ELEMENTS = 1024


@dataclass(frozen=True)
class TensorPrint:
    """The fingerprint of one matrix."""

    name: str
    shape: tuple[int, ...]
    mean: float
    std: float
    #: Values at the fixed sample positions (stored as float16).
    sample: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (samples base64-encoded as little-endian float16)."""
        packed = np.asarray(self.sample, dtype="<f2").tobytes()
        return {
            "name": self.name,
            "shape": list(self.shape),
            "mean": self.mean,
            "std": self.std,
            "sample": base64.b64encode(packed).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorPrint:
        """Parse :meth:`to_dict` output (raises KeyError/ValueError/TypeError when malformed)."""
        raw = base64.b64decode(str(data["sample"]), validate=True)
        sample = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        return cls(
            str(data["name"]),
            tuple(int(d) for d in data["shape"]),
            float(data["mean"]),
            float(data["std"]),
            tuple(float(v) for v in sample),
        )


@dataclass(frozen=True)
class Fingerprint:
    """A model's weight fingerprint."""

    label: str
    tensors: tuple[TensorPrint, ...]

    def to_dict(self) -> dict[str, Any]:
        """The fingerprint file's JSON document."""
        return {
            "version": 1,
            "kind": FINGERPRINT_KIND,
            "label": self.label,
            "sample_points": SAMPLE_POINTS,
            "tensors": [t.to_dict() for t in self.tensors],
        }

    def to_json(self) -> str:
        """Serialise to JSON text."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<fingerprint>") -> Fingerprint:
        """Parse a fingerprint file (raises :class:`WeightsError` when it is not one)."""
        try:
            data = json.loads(text)
            if data.get("kind") != FINGERPRINT_KIND or data.get("version") != 1:
                raise ValueError("not a modelseal weights fingerprint (version 1)")
            tensors = tuple(TensorPrint.from_dict(t) for t in data["tensors"])
            return cls(str(data["label"]), tensors)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WeightsError(
                f"{source}: invalid fingerprint ({exc})",
                advice="write fingerprints with `modelseal weights fingerprint PATH -o FILE.json`",
            ) from exc


@dataclass(frozen=True)
class Match:
    """How similar a model is to one known fingerprint."""

    label: str
    #: Median correlation of the shared matrices' samples (-1..1).
    score: float
    #: Matrices compared.
    matched: int
    derived: bool
    #: Where the known fingerprint was read from, if from a file.
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "score": round(self.score, 6),
            "matched_tensors": self.matched,
            "derived": self.derived,
            "source": self.source,
        }


def _positions(numel: int) -> np.ndarray:
    rng = np.random.default_rng(numel)
    return np.sort(rng.choice(numel, size=SAMPLE_POINTS, replace=False))


def _print_tensor(info: TensorInfo) -> TensorPrint | None:
    spec = float_spec(info.dtype)
    if spec is None or len(info.shape) < 2 or info.numel < _MIN_ELEMENTS:
        return None
    units = tensor_array(info).reshape(-1).view(spec.unit)
    values = to_float32(np.asarray(units[_positions(info.numel)]), spec).astype(np.float64)
    values = np.where(np.isfinite(values), values, 0.0)
    return TensorPrint(
        info.name,
        info.shape,
        float(values.mean()),
        float(values.std()),
        tuple(float(v) for v in values.astype(np.float16)),
    )


def fingerprint_tensors(tensors: Iterable[TensorInfo], label: str) -> Fingerprint:
    """The fingerprint of a set of tensors."""
    prints = [p for p in map(_print_tensor, tensors) if p is not None]
    return Fingerprint(label, tuple(prints))


def fingerprint(
    paths: Iterable[str | os.PathLike[str]], *, label: str | None = None
) -> Fingerprint:
    """The fingerprint of the model under ``paths`` (a file or a directory of shards)."""
    from modelseal.weights.diff import load_tensors

    items = list(paths)
    tensors = load_tensors(items)
    name = label or ", ".join(Path(p).name for p in items)
    print_ = fingerprint_tensors(tensors.values(), name)
    if not print_.tensors:
        raise WeightsError(
            f"{name}: no float matrix with at least {_MIN_ELEMENTS} elements to fingerprint"
        )
    return print_


def _pairs(a: Fingerprint, b: Fingerprint) -> list[tuple[TensorPrint, TensorPrint]]:
    by_name = {t.name: t for t in b.tensors}
    named = [(t, by_name[t.name]) for t in a.tensors if t.name in by_name]
    named = [(x, y) for x, y in named if x.shape == y.shape]
    if len(named) * 2 >= min(len(a.tensors), len(b.tensors)):
        return named
    # Renamed keys (a re-upload with another naming scheme): pair matrices of the same
    # shape in file order.
    groups: dict[tuple[int, ...], list[TensorPrint]] = defaultdict(list)
    for t in b.tensors:
        groups[t.shape].append(t)
    pairs = []
    used: dict[tuple[int, ...], int] = defaultdict(int)
    for t in a.tensors:
        candidates = groups.get(t.shape, [])
        if used[t.shape] < len(candidates):
            pairs.append((t, candidates[used[t.shape]]))
            used[t.shape] += 1
    return pairs


def similarity(a: Fingerprint, b: Fingerprint) -> tuple[float, int]:
    """``(score, matrices compared)``: the median sample correlation of shared matrices."""
    scores = []
    for x, y in _pairs(a, b):
        left, right = np.asarray(x.sample), np.asarray(y.sample)
        if left.std() == 0 or right.std() == 0:
            continue
        scores.append(float(np.corrcoef(left, right)[0, 1]))
    if not scores:
        return 0.0, 0
    return float(np.median(scores)), len(scores)


def load_fingerprints(
    directory: str | os.PathLike[str], *, on_skip: Callable[[WeightsError], None] | None = None
) -> list[tuple[Fingerprint, str]]:
    """Every ``*.json`` fingerprint in ``directory`` with its path.

    A file that is not a fingerprint raises :class:`WeightsError`, unless ``on_skip`` is
    given: then it is passed the error and the file is skipped (one bad file in a
    collection of known models should not hide the others).
    """
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory of fingerprints")
    found = []
    for path in sorted(root.glob("*.json")):
        try:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 JSON"
                raise WeightsError(f"{path}: cannot read fingerprint ({reason})") from exc
            found.append((Fingerprint.from_json(text, source=str(path)), str(path)))
        except WeightsError as exc:
            if on_skip is None:
                raise
            on_skip(exc)
    if not found:
        raise UsageError(
            f"{root}: no readable fingerprint (*.json) file",
            advice="create them with `modelseal weights fingerprint MODEL -o DIR/NAME.json`",
        )
    return found


def identify(
    paths: Iterable[str | os.PathLike[str]] | Fingerprint,
    against: str | os.PathLike[str] | Sequence[Fingerprint],
    *,
    on_skip: Callable[[WeightsError], None] | None = None,
) -> tuple[Match, ...]:
    """Rank known models by similarity to the model under ``paths``, best first.

    ``against`` is a directory of fingerprint files (``on_skip`` as in
    :func:`load_fingerprints`) or a sequence of fingerprints.
    """
    subject = paths if isinstance(paths, Fingerprint) else fingerprint(paths)
    if isinstance(against, (str, os.PathLike)):
        known = load_fingerprints(against, on_skip=on_skip)
    else:
        known = [(fp, None) for fp in against]  # type: ignore[misc]
    matches = []
    for candidate, source in known:
        score, matched = similarity(subject, candidate)
        matches.append(
            Match(
                candidate.label, score, matched, matched > 0 and score >= DERIVED_THRESHOLD, source
            )
        )
    return tuple(sorted(matches, key=lambda m: m.score, reverse=True))
