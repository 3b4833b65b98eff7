"""``watch()``: score every input of a running PyTorch model against its baseline.

Forward hooks go on the few layers the baseline names (one, by default). Each forward pass costs a
couple of small tensor operations on the hooked layer's output; nothing runs a second pass.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from modelseal.monitor.baseline import Baseline
from modelseal.monitor.errors import AnomalyBlockedError, BaselineError, MonitorError, require_torch
from modelseal.monitor.features import find_modules, layer_statistics, reduce_features
from modelseal.monitor.integrity import (
    WeightDigests,
    WeightReport,
    WeightWatcher,
    compare_with_manifest,
)
from modelseal.monitor.metrics import MonitorMetrics

__all__ = ["AnomalyEvent", "Mode", "Monitor", "WeightIntegrityError", "model_fingerprint", "watch"]

#: ``observe`` scores and counts; ``alert`` also calls the callback and logs a warning;
#: ``block`` also raises :class:`AnomalyBlockedError` before the output is returned, and
#: :class:`WeightIntegrityError` on every forward pass once a weight check has failed.
Mode = Literal["observe", "alert", "block"]
_MODES = ("observe", "alert", "block")

_log = logging.getLogger("modelseal.monitor")


class WeightIntegrityError(MonitorError):
    """The model's in-memory weights do not match their signed manifest or snapshot."""

    exit_code = 1

    def __init__(self, report: WeightReport) -> None:
        names = ", ".join(report.changed[:5]) + (" ..." if len(report.changed) > 5 else "")
        super().__init__(
            f"weights in memory do not match the {report.against}: {names}",
            advice="reload the model from its verified files; something modified it after load",
        )
        self.report = report


@dataclass(frozen=True)
class AnomalyEvent:
    """One input the monitor flagged."""

    #: ``feature`` (score above threshold) or ``nonfinite`` (NaN/Inf in the features).
    kind: str
    #: Squared Mahalanobis distance to the nearest calibration class (NaN if non-finite).
    score: float
    threshold: float
    #: Position of the input in its batch, and the number of the forward pass (from 1).
    index: int
    call: int
    #: Largest |z| of the cheap per-layer statistics (norm, mean, std, max-abs).
    stats_z: float
    #: The ``name`` given to :func:`watch`.
    model: str
    #: Unix time of the forward pass.
    time: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "score": self.score,
            "threshold": self.threshold,
            "index": self.index,
            "call": self.call,
            "stats_z": self.stats_z,
            "model": self.model,
            "time": self.time,
        }


