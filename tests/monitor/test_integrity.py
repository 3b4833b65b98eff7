"""In-memory weight integrity: every bit flip, in-place edit and NaN injection is named."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from modelseal.monitor import (
    WeightDigests,
    WeightIntegrityError,
    calibrate,
    compare_with_manifest,
    reference_from_files,
    watch,
)

torch = pytest.importorskip("torch")


def _model(dtype=None):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 96),
        torch.nn.BatchNorm1d(96),
        torch.nn.ReLU(),
        torch.nn.Linear(96, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    ).eval()
    return model.to(dtype) if dtype is not None else model


def _bytes(tensor):
    return tensor.detach().reshape(-1).view(torch.uint8)


def test_every_single_bit_flip_is_caught_and_named() -> None:
    model = _model()
    digests = WeightDigests.snapshot(model, chunk_size=256)
    tensors = dict(model.state_dict(keep_vars=True))
    names = [n for n, t in tensors.items() if t.numel() and t.is_floating_point()]
    rng = np.random.default_rng(0)
    for _ in range(200):
        name = names[rng.integers(len(names))]
        raw = _bytes(tensors[name])
        byte, bit = int(rng.integers(raw.numel())), int(rng.integers(8))
        raw[byte] ^= 1 << bit
        report = digests.verify(model)
        assert not report.ok
        assert [(m.name, m.kind, m.chunks) for m in report.mismatches] == [
            (name, "changed", (byte // 256,))
        ]
        start, end = report.mismatches[0].byte_ranges[0]
        assert start <= byte < end
        raw[byte] ^= 1 << bit  # restore
        assert digests.verify(model).ok


def test_in_place_edits_and_replaced_parameters_are_caught() -> None:
    model = _model()
    digests = WeightDigests.snapshot(model)
    edits = {
        "0.weight": lambda: model[0].weight.data[3, :8].add_(1e-4),
        "3.bias": lambda: model[3].bias.data.mul_(1.0001),
        "5.weight": lambda: model[5].weight.data.copy_(model[5].weight.data.flip(0)),
        "1.running_mean": lambda: model[1].running_mean.fill_(0.5),
    }
    for name, edit in edits.items():
        snapshot = {n: t.detach().clone() for n, t in model.state_dict().items()}
        edit()
        report = digests.verify(model)
        assert report.changed == (name,), name
        model.load_state_dict(snapshot)
        assert digests.verify(model).ok
    # A parameter object swapped for another one with other values.
    original = model[3].weight
    model[3].weight = torch.nn.Parameter(original.detach() * 1.5)
    assert digests.verify(model).changed == ("3.weight",)
    model[3].weight = original
    # A tensor that vanished or appeared, or changed shape.
    model[5].register_buffer("extra", torch.zeros(3))
    assert [(m.name, m.kind) for m in digests.verify(model).mismatches] == [("5.extra", "added")]
    del model[5].extra
    model[5].bias = torch.nn.Parameter(torch.zeros(11))
    assert [(m.name, m.kind) for m in digests.verify(model).mismatches] == [("5.bias", "retyped")]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_and_inf_injection_is_caught_with_detail(value: float) -> None:
    model = _model()
    digests = WeightDigests.snapshot(model, chunk_size=1024)
    for name, tensor in model.state_dict(keep_vars=True).items():
        if not tensor.is_floating_point() or not tensor.numel():
            continue
        flat = tensor.detach().reshape(-1)
        index = flat.numel() // 2
        saved = flat[index].item()
        flat[index] = value
        report = digests.verify(model)
        (mismatch,) = report.mismatches
        assert (mismatch.name, mismatch.kind) == (name, "changed")
        assert mismatch.chunks == ((index * flat.element_size()) // 1024,)
        assert mismatch.detail == "contains NaN/Inf"
        flat[index] = saved
    assert digests.verify(model).ok


def test_no_false_alarms_over_many_rechecks_with_inference_between() -> None:
    model = _model()
    digests = WeightDigests.snapshot(model, chunk_size=512, threads=2)
    x = torch.randn(32, 64)
    for _ in range(100):
        with torch.no_grad():
            model(x)
        report = digests.verify(model)
        assert report.ok and not report.mismatches
        assert report.nbytes == digests.nbytes


def test_bfloat16_memory_matches_the_file_digests(tmp_path) -> None:
    """Leaves computed from memory equal those of the safetensors file (signed manifest)."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = _model(torch.bfloat16)
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(path)
    )
    reference = reference_from_files([path])
    report = compare_with_manifest(model, reference)
    assert report.ok and report.against == "manifest"
    assert report.tensors == len(reference)
    model[3].weight.data[0, 0] += 1
    report = compare_with_manifest(model, reference)
    assert not report.ok and report.changed == ("3.weight",)


