"""Prometheus metrics of the runtime monitor, and a local exposition endpoint.

Each :class:`MonitorMetrics` registers its metrics in its own ``CollectorRegistry`` unless given
one, so several monitors (and tests) never clash over the process-wide default registry.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelseal.monitor.errors import MonitorError

__all__ = ["BatchHistogram", "MetricsServer", "MonitorMetrics", "serve_metrics"]

#: Buckets of the score histogram, in units of the alert threshold (1.0 = at the threshold).
SCORE_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0, 16.0, float("inf"))


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MonitorError(
            "Prometheus metrics need the prometheus_client package",
            advice="install the extra: pip install 'modelseal[monitor]', or pass metrics=False",
        ) from exc
    return prometheus_client


class MonitorMetrics:
    """Counters and histograms the monitor updates (label ``model`` names the watched model)."""

    def __init__(self, registry: Any | None = None) -> None:
        prom = _prometheus()
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        reg = self.registry
        self.inputs = prom.Counter(
            "modelseal_monitor_inputs", "Inputs scored by the monitor.", ["model"], registry=reg
        )
        self.anomalies = prom.Counter(
            "modelseal_monitor_anomalies",
            "Inputs scored above the baseline threshold (kind: feature or nonfinite).",
            ["model", "kind"],
            registry=reg,
        )
        self.blocked = prom.Counter(
            "modelseal_monitor_blocked_batches",
            "Forward passes stopped in block mode.",
            ["model"],
            registry=reg,
        )
        self.score = BatchHistogram(
            "modelseal_monitor_score_ratio",
            "Anomaly score divided by the alert threshold.",
            SCORE_BUCKETS,
            registry=reg,
        )
        self.hook_seconds = prom.Histogram(
            "modelseal_monitor_hook_seconds",
            "Time spent scoring one forward pass.",
            ["model"],
            buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, float("inf")),
            registry=reg,
        )
        self.weight_checks = prom.Counter(
            "modelseal_monitor_weight_checks",
            "In-memory weight integrity checks (result: ok or mismatch).",
            ["model", "result"],
            registry=reg,
        )
        self.weight_mismatches = prom.Counter(
            "modelseal_monitor_weight_mismatched_tensors",
            "Tensors found changed, missing or added by weight checks.",
            ["model"],
            registry=reg,
        )
        self.weight_check_seconds = prom.Histogram(
            "modelseal_monitor_weight_check_seconds",
            "Duration of in-memory weight integrity checks.",
            ["model"],
            registry=reg,
        )

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text exposition format."""
        data: bytes = _prometheus().generate_latest(self.registry)
        return data


class BatchHistogram:
    """A Prometheus histogram (label ``model``) fed a whole batch of values in one call.

    ``prometheus_client.Histogram.observe`` takes one value at a time under a lock; a batch of
    256 scores would cost more than the scoring itself. Here a batch is binned with numpy.
    Non-finite values count in the ``+Inf`` bucket but not in the sum.
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...], registry: Any):
        self.name, self.documentation = name, documentation
        self._bounds = np.asarray(buckets[:-1] if buckets[-1] == float("inf") else buckets)
        self._labels = [_bucket_label(b) for b in self._bounds] + ["+Inf"]
        self._lock = threading.Lock()
        self._series: dict[str, tuple[np.ndarray, list[float]]] = {}
        registry.register(self)

    def observe_many(self, model: str, values: Sequence[float]) -> None:
        """Add ``values`` to the series of ``model``."""
        data = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(data)
        bins = np.searchsorted(self._bounds, np.where(finite, data, np.inf), side="left")
        counts = np.bincount(bins, minlength=len(self._bounds) + 1)
        total = float(data[finite].sum())
        with self._lock:
            series = self._series.get(model)
            if series is None:
                series = self._series[model] = (np.zeros(len(self._bounds) + 1, np.int64), [0.0])
            series[0][:] += counts
            series[1][0] += total

    def describe(self) -> list[Any]:
        """No metadata at registration time (the registry calls :meth:`collect` instead)."""
        return []

    def collect(self) -> list[Any]:
        """The histogram family for the Prometheus registry."""
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.documentation, labels=["model"])
        with self._lock:
            snapshot = {k: (v[0].copy(), v[1][0]) for k, v in self._series.items()}
        for model, (counts, total) in sorted(snapshot.items()):
            cumulative = np.cumsum(counts)
            family.add_metric(
                [model],
                [(label, float(c)) for label, c in zip(self._labels, cumulative, strict=True)],
                total,
            )
        return [family]


def _bucket_label(bound: float) -> str:
    """``le`` label as prometheus_client writes it (``1.0``, ``0.25``)."""
    from prometheus_client.utils import floatToGoString

    label: str = floatToGoString(float(bound))  # type: ignore[no-untyped-call]
    return label


@dataclass
class MetricsServer:
    """A running exposition endpoint (``http://host:port/metrics``)."""

    host: str
    port: int
    _server: Any
    _thread: Any

    @property
    def url(self) -> str:
        """The scrape URL."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(
    metrics: MonitorMetrics, *, port: int = 0, host: str = "127.0.0.1"
) -> MetricsServer:
    """Serve ``metrics`` over HTTP on ``host:port`` (port 0 picks a free one) in a daemon thread.

    Binds to the loopback interface by default; expose it further only behind your own proxy.
    """
    try:
        server, thread = _prometheus().start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise MonitorError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
            advice="choose a free port (or 0 for any free port)",
        ) from exc
    return MetricsServer(host, int(server.server_port), server, thread)
