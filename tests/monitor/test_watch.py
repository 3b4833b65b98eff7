"""watch(): modes, callbacks, logging, Prometheus metrics; baselines on disk; clear errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from modelseal.monitor import (
    AnomalyBlockedError,
    Baseline,
    BaselineError,
    Monitor,
    MonitorError,
    MonitorMetrics,
    calibrate,
    check,
    load_baseline,
    save_baseline,
    serve_metrics,
    watch,
)
from tests.samples.monitor import train_backdoored

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def trained():
    bm = train_backdoored("patch", 0, epochs=30)
    baseline = Monitor.calibrate(bm.model, bm.x_calib[:200])
    return bm, baseline


def _mixed(bm, n: int = 8):
    """A batch of n clean inputs with one triggered input at index 3."""
    x = bm.x_clean[:n].copy()
    x[3] = bm.x_triggered[0]
    return torch.from_numpy(x)


def test_alert_mode_calls_back_logs_and_returns_the_output(trained, caplog) -> None:
    bm, baseline = trained
    events = []
    with (
        caplog.at_level(logging.WARNING, logger="modelseal.monitor"),
        watch(bm.model, baseline, mode="alert", on_alert=events.append, name="digits") as mon,
    ):
        out = bm.model(_mixed(bm))
    assert out.shape == (8, 10)
    assert [e.index for e in events] == [3] and events[0].kind == "feature"
    assert events[0].score > baseline.threshold and events[0].model == "digits"
    assert events[0].stats_z > 0 and events[0].call == 1
    assert mon.inputs == 8 and mon.anomalies == 1 and mon.calls == 1
    assert "anomalous input to digits" in caplog.text
    text = mon.metrics.exposition().decode()
    assert 'modelseal_monitor_inputs_total{model="digits"} 8.0' in text
    assert 'modelseal_monitor_anomalies_total{kind="feature",model="digits"} 1.0' in text
    assert 'modelseal_monitor_score_ratio_count{model="digits"} 8.0' in text
    # Seven inputs at or below the threshold (ratio <= 1), one above it.
    assert 'modelseal_monitor_score_ratio_bucket{le="1.0",model="digits"} 7.0' in text
    # Detached: the hooks are gone, nothing else is counted.
    bm.model(_mixed(bm))
    assert mon.inputs == 8


def test_observe_mode_counts_but_does_not_call_back(trained, caplog) -> None:
    bm, baseline = trained
    events = []
    with (
        caplog.at_level(logging.WARNING, logger="modelseal.monitor"),
        watch(bm.model, baseline, mode="observe", on_alert=events.append) as mon,
    ):
        bm.model(_mixed(bm))
    assert not events and not caplog.text
    assert mon.anomalies == 1 and [e.index for e in mon.events] == [3]


def test_block_mode_raises_before_the_output_is_returned(trained) -> None:
    bm, baseline = trained
    outputs = []
    with watch(bm.model, baseline, mode="block") as mon:
        outputs.append(bm.model(torch.from_numpy(bm.x_clean[:16])))  # clean: passes
        with pytest.raises(AnomalyBlockedError) as info:
            outputs.append(bm.model(_mixed(bm)))
    assert len(outputs) == 1
    assert [e.index for e in info.value.events] == [3]
    assert info.value.exit_code == 1 and "blocked" in info.value.diagnostics()
    assert mon.blocked == 1
    assert 'modelseal_monitor_blocked_batches_total{model="model"} 1.0' in (
        mon.metrics.exposition().decode()
    )


def test_nonfinite_activations_are_anomalies(trained) -> None:
    bm, baseline = trained
    x = torch.from_numpy(bm.x_clean[:4].copy())
    x[1, 0] = float("nan")
    with watch(bm.model, baseline, mode="observe") as mon:
        bm.model(x)
    assert [(e.index, e.kind) for e in mon.events] == [(1, "nonfinite")]


def test_metrics_endpoint_serves_on_loopback(trained) -> None:
    bm, baseline = trained
    metrics = MonitorMetrics()
    server = serve_metrics(metrics)
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        with watch(bm.model, baseline, metrics=metrics, name="m1"):
            bm.model(torch.from_numpy(bm.x_clean[:5]))
        with urllib.request.urlopen(server.url, timeout=10) as response:
            body = response.read().decode()
        assert 'modelseal_monitor_inputs_total{model="m1"} 5.0' in body
    finally:
        server.close()


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_baseline_round_trips_exactly(trained, tmp_path, suffix: str) -> None:
    bm, baseline = trained
    path = save_baseline(baseline, tmp_path / f"baseline{suffix}")
    loaded = load_baseline(path)
    assert loaded.layers == baseline.layers and loaded.threshold == baseline.threshold
    assert np.array_equal(loaded.model.transform, baseline.model.transform)
    x = torch.from_numpy(bm.x_clean[:50])
    assert np.array_equal(check(bm.model, loaded, x).scores, check(bm.model, baseline, x).scores)
    assert not list(tmp_path.glob(".*.tmp"))


def test_check_report_matches_the_threshold(trained) -> None:
    bm, baseline = trained
    report = check(bm.model, baseline, _mixed(bm))
    assert [r.index for r in report.alerts] == [3]
    assert report.alerts[0].predicted == 0  # the backdoor fired: the monitor still flags it
    assert len(report.results) == 8


def test_multi_layer_baseline(trained) -> None:
    bm, _ = trained
    baseline = calibrate(bm.model, bm.x_calib[:200], layers=["0", "2"])
    assert baseline.layers == ("0", "2") and baseline.feature_dim == 512
    report = check(bm.model, baseline, _mixed(bm))
    assert [r.index for r in report.alerts] == [3]


def test_malformed_and_mismatched_baselines_are_clear_errors(trained, tmp_path) -> None:
    bm, baseline = trained
    bad = tmp_path / "bad.json"
    for content in ("not json", "[1, 2]", json.dumps({"format": "other"})):
        bad.write_text(content)
        with pytest.raises(BaselineError):
            load_baseline(bad)
    data = baseline.to_dict()
    data["arrays"]["mean"] = data["arrays"]["mean"][:-1]
    with pytest.raises(BaselineError, match="mean has the wrong length"):
        Baseline.from_dict(data)
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path / "missing.json")
    other = torch.nn.Sequential(torch.nn.Linear(64, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))
    with pytest.raises(BaselineError, match="other tensors"):
        watch(other, baseline).attach()
    with pytest.raises(MonitorError, match="mode"):
        watch(bm.model, baseline, mode="loud")
    with pytest.raises(BaselineError, match="no module named"):
        calibrate(bm.model, bm.x_calib[:20], layers=["nope"])
    with pytest.raises(BaselineError, match="at least 3"):
        calibrate(bm.model, bm.x_calib[:2])


def test_importing_without_torch_works_and_calls_explain() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import modelseal, modelseal.monitor as m\n"
        "try:\n"
        "    m.calibrate(object(), [1])\n"
        "except m.TorchUnavailableError as e:\n"
        "    print('ok', e.advice)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ok install the extra")
