"""The name-claims table: which names claim which format family."""

from __future__ import annotations

import pytest

from modelseal.formats.claims import CLAIMS, claim_for, could_be_model, is_lfs_pointer
from modelseal.formats.format import Format


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("pytorch_model.bin", "PyTorch weight file"),
        ("PYTORCH_MODEL-00001-of-00002.BIN", "PyTorch weight file"),
        ("diffusion_pytorch_model.bin", "PyTorch weight file"),
        ("optimizer.bin", "model weight file (PyTorch, safetensors, GGUF...)"),
        ("model.safetensors", "safetensors file"),
        ("last.ckpt", "checkpoint (PyTorch or safetensors)"),
        ("model.tar.gz", "gzip-compressed tar archive"),
        ("model.tgz", "gzip-compressed tar archive"),
        ("saved_model.pb", "protobuf (TensorFlow / ONNX)"),
    ],
)
def test_claiming_names(name: str, family: str) -> None:
    claim = claim_for(name)
    assert claim is not None and claim.family == family


@pytest.mark.parametrize(
    "name",
    ["vocab.txt", "config.json", "README.md", ".gitattributes", "group1-shard2of3.bin", "model"],
)
def test_names_that_claim_nothing(name: str) -> None:
    assert claim_for(name) is None


def test_every_row_accepts_formats_or_is_an_explicit_non_claim() -> None:
    patterns = [c.pattern for c in CLAIMS]
    assert len(patterns) == len(set(patterns))
    raw = [c for c in CLAIMS if not c.accepts]
    assert [c.pattern for c in raw] == ["group*-shard*of*.bin"]
    pt = claim_for("x.pt")
    assert pt is not None and Format.PICKLE in pt.accepts and Format.ZIP not in pt.accepts


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("readme.txt", False),
        ("dir/config.JSON", False),
        ("logo.png", False),
        ("model.pkl", True),
        ("archive/data/0", True),
        ("inference.py", True),
        ("chat.jinja", True),
        ("weights.dat", True),
    ],
)
def test_could_be_model(name: str, model: bool) -> None:
    assert could_be_model(name) is model


def test_lfs_pointer() -> None:
    assert is_lfs_pointer(b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\n")
    assert not is_lfs_pointer(b"version 1\n")
