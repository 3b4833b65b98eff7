"""The integrity commands: output, exit codes 0 valid / 1 invalid / 2 usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelseal.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out, out.err


def test_keygen_sign_verify_exit_codes(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSEAL_KEY_PASSPHRASE", "pw")
    prefix = str(tmp_path / "rel")
    code, out, _ = run(capsys, "keygen", "-o", prefix, "--encrypt")
    assert code == 0 and "(encrypted)" in out
    sig = str(tmp_path / "m.sig")
    code, out, _ = run(capsys, "sign", str(model), "--key", prefix + ".priv.pem", "-o", sig)
    assert code == 0 and "signed toy-model: 6 files" in out
    code, out, _ = run(capsys, "verify", str(model), "--key", prefix + ".pub.pem", "-s", sig)
    assert code == 0 and out.startswith("VALID")
    (model / "config.json").write_text("{}")
    code, out, _ = run(
        capsys, "verify", str(model), "--key", prefix + ".pub.pem", "-s", sig, "-f", "json"
    )
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False and data["changed"][0]["path"] == "config.json"
    assert len(data["changed"][0]["expected"]) == 64


def test_usage_errors_exit_2(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ec_keys
) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(capsys, "verify", str(model), "-s", str(tmp_path / "missing.sig"),
                       "--key", str(ec_keys.public_key))  # fmt: skip
    assert code == 2 and "cannot read signature" in err
    code, _, err = run(capsys, "verify", str(model), "-s", str(ec_keys.public_key))
    assert code == 2 and "give a public key" in err
    code, _, err = run(capsys, "sign", str(model), "--key", str(ec_keys.public_key))
    assert code == 2 and "not a PEM private key" in err and "Traceback" not in err


def test_broken_bundle_exit_1_one_line(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ec_keys
) -> None:  # type: ignore[no-untyped-def]
    sig = tmp_path / "b.sig"
    sig.write_text("{}")
    code, _, err = run(
        capsys, "verify", str(model), "--key", str(ec_keys.public_key), "-s", str(sig)
    )
    assert code == 1
    assert err.strip().count("\n") == 0 and "media type" in err


def test_attest_and_provenance_show(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ec_keys
) -> None:  # type: ignore[no-untyped-def]
    prov = str(tmp_path / "p.sig")
    code, out, _ = run(
        capsys, "attest", str(model), "--key", str(ec_keys.private_key), "-o", prov,
        "--base-model", "org/base@" + "ab" * 32, "--dataset", "data@" + "cd" * 32,
        "--code", "repo@" + "12" * 20, "--param", "lr=0.1",
    )  # fmt: skip
    assert code == 0 and "attested toy-model" in out
    code, out, _ = run(capsys, "provenance", "show", prov, "--key", str(ec_keys.public_key))
    assert code == 0
    assert "signature:   verified" in out and "base model:  org/base@sha256:" in out
    assert "param:       lr = 0.1" in out
    sig = str(tmp_path / "m.sig")
    run(capsys, "sign", str(model), "--key", str(ec_keys.private_key), "-o", sig)
    code, out, _ = run(
        capsys, "verify", str(model), "--key", str(ec_keys.public_key), "-s", sig,
        "--provenance", prov, "--expect-base-model", "org/other",
    )  # fmt: skip
    assert code == 1 and "provenance: base model" in out


def test_encrypted_key_without_passphrase_is_usage_error(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelseal.integrity import generate_keypair

    keys = generate_keypair(tmp_path / "enc", passphrase="pw")
    monkeypatch.delenv("MODELSEAL_KEY_PASSPHRASE", raising=False)
    code, _, err = run(capsys, "sign", str(model), "--key", str(keys.private_key),
                       "-o", str(tmp_path / "m.sig"))  # fmt: skip
    assert code == 2 and "encrypted" in err and "MODELSEAL_KEY_PASSPHRASE" in err
    assert not (tmp_path / "m.sig").exists()


def test_tensor_hash_option_chooses_the_leaves(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], ec_keys
) -> None:  # type: ignore[no-untyped-def]
    from modelseal.integrity import read_tensor_manifest

    for choice in ("sha256", "blake3"):
        sig = tmp_path / f"{choice}.sig"
        argv = ["sign", str(model), "--key", str(ec_keys.private_key), "-o", str(sig)]
        assert run(capsys, *argv, "--tensor-hash", choice)[0] == 0
        manifests = read_tensor_manifest(sig, key=ec_keys.public_key)
        assert {m.algorithm for m in manifests.values()} == {choice}
    code, _, err = run(capsys, "sign", str(model), "--key", str(ec_keys.private_key),
                       "--tensor-hash", "md5")  # fmt: skip
    assert code == 2 and "md5" in err
