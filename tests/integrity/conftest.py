"""Fixtures for integrity tests: key pairs and small model directories built in code."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.integrity import generate_keypair
from modelseal.integrity.signing.keys import KeyPair
from tests.samples.models import build_model_dir


@pytest.fixture(scope="session")
def ec_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """An unencrypted EC P-256 key pair."""
    return generate_keypair(tmp_path_factory.mktemp("keys") / "ec")


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A second, unrelated EC P-256 key pair."""
    return generate_keypair(tmp_path_factory.mktemp("keys2") / "other")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A fresh small model directory."""
    return build_model_dir(tmp_path / "toy-model")
