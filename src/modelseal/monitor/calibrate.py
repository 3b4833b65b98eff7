"""Calibrate a baseline on clean inputs, and score a set of inputs against one (offline check)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from modelseal.monitor.baseline import Baseline
from modelseal.monitor.errors import BaselineError, MonitorError, require_torch
from modelseal.monitor.features import (
    default_layers,
    find_modules,
    layer_statistics,
    output_logits,
    reduce_features,
)
from modelseal.monitor.scoring import calibrate_threshold, fit_feature_model

__all__ = ["CheckReport", "InputResult", "calibrate", "check", "iter_batches"]

Forward = Callable[[Any, Any], Any]


def _default_forward(model: Any, batch: Any) -> Any:
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, tuple):
        return model(*batch)
    return model(batch)


def iter_batches(inputs: Any, batch_size: int) -> Iterator[Any]:
    """Batches to feed the model: a tensor or array is split along its first dimension;
    any other iterable is taken as already-made batches (tensors, tuples of args, dicts)."""
    torch: Any = require_torch()
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(np.ascontiguousarray(inputs))
    if isinstance(inputs, torch.Tensor):
        if inputs.ndim == 0 or len(inputs) == 0:
            raise MonitorError("no inputs given", advice="pass a batch of clean inputs")
        yield from inputs.split(batch_size)
        return
    yield from inputs


def _run(
    model: Any, layers: Sequence[str], inputs: Any, forward: Forward, batch_size: int
) -> tuple[list[Any], list[Any]]:
    """Run ``inputs`` through ``model``; return the reduced features and the outputs per batch."""
    torch: Any = require_torch()
    modules = find_modules(model, layers)
    captured: dict[int, Any] = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _a, out, slot=slot: captured.__setitem__(slot, reduce_features(out))
        )
        for slot, module in enumerate(modules)
    ]
    features, outputs = [], []
    was_training = bool(getattr(model, "training", False))
    try:
        model.eval()
        with torch.no_grad():
            for batch in iter_batches(inputs, batch_size):
                captured.clear()
                out = forward(model, batch)
                if len(captured) != len(modules):
                    raise BaselineError(
                        "a monitored layer did not run during the forward pass",
                        advice="monitor layers that every input goes through",
                    )
                features.append([captured[i].float().cpu() for i in range(len(modules))])
                logits = output_logits(out)
                outputs.append(None if logits is None else logits.float().cpu())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not features:
        raise MonitorError("no inputs given", advice="pass a batch of clean inputs")
    return features, outputs


def calibrate(
    model: Any,
    inputs: Any,
    *,
    layers: Sequence[str] | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
    classes: Literal["auto", "output", "none"] = "auto",
    target_far: float = 0.01,
    folds: int = 20,
    batch_size: int = 256,
    forward: Forward | None = None,
) -> Baseline:
    """Record a baseline of ``model`` on clean ``inputs``.

    ``inputs`` is a tensor/array (split into batches of ``batch_size``) or an iterable of
    batches; ``forward(model, batch)`` runs one batch (default: ``model(batch)``, ``model(*t)``
    for tuples, ``model(**d)`` for dicts). ``layers`` names the monitored modules (default: the
    penultimate layer with weights, see :func:`~modelseal.monitor.features.default_layers`).

    Inputs are grouped into classes for the class-conditional score by ``labels`` if given,
    else by the model's predicted class when its output looks like class scores
    (``classes="auto"``: a (batch, C) tensor with at most one class per two calibration inputs),
    or not at all (``classes="none"``). ``target_far`` is the false-alert rate on clean inputs
    the threshold is set for, estimated with ``folds``-fold held-out scores.
    """
    from modelseal import __version__
    from modelseal.monitor.watch import model_fingerprint

    torch: Any = require_torch()
    layer_names = tuple(layers) if layers else default_layers(model)
    per_batch, outputs = _run(model, layer_names, inputs, forward or _default_forward, batch_size)
    parts = [torch.cat([b[i] for b in per_batch]) for i in range(len(layer_names))]
    x = torch.cat(parts, dim=1).double().numpy()
    y, source = _labels(labels, classes, outputs, len(x))
    feature_model = fit_feature_model(x, y)
    threshold, held_out = calibrate_threshold(x, y, target_far=target_far, folds=folds)
    stats = torch.cat([layer_statistics(p.double()) for p in parts], dim=1).numpy()
    baseline = Baseline(
        layers=layer_names,
        feature_dim=int(x.shape[1]),
        model=feature_model,
        threshold=threshold,
        target_far=target_far,
        n_samples=len(x),
        held_out_scores=np.sort(held_out),
        stats_mean=stats.mean(axis=0),
        stats_std=np.maximum(stats.std(axis=0), 1e-12),
        model_fingerprint=model_fingerprint(model),
        metadata={
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "modelseal": __version__,
            "torch": str(torch.__version__),
            "classes_from": source,
        },
    )
    baseline._validate()
    return baseline


def _labels(labels: Any, classes: str, outputs: list[Any], n: int) -> tuple[np.ndarray | None, str]:
    if labels is not None:
        y = np.asarray(labels, dtype=np.int64).ravel()
        if y.shape != (n,):
            raise BaselineError(f"got {y.size} labels for {n} calibration inputs")
        return y, "labels"
    if classes not in ("auto", "output", "none"):
        raise MonitorError(f"unknown classes option {classes!r}", advice="use auto, output or none")
    if classes == "none":
        return None, "none"
    if any(o is None for o in outputs):
        if classes == "output":
            raise BaselineError(
                "the model output does not look like class scores (a (batch, C) tensor)",
                advice="pass labels=..., or classes='none'",
            )
        return None, "none"
    import torch

    logits = torch.cat(outputs)
    if classes == "auto" and logits.shape[1] > n // 2:
        return None, "none"
    return logits.argmax(dim=1).numpy().astype(np.int64), "output"


@dataclass(frozen=True)
class InputResult:
    """The monitor's verdict on one input."""

    index: int
    score: float
    alert: bool
    #: The model's predicted class, if its output looks like class scores.
    predicted: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "index": self.index,
            "score": self.score,
            "alert": self.alert,
            "predicted": self.predicted,
        }


