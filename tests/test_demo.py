"""`make demo` keeps working: the end-to-end demo runs every step with the expected exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "MODELSEAL_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-m", "modelseal.demo", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "demo finished: every step behaved as expected" in result.stdout
    assert (tmp_path / "demo" / "tiny-model.sig").is_file()
    assert (tmp_path / "demo" / "pulled-tiny" / "model.safetensors").is_file()
    assert not (tmp_path / "demo" / "pulled-evil").exists()