def test_manifest_prefix_is_found_and_unsigned_tensors_reported(tmp_path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    inner = _model()
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(dict(inner.state_dict()), str(path))
    wrapper = torch.nn.Module()
    wrapper.body = inner
    wrapper.register_buffer("scale", torch.ones(1))
    report = compare_with_manifest(wrapper, reference_from_files([path]))
    assert report.ok
    assert [(m.name, m.kind) for m in report.mismatches] == [("scale", "unsigned")]


def test_watch_checks_memory_against_the_manifest_at_attach(tmp_path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = _model()
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(dict(model.state_dict()), str(path))
    baseline = calibrate(model, torch.randn(40, 64))
    reference = reference_from_files([path])
    with watch(model, baseline, reference=reference, metrics=False) as mon:
        assert mon.manifest_report is not None and mon.manifest_report.ok
    model[0].bias.data[0] = 7.0  # tampered after loading, before the monitor attached
    reports = []
    with watch(model, baseline, reference=reference, on_weights=reports.append) as mon:
        assert not mon.manifest_report.ok
        assert mon.manifest_report.changed == ("0.bias",)
    assert [r.changed for r in reports] == [("0.bias",)]
    with pytest.raises(WeightIntegrityError, match=r"0\.bias"):
        watch(model, baseline, reference=reference, mode="block", metrics=False).attach()


def test_background_rechecks_find_tampering_and_stop_cleanly() -> None:
    model = _model()
    baseline = calibrate(model, torch.randn(40, 64))
    found = threading.Event()
    reports = []

    def on_weights(report) -> None:
        reports.append(report)
        found.set()

    with watch(model, baseline, verify_every=0.02, on_weights=on_weights) as mon:
        watcher = mon._watcher
        assert watcher is not None and watcher.running
        for _ in range(100):  # let several clean re-checks pass: no false alarm
            if mon.weight_checks >= 5:
                break
            threading.Event().wait(0.02)
        assert mon.weight_checks >= 5 and not reports
        _bytes(model[3].weight)[17] ^= 0x10
        assert found.wait(10)
        assert reports[0].changed == ("3.weight",)
        assert mon.verify_weights().changed == ("3.weight",)
        text = mon.metrics.exposition().decode()
        assert 'modelseal_monitor_weight_checks_total{model="model",result="mismatch"}' in text
    assert not watcher.running


@pytest.mark.parametrize("tensor_hash", ["blake3", "sha256"])
def test_memory_is_checked_against_the_signed_manifest(tmp_path, tensor_hash) -> None:
    """The leaves computed from memory match those `modelseal sign` put in the signature
    (BLAKE3 leaves, and the sha256 leaves of signatures made before them)."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from modelseal.integrity import generate_keypair, sign
    from modelseal.monitor import reference_from_signature

    model = _model(torch.bfloat16)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    safetensors_torch.save_file(dict(model.state_dict()), str(model_dir / "model.safetensors"))
    keys = generate_keypair(tmp_path / "publisher")
    signature = tmp_path / "model.sig"
    sign(model_dir, key=keys.private_key, output=signature, tensor_hash=tensor_hash)
    reference = reference_from_signature(signature, key=keys.public_key)
    assert set(reference) == set(model.state_dict())
    assert compare_with_manifest(model, reference).ok
    _bytes(model[5].weight)[3] ^= 0x80
    report = compare_with_manifest(model, reference)
    assert [(m.name, m.kind) for m in report.mismatches] == [("5.weight", "changed")]


def test_block_mode_stops_inference_once_weights_changed() -> None:
    model = _model()
    baseline = calibrate(model, torch.randn(40, 64))
    x = torch.randn(4, 64)
    monitor = watch(model, baseline, mode="block", threshold=1e12, metrics=False)
    with monitor as mon, torch.no_grad():
        model(x)
        model[0].weight.data[0, 0] += 1.0
        assert mon.verify_weights().changed == ("0.weight",)
        with pytest.raises(WeightIntegrityError, match=r"0\.weight") as info:
            model(x)
        assert info.value.exit_code == 1