@dataclass(frozen=True)
class CheckReport:
    """Scores of a set of inputs against a baseline (``modelseal monitor check``)."""

    threshold: float
    results: tuple[InputResult, ...]

    @property
    def alerts(self) -> tuple[InputResult, ...]:
        """The inputs scored above the threshold (or with non-finite features)."""
        return tuple(r for r in self.results if r.alert)

    @property
    def scores(self) -> np.ndarray:
        """All scores, in input order."""
        return np.array([r.score for r in self.results])


def check(
    model: Any,
    baseline: Baseline,
    inputs: Any,
    *,
    batch_size: int = 256,
    forward: Forward | None = None,
    threshold: float | None = None,
) -> CheckReport:
    """Score every input in one forward pass each, with the model watched in observe mode."""
    from modelseal.monitor.watch import watch

    torch: Any = require_torch()
    run = forward or _default_forward
    results: list[InputResult] = []
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        with (
            watch(model, baseline, mode="observe", metrics=False, weights=False) as mon,
            torch.no_grad(),
        ):
            limit = mon.threshold if threshold is None else float(threshold)
            for batch in iter_batches(inputs, batch_size):
                logits = output_logits(run(model, batch))
                predicted: list[int | None] = [None] * len(mon.last_scores)
                if logits is not None:
                    predicted = [int(p) for p in logits.argmax(dim=1).tolist()]
                for score, pred in zip(mon.last_scores, predicted, strict=True):
                    results.append(InputResult(len(results), score, not score <= limit, pred))
    finally:
        model.train(was_training)
    return CheckReport(limit, tuple(results))
