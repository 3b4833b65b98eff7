"""A scan must not import heavy optional packages: ``onnx`` (with ml_dtypes) and ``gguf``.

Behaviour, not time: a fresh interpreter scans an ONNX and a GGUF file and then reports
which of those packages ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.samples.chat_templates import CHATML
from tests.samples.gguf import write_gguf
from tests.samples.onnx_models import linear_model, save

_HEAVY = ("onnx", "gguf", "ml_dtypes", "google.protobuf", "tensorflow", "torch", "h5py")

_PROGRAM = """
import json, sys
from modelseal.scan import scan
report = scan(sys.argv[1:])
print(json.dumps({
    "verdicts": [[r.path, r.format, r.verdict.value] for r in report.results],
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in %r or m in %r),
}))
"""


def test_scanning_onnx_and_gguf_imports_neither_package(tmp_path: Path) -> None:
    onnx_path = save(linear_model(), tmp_path / "model.onnx")
    gguf_path = write_gguf(tmp_path / "model.gguf", templates={"tokenizer.chat_template": CHATML})
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    program = _PROGRAM % (tuple(m.split(".")[0] for m in _HEAVY), _HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", program, str(onnx_path), str(gguf_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout)
    assert [v[1:] for v in result["verdicts"]] == [["onnx", "clean"], ["gguf", "clean"]]
    assert [m for m in result["loaded"] if m.split(".")[0] in ("onnx", "gguf", "ml_dtypes")] == []
    assert "google.protobuf" not in result["loaded"]
