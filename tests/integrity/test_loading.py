"""Verified torch loading: digest checked, scanned, then torch.load(weights_only=True)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.integrity import TensorVerificationError, sign, torch_load
from modelseal.integrity.signing.keys import KeyPair


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch = pytest.importorskip("torch")
    root = tmp_path / "ckpt"
    root.mkdir()
    torch.save({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, root / "model.pt")
    return root


def test_torch_load_verified(checkpoint: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    sig = tmp_path / "c.sig"
    sign(checkpoint, key=ec_keys.private_key, output=sig)
    state = torch_load(checkpoint / "model.pt", signature=sig, key=ec_keys.public_key)
    assert state["w"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_torch_load_refuses_modified_file(
    checkpoint: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    sig = tmp_path / "c.sig"
    sign(checkpoint, key=ec_keys.private_key, output=sig)
    with open(checkpoint / "model.pt", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(TensorVerificationError, match=r"model\.pt"):
        torch_load(checkpoint / "model.pt", signature=sig, key=ec_keys.public_key)


def test_torch_load_refuses_unsigned_file(
    checkpoint: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    sig = tmp_path / "c.sig"
    sign(checkpoint, key=ec_keys.private_key, output=sig)
    (checkpoint / "other.pt").write_bytes((checkpoint / "model.pt").read_bytes())
    with pytest.raises(TensorVerificationError, match="not covered"):
        torch_load(checkpoint / "other.pt", signature=sig, key=ec_keys.public_key)


def test_torch_load_refuses_signed_but_malicious_checkpoint(
    tmp_path: Path, ec_keys: KeyPair
) -> None:
    """A valid signature is not enough: the static scan runs before torch.load."""
    torch = pytest.importorskip("torch")
    import os

    from tests.samples.pickles import Reduce

    root = tmp_path / "evil"
    root.mkdir()
    torch.save({"w": torch.zeros(2), "hook": Reduce(os.system, ("true",))}, root / "model.pt")
    sig = tmp_path / "e.sig"
    sign(root, key=ec_keys.private_key, output=sig)
    with pytest.raises(TensorVerificationError, match="static scan says malicious"):
        torch_load(root / "model.pt", signature=sig, key=ec_keys.public_key)
