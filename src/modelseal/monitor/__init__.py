"""Runtime neural integrity monitor for PyTorch models.

Calibrate once on clean inputs, ship the baseline next to the model, and watch the model in
production::

    import modelseal.monitor as msm

    baseline = msm.Monitor.calibrate(model, clean_inputs)      # or msm.calibrate(...)
    msm.save_baseline(baseline, "baseline.json")

    with msm.watch(model, baseline=msm.load_baseline("baseline.json"), mode="block") as mon:
        output = model(batch)          # raises AnomalyBlockedError on a trigger-like input
        report = mon.verify_weights()  # names tensors changed in memory since attach

torch is an optional extra: this package imports without it; calls that need it raise
:class:`TorchUnavailableError`. See docs/monitor.md.
"""

from __future__ import annotations

from modelseal.monitor.baseline import Baseline, load_baseline, save_baseline
from modelseal.monitor.calibrate import CheckReport, InputResult, calibrate, check
from modelseal.monitor.errors import (
    AnomalyBlockedError,
    BaselineError,
    MonitorError,
    TorchUnavailableError,
)
from modelseal.monitor.integrity import (
    TensorMismatch,
    WeightDigests,
    WeightReport,
    WeightWatcher,
    compare_with_manifest,
    reference_from_files,
    reference_from_signature,
)
from modelseal.monitor.metrics import MetricsServer, MonitorMetrics, serve_metrics
from modelseal.monitor.watch import AnomalyEvent, Monitor, WeightIntegrityError, watch

__all__ = [
    "AnomalyBlockedError",
    "AnomalyEvent",
    "Baseline",
    "BaselineError",
    "CheckReport",
    "InputResult",
    "MetricsServer",
    "Monitor",
    "MonitorError",
    "MonitorMetrics",
    "TensorMismatch",
    "TorchUnavailableError",
    "WeightDigests",
    "WeightIntegrityError",
    "WeightReport",
    "WeightWatcher",
    "calibrate",
    "check",
    "compare_with_manifest",
    "load_baseline",
    "reference_from_files",
    "reference_from_signature",
    "save_baseline",
    "serve_metrics",
    "watch",
]
