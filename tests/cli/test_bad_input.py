"""Bad input a new user tries: one clear line on stderr, the right exit code, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelseal.cli import main
from tests.samples.pickles import call_pickle

#: Bytes that are neither UTF-8 nor a PEM key nor JSON (a pickle opcode soup).
GARBAGE = b"\x80\x04\x95garbage\xff\xfe\xae\x00"


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _usage_error(args: list[str], capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    code, _, err = _run(args, capsys)
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("error: "), err
    for text in expected:
        assert text in err.splitlines()[0], err
    return err


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_text('{"model_type": "toy"}')
    return root


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.pkl"
    path.write_bytes(GARBAGE)
    return path


def test_a_binary_policy_file_is_a_usage_error(
    model: Path, garbage: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _usage_error(["policy", "validate", str(garbage)], capsys, "not a policy file", "UTF-8")
    _usage_error(["check", str(model), "--policy", str(garbage)], capsys, "not a policy file")


@pytest.mark.parametrize("policy", ["standard", "strict"])
def test_a_key_that_is_not_a_public_key_is_a_usage_error(
    model: Path, garbage: Path, policy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # under "standard" no signature is required: the key used to be ignored (ALLOW, exit 0)
    _usage_error(
        ["check", str(model), "--key", str(garbage), "--policy", policy],
        capsys,
        str(garbage),
        "not a PEM public key",
    )


def test_check_with_a_valid_key_still_decides(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelseal.integrity import generate_keypair

    keys = generate_keypair(tmp_path / "k")
    code, out, _ = _run(["check", str(model), "--key", str(keys.public_key)], capsys)
    assert code in (0, 1) and "policy 'standard'" in out


def test_trusting_a_file_that_is_not_a_public_key_is_a_usage_error(
    garbage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "registry"
    assert _run(["admin", "--data", str(data), "create-user", "alice"], capsys)[0] == 0
    _usage_error(
        ["admin", "--data", str(data), "trust-key", "alice", str(garbage)],
        capsys,
        "not a PEM public key",
    )


def test_trust_key_takes_the_public_key_out_of_a_certificate_or_a_pem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelseal.integrity import generate_keypair

    data = tmp_path / "registry"
    keys = generate_keypair(tmp_path / "release")
    assert _run(["admin", "--data", str(data), "create-user", "alice"], capsys)[0] == 0
    code, out, err = _run(
        ["admin", "--data", str(data), "trust-key", "alice", str(keys.public_key)], capsys
    )
    assert code == 0, err
    assert out.startswith("alice trusts key ")


def _bom(model: Path, output: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> Path:
    code, _, err = _run(["sbom", "generate", str(model), "-f", fmt, "-o", str(output)], capsys)
    assert code == 0, err
    return output


@pytest.mark.parametrize("advisories", ["binary", "empty-dir", "no-id"])
def test_audit_against_advisories_that_cannot_be_read_is_a_usage_error(
    model: Path, tmp_path: Path, advisories: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bom = _bom(model, tmp_path / "bom.json", "cyclonedx", capsys)
    path = tmp_path / "osv"
    if advisories == "binary":
        path.write_bytes(GARBAGE)
    elif advisories == "empty-dir":
        path.mkdir()
    else:
        path.write_text(json.dumps([{"affected": []}]))
    # it used to warn, audit against 0 advisories and report "no advisory matches" (exit 0)
    _usage_error(
        ["sbom", "audit", str(bom), "--advisories", str(path)],
        capsys,
        "no OSV advisory could be read",
    )


@pytest.mark.parametrize(
    ("old_fmt", "new_fmt"), [("cyclonedx", "cyclonedx"), ("spdx3", "spdx3"), ("cyclonedx", "spdx3")]
)
def test_sbom_diff_shows_the_critical_finding_of_an_added_malicious_file(
    tmp_path: Path, old_fmt: str, new_fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    for root in (v1, v2):
        root.mkdir()
        (root / "config.json").write_text('{"model_type": "toy"}')
    (v2 / "evil.pkl").write_bytes(call_pickle("os", "system", "true"))
    old = _bom(v1, tmp_path / f"old.{old_fmt}.json", old_fmt, capsys)
    new = _bom(v2, tmp_path / f"new.{new_fmt}.json", new_fmt, capsys)
    code, out, _ = _run(["sbom", "diff", str(old), str(new), "-f", "json"], capsys)
    assert code == 1
    changes = json.loads(out)["changes"]
    findings = [c for c in changes if c["kind"] == "finding"]
    assert [c["change"] for c in findings] == ["added"], changes
    assert findings[0]["name"].startswith("evil.pkl") and "MS-PICKLE" in findings[0]["name"]
    assert findings[0]["new"].startswith("critical: ")
    # the same model scanned in another directory: findings compare equal (no diff)
    same = _bom(v2, tmp_path / f"same.{new_fmt}.json", new_fmt, capsys)
    code, out, _ = _run(["sbom", "diff", str(new), str(same), "-f", "json"], capsys)
    assert not [c for c in json.loads(out)["changes"] if c["kind"] == "finding"]


def test_verify_with_the_wrong_key_says_so_and_names_the_bundles_key(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelseal.integrity import generate_keypair

    signer = generate_keypair(tmp_path / "signer")
    other = generate_keypair(tmp_path / "other")
    assert _run(["sign", str(model), "--key", str(signer.private_key)], capsys)[0] == 0
    code, out, _ = _run(["verify", str(model), "--key", str(other.public_key)], capsys)
    assert code == 1
    headline = out.splitlines()[0]
    assert "?" not in headline
    assert headline.startswith("INVALID: wrong key: the signature does not match this key")
    code, out, _ = _run(["verify", str(model), "--key", str(signer.public_key)], capsys)
    assert code == 0
    hint = out.split("key sha256:")[1][:16]  # the signer's key id, as verify shows it
    assert hint in headline


def test_identify_skips_a_malformed_fingerprint_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    weights = tmp_path / "model.safetensors"
    rng = np.random.default_rng(0)
    save_file({"w": rng.standard_normal((64, 64)).astype(np.float32)}, str(weights))
    known = tmp_path / "known"
    known.mkdir()
    code, _, err = _run(
        ["weights", "fingerprint", str(weights), "-o", str(known / "base.json")], capsys
    )
    assert code == 0, err
    (known / "binary.json").write_bytes(GARBAGE)
    (known / "other.json").write_text('{"kind": "something else"}')
    code, out, err = _run(["weights", "identify", str(weights), "--against", str(known)], capsys)
    assert code == 0, err  # the good fingerprint still matches: derived
    assert "model.safetensors" in out and "Traceback" not in err
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings), err
    assert "binary.json" in warnings[0] and "other.json" in warnings[1]
    # nothing readable at all: a usage error, still one line
    (known / "base.json").unlink()
    code, _, err = _run(["weights", "identify", str(weights), "--against", str(known)], capsys)
    assert code == 2 and "no readable fingerprint" in err and "Traceback" not in err


def test_a_vocab_txt_that_starts_with_a_bracket_is_text_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\nthe\n")
    (tmp_path / "config.json").write_text('["still", "json"]')
    code, out, _ = _run(["scan", str(tmp_path), "-f", "json"], capsys)
    assert code == 0
    formats = {Path(r["path"]).name: r["format"] for r in json.loads(out)["results"]}
    assert formats == {"vocab.txt": "text", "config.json": "json"}
