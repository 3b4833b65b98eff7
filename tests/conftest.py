"""Shared fixtures. Test samples are built in code (tests/samples/); payloads are harmless."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep tests away from the user's real caches and settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("MODELSEAL_HOME", str(home / "modelseal"))
    monkeypatch.delenv("MODELSEAL_POLICY", raising=False)
    os.environ.setdefault("NO_COLOR", "1")
