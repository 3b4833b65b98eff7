"""``modelseal monitor calibrate`` / ``check`` on a model directory (exit codes 0/1/2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelseal.cli import main
from modelseal.monitor.modeldir import ModelDirError, load_model_dir, save_model_dir
from tests.samples.monitor import mlp_layers, train_backdoored

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    bm = train_backdoored("patch", 2, epochs=30)
    root = tmp_path_factory.mktemp("monitor-cli")
    save_model_dir(root / "model", bm.model, mlp_layers(), (64,))
    np.save(root / "clean.npy", bm.x_calib[:200])
    mixed = bm.x_clean[:10].copy()
    mixed[[2, 7]] = bm.x_triggered[:2]
    np.save(root / "mixed.npy", mixed)
    np.save(root / "clean_test.npy", bm.x_clean[:10])
    return root, bm


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    captured = capsys.readouterr()
    return int(info.value.code), captured.out, captured.err


def test_model_dir_round_trips_the_weights(model_dir) -> None:
    root, bm = model_dir
    loaded = load_model_dir(root / "model")
    assert loaded.input_shape == (64,)
    x = torch.from_numpy(bm.x_clean[:20])
    with torch.no_grad():
        assert torch.equal(loaded.model(x), bm.model(x))


def test_calibrate_then_check_flags_the_triggered_inputs(model_dir, capsys) -> None:
    root, _ = model_dir
    baseline = root / "baseline.json"
    code, _, err = _run(
        capsys, "monitor", "calibrate", str(root / "model"), "--inputs", str(root / "clean.npy"),
        "-o", str(baseline),
    )  # fmt: skip
    assert code == 0 and "wrote" in err and baseline.is_file()
    code, out, _ = _run(
        capsys, "monitor", "check", str(root / "model"), "--baseline", str(baseline),
        "--inputs", str(root / "mixed.npy"), "--format", "json",
    )  # fmt: skip
    document = json.loads(out)
    assert code == 1
    assert document["inputs"] == 10 and document["alerts"] == 2
    assert [r["index"] for r in document["results"] if r["alert"]] == [2, 7]
    assert all(r["predicted"] == 0 for r in document["results"] if r["alert"])
    code, out, _ = _run(
        capsys, "monitor", "check", str(root / "model"), "--baseline", str(baseline),
        "--inputs", str(root / "clean_test.npy"),
    )  # fmt: skip
    assert code == 0 and "0 anomalous" in out and "not verified" in out
    code, out, _ = _run(
        capsys, "monitor", "check", str(root / "model"), "--baseline", str(baseline),
        "--inputs", str(root / "mixed.npy"),
    )  # fmt: skip
    assert code == 1 and "2 anomalous" in out and "x threshold" in out


def test_signed_model_is_loaded_verified_and_tampering_is_refused(model_dir, capsys) -> None:
    from modelseal.integrity import generate_keypair, sign

    root, _ = model_dir
    signed = root / "signed"
    loaded = load_model_dir(root / "model")
    save_model_dir(signed, loaded.model, mlp_layers(), (64,))
    keys = generate_keypair(root / "publisher")
    signature = root / "signed.sig"
    sign(signed, key=keys.private_key, output=signature)
    baseline = root / "signed-baseline.npz"
    args = ("--signature", str(signature), "--key", str(keys.public_key))
    code, _, _ = _run(
        capsys, "monitor", "calibrate", str(signed), "--inputs", str(root / "clean.npy"),
        "-o", str(baseline), *args,
    )  # fmt: skip
    assert code == 0
    check = ("monitor", "check", str(signed), "--baseline", str(baseline))
    code, out, _ = _run(capsys, *check, "--inputs", str(root / "clean_test.npy"), *args)
    assert code == 0 and "not verified" not in out
    weights = signed / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # one bit of the last tensor
    weights.write_bytes(bytes(data))
    code, _, err = _run(capsys, *check, "--inputs", str(root / "clean_test.npy"), *args)
    assert code == 1 and "does not match its signature" in err


def test_bad_inputs_are_clear_errors(model_dir, capsys, tmp_path) -> None:
    root, _ = model_dir
    model = str(root / "model")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 65), dtype=np.float32))
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for bad in (wrong, pickled):
        code, _, err = _run(capsys, "monitor", "calibrate", model, "--inputs", str(bad),
                            "-o", str(tmp_path / "b.json"))  # fmt: skip
        assert code == 2 and err.startswith("error:") and "Traceback" not in err
    assert not (tmp_path / "b.json").exists()
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    code, _, err = _run(capsys, "monitor", "check", str(not_a_model), "--baseline",
                        str(root / "clean.npy"), "--inputs", str(root / "clean.npy"))  # fmt: skip
    assert code == 2 and "modelseal-model.json" in err
    code, _, err = _run(capsys, "monitor", "check", model, "--baseline", str(root / "clean.npy"),
                        "--inputs", str(root / "clean.npy"))  # fmt: skip
    assert code == 2 and "baseline" in err


def test_model_descriptions_are_validated(tmp_path) -> None:
    from modelseal.monitor.modeldir import build_model

    for layers, message in [
        ([{"type": "exec", "code": "print(1)"}], "unknown or missing type"),
        ([{"type": "linear", "in_features": 4}], "missing argument"),
        ([{"type": "linear", "in_features": 4, "out_features": "x"}], "invalid value"),
        ([{"type": "relu", "inplace": True}], "unknown argument"),
        ([], "non-empty"),
    ]:
        with pytest.raises(ModelDirError, match=message):
            build_model(layers)
    (tmp_path / "modelseal-model.json").write_text(
        json.dumps({"format": "modelseal-model/1", "input_shape": [4], "layers": mlp_layers()})
    )
    with pytest.raises(ModelDirError, match="weights file not found"):
        load_model_dir(tmp_path)