def model_fingerprint(model: Any) -> str:
    """SHA-256 over the model's tensor names, dtypes and shapes (its structure, not values)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in model.state_dict(keep_vars=True).items():
        shape = ",".join(str(int(s)) for s in tensor.shape)
        digest.update(f"{name}\x00{tensor.dtype}\x00{shape}\n".encode())
    return digest.hexdigest()


class _Scorer:
    """The baseline as torch tensors; scores a batch of features in a few ops."""

    def __init__(self, baseline: Baseline) -> None:
        torch: Any = require_torch()
        m = baseline.model
        self.mean = torch.as_tensor(m.mean, dtype=torch.float32)
        self.transform = torch.as_tensor(m.transform, dtype=torch.float32)
        self.centres_t = torch.as_tensor(m.centres, dtype=torch.float32).T.contiguous() * -2.0
        self.centre_sq = torch.as_tensor((m.centres * m.centres).sum(axis=1), dtype=torch.float32)
        self.stats_mean = torch.as_tensor(baseline.stats_mean, dtype=torch.float32)
        self.stats_scale = 1.0 / torch.as_tensor(baseline.stats_std, dtype=torch.float32).clamp(
            min=1e-12
        )

    def scores(self, parts: list[Any]) -> tuple[list[float], Any]:
        """Score of each input (NaN/inf: non-finite features) and the float32 feature parts."""
        torch: Any = require_torch()
        with torch.no_grad():
            feats = [p if p.dtype == torch.float32 else p.float() for p in parts]
            feats = [f if f.device.type == "cpu" else f.cpu() for f in feats]
            x = feats[0] if len(feats) == 1 else torch.cat(feats, dim=1)
            z = (x - self.mean) @ self.transform
            dist = torch.addmm(self.centre_sq, z, self.centres_t)
            dist += (z * z).sum(dim=1, keepdim=True)
            return dist.amin(dim=1).clamp_(min=0.0).tolist(), feats

    def stats_z(self, feats: list[Any], rows: list[int]) -> list[float]:
        """Largest |z| of the cheap per-layer statistics of the inputs at ``rows``.

        Only computed for flagged inputs, to keep the common (clean) path short.
        """
        torch: Any = require_torch()
        with torch.no_grad():
            index = torch.tensor(rows, dtype=torch.long)
            stats = torch.cat([layer_statistics(f.index_select(0, index)) for f in feats], dim=1)
            result: list[float] = (
                stats.sub_(self.stats_mean).mul_(self.stats_scale).abs_().amax(dim=1).tolist()
            )
            return result


class Monitor:
    """A model under watch. Create with :func:`watch`; calibrate with :meth:`calibrate`."""

    def __init__(
        self,
        model: Any,
        baseline: Baseline,
        *,
        mode: Mode = "alert",
        on_alert: Callable[[AnomalyEvent], None] | None = None,
        on_weights: Callable[[WeightReport], None] | None = None,
        logger: logging.Logger | None = None,
        metrics: MonitorMetrics | bool | None = None,
        name: str = "model",
        threshold: float | None = None,
        strict: bool = True,
        weights: bool = True,
        reference: Any | None = None,
        verify_every: float | None = None,
        history: int = 1000,
    ) -> None:
        if mode not in _MODES:
            raise MonitorError(f"unknown monitor mode {mode!r}", advice="use " + ", ".join(_MODES))
        if verify_every is not None and not weights:
            raise MonitorError("verify_every needs weights=True")
        self.model, self.baseline, self.mode, self.name = model, baseline, mode, name
        #: Scores above this are anomalies (defaults to the baseline's calibrated threshold).
        self.threshold = float(threshold) if threshold is not None else baseline.threshold
        self._on_alert, self._on_weights = on_alert, on_weights
        self._log = logger or _log
        if metrics is None or metrics is True:
            metrics = _default_metrics(required=metrics is True)
        self.metrics: MonitorMetrics | None = metrics or None
        self._strict, self._weights, self._reference = strict, weights, reference
        self._verify_every = verify_every
        #: The most recent anomalies (bounded by ``history``).
        self.events: collections.deque[AnomalyEvent] = collections.deque(maxlen=history)
        #: Scores of every input of the last forward pass.
        self.last_scores: tuple[float, ...] = ()
        #: Counters since attach.
        self.inputs = self.anomalies = self.calls = self.blocked = 0
        #: The comparison with the signed manifest made at attach (if a reference was given).
        self.manifest_report: WeightReport | None = None
        self.last_weight_report: WeightReport | None = None
        self._digests: WeightDigests | None = None
        self._watcher: WeightWatcher | None = None
        self._handles: list[Any] = []
        self._pending = threading.local()
        self._lock = threading.Lock()
        self._scorer: _Scorer | None = None
        # A failed weight check: in block mode, every later forward pass raises.
        self._weights_failed: WeightReport | None = None

    # -- calibration ------------------------------------------------------------------------

    @staticmethod
    def calibrate(model: Any, inputs: Any, **options: Any) -> Baseline:
        """Record a baseline on clean ``inputs``; see :func:`modelseal.monitor.calibrate`."""
        from modelseal.monitor.calibrate import calibrate

        return calibrate(model, inputs, **options)

    # -- lifecycle --------------------------------------------------------------------------

    def attach(self) -> Monitor:
        """Install the hooks (and take the weight snapshot); returns ``self``."""
        if self._handles:
            raise MonitorError("this monitor is already attached")
        if self._strict and model_fingerprint(self.model) != self.baseline.model_fingerprint:
            raise BaselineError(
                "the baseline was calibrated on a model with other tensors (names/shapes differ)",
                advice="calibrate a baseline for this model, or pass strict=False",
            )
        modules = find_modules(self.model, self.baseline.layers)
        self._scorer = _Scorer(self.baseline)
        if self._weights:
            if self._reference is not None:
                self.manifest_report = compare_with_manifest(self.model, self._reference)
                self._report_weights(self.manifest_report)
                if not self.manifest_report.ok and self.mode == "block":
                    raise WeightIntegrityError(self.manifest_report)
            self._digests = WeightDigests.snapshot(self.model)
        count = len(modules)
        for slot, module in enumerate(modules):
            self._handles.append(module.register_forward_hook(self._make_hook(slot, count)))
        if self._verify_every is not None and self._digests is not None:
            self._watcher = WeightWatcher(
                self.model, self._digests, self._verify_every, self._report_weights
            ).start()
        return self

    def detach(self) -> None:
        """Remove the hooks and stop the background weight checks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def __enter__(self) -> Monitor:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # -- weights ----------------------------------------------------------------------------

    def verify_weights(self) -> WeightReport:
        """Re-hash the weights in memory now; names every tensor and chunk that changed."""
        if self._digests is None:
            raise MonitorError(
                "weight checks are off for this monitor",
                advice="attach it with weights=True (the default)",
            )
        report = self._digests.verify(self.model)
        self._report_weights(report)
        return report

    @property
    def weight_checks(self) -> int:
        """Number of background re-checks completed so far."""
        return self._watcher.checks if self._watcher is not None else 0

    def _report_weights(self, report: WeightReport) -> None:
        self.last_weight_report = report
        if not report.ok:
            self._weights_failed = report
        if self.metrics is not None:
            m = self.metrics
            m.weight_checks.labels(self.name, "ok" if report.ok else "mismatch").inc()
            m.weight_check_seconds.labels(self.name).observe(report.seconds)
            failed = [x for x in report.mismatches if x.kind != "unsigned"]
            if failed:
                m.weight_mismatches.labels(self.name).inc(len(failed))
        if not report.ok:
            self._log.error(
                "modelseal monitor: weights of %s changed in memory (vs %s): %s",
                self.name,
                report.against,
                ", ".join(report.changed),
            )
            if self._on_weights is not None and self.mode != "observe":
                self._on_weights(report)

    # -- scoring ----------------------------------------------------------------------------

    def _make_hook(self, slot: int, count: int) -> Callable[..., None]:
        if count == 1:

            def single(module: Any, args: Any, output: Any) -> None:
                self._score([reduce_features(output)])

            return single

        def multi(module: Any, args: Any, output: Any) -> None:
            pending = getattr(self._pending, "parts", None)
            if pending is None:
                pending = self._pending.parts = {}
            pending[slot] = reduce_features(output)
            if len(pending) == count:
                self._pending.parts = None
                self._score([pending[i] for i in range(count)])

        return multi

    def _score(self, parts: list[Any]) -> None:
        started = time.perf_counter()
        if self._weights_failed is not None and self.mode == "block":
            raise WeightIntegrityError(self._weights_failed)
        assert self._scorer is not None
        dims = sum(int(p.shape[1]) for p in parts)
        if dims != self.baseline.feature_dim:
            raise BaselineError(
                f"monitored layers produce {dims} features, the baseline expects "
                f"{self.baseline.feature_dim}",
                advice="use the baseline calibrated for this model",
            )
        scores, feats = self._scorer.scores(parts)
        threshold = self.threshold
        with self._lock:
            self.calls += 1
            call = self.calls
            self.inputs += len(scores)
        self.last_scores = tuple(scores)
        flagged = [i for i, s in enumerate(scores) if not s <= threshold]  # NaN is flagged
        stats_z = (
            dict(zip(flagged, self._scorer.stats_z(feats, flagged), strict=True)) if flagged else {}
        )
        now = time.time()
        events = tuple(
            AnomalyEvent(
                "feature" if math.isfinite(scores[i]) else "nonfinite",
                scores[i],
                threshold,
                i,
                call,
                stats_z[i],
                self.name,
                now,
            )
            for i in flagged
        )
        if events:
            with self._lock:
                self.anomalies += len(events)
            self.events.extend(events)
        if self.metrics is not None:
            self._record_metrics(scores, events, started)
        if not events:
            return
        name = self.name
        if self.mode == "observe":
            self._log.debug("modelseal monitor: %d anomalous input(s) in %s", len(events), name)
            return
        for event in events:
            self._log.warning(
                "modelseal monitor: anomalous input to %s (%s, score %.4g > threshold %.4g, "
                "batch index %d)",
                self.name,
                event.kind,
                event.score,
                event.threshold,
                event.index,
            )
            if self._on_alert is not None:
                self._on_alert(event)
        if self.mode == "block":
            with self._lock:
                self.blocked += 1
            if self.metrics is not None:
                self.metrics.blocked.labels(self.name).inc()
            raise AnomalyBlockedError(
                f"blocked: {len(events)} anomalous input(s) in a batch of {len(scores)} "
                f"(max score {max((e.score for e in events), default=float('nan')):.4g}, "
                f"threshold {threshold:.4g})",
                events=events,
            )

    def _record_metrics(
        self, scores: list[float], events: tuple[AnomalyEvent, ...], started: float
    ) -> None:
        assert self.metrics is not None
        m, name = self.metrics, self.name
        m.inputs.labels(name).inc(len(scores))
        scale = 1.0 / self.threshold
        m.score.observe_many(name, [score * scale for score in scores])
        for kind in {e.kind for e in events}:
            m.anomalies.labels(name, kind).inc(sum(1 for e in events if e.kind == kind))
        m.hook_seconds.labels(name).observe(time.perf_counter() - started)


def _default_metrics(*, required: bool) -> MonitorMetrics | None:
    try:
        return MonitorMetrics()
    except MonitorError:
        if required:
            raise
        return None


def watch(model: Any, baseline: Baseline, **options: Any) -> Monitor:
    """Watch ``model`` with ``baseline``: use as ``with watch(model, baseline=b) as mon: ...``.

    Options (all keyword): ``mode`` ("observe", "alert" — the default — or "block"),
    ``on_alert`` (called with each :class:`AnomalyEvent`), ``on_weights`` (called with a failed
    :class:`WeightReport`), ``logger``, ``metrics`` (a :class:`MonitorMetrics`, ``False`` for
    none, default: a private registry when prometheus_client is installed), ``name`` (the
    ``model`` label), ``threshold`` (override the calibrated one), ``strict`` (refuse a
    baseline made for another architecture), ``weights`` (snapshot the weights for
    :meth:`Monitor.verify_weights`), ``reference`` (signed per-tensor records to compare the
    memory with at attach), ``verify_every`` (seconds between background re-checks).
    """
    return Monitor(model, baseline, **options)
