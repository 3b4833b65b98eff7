"""A hub mirror built in code: a few hundred small models, benign and malicious.

Layout: ``hub/org<k>/model<i>/`` Hugging Face style directories (config, tokenizer
files, SafeTensors weights) and ``loose/`` standalone files. Malicious files are
hand-assembled pickles whose payload is ``exec("print('pwned')")`` (GLOBAL +
REDUCE; nothing here is ever unpickled), also inside a zip. Some models name
custom code in ``auto_map`` that is missing (suspicious) while others ship the
same ``config.json`` with the file present (clean): a cache must tell them apart.

:func:`build_mirror` returns the verdict each file must get.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tests.samples.pickles import call_pickle
from tests.samples.safetensors_samples import raw_safetensors

__all__ = ["EVIL_PICKLE", "build_mirror"]

EVIL_PICKLE = call_pickle("builtins", "exec", "print('pwned')")
_BENIGN_PICKLE = call_pickle("collections", "OrderedDict")
_AUTO_MAP_CONFIG = json.dumps(
    {"model_type": "tiny", "auto_map": {"AutoModel": "modeling_tiny.TinyModel"}}
)
_MODELING = "import torch\n\nclass TinyModel(torch.nn.Module):\n    pass\n"


def _weights(index: int) -> bytes:
    data = index.to_bytes(4, "little") * 4
    header = {
        "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "__metadata__": {"format": "pt", "model": str(index)},
    }
    return raw_safetensors(header, data)


def _zip_with(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "weights inside")
        archive.writestr(name, data)
    return buffer.getvalue()


def build_mirror(root: Path, *, models: int = 180, standalone: int = 20) -> dict[str, str]:
    """Write the mirror under ``root``; relpath -> expected verdict of every file."""
    expected: dict[str, str] = {}

    def put(relpath: str, data: bytes | str, verdict: str) -> None:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        expected[relpath] = verdict

    for i in range(models):
        base = f"hub/org{i % 9}/model{i:03d}"
        put(
            f"{base}/tokenizer.json",
            json.dumps({"version": "1.0", "model": {"type": "BPE"}}),
            "clean",
        )
        put(
            f"{base}/tokenizer_config.json",
            json.dumps({"chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}),
            "clean",
        )
        put(f"{base}/model.safetensors", _weights(i), "clean")
        if i % 15 == 0:
            put(f"{base}/config.json", _AUTO_MAP_CONFIG, "suspicious")  # code is missing
        elif i % 15 == 1:
            put(f"{base}/config.json", _AUTO_MAP_CONFIG, "clean")
            put(f"{base}/modeling_tiny.py", _MODELING, "clean")
        else:
            put(f"{base}/config.json", json.dumps({"model_type": "tiny", "id": i}), "clean")
        if i % 10 == 3:
            put(f"{base}/pytorch_model.bin", EVIL_PICKLE, "malicious")
        if i % 25 == 7:
            put(f"{base}/extra/weights.zip", _zip_with("data.pkl", EVIL_PICKLE), "malicious")
    for j in range(standalone):
        if j % 4 == 0:
            put(f"loose/evil{j:02d}.pkl", EVIL_PICKLE, "malicious")
        elif j % 4 == 1:
            put(f"loose/state{j:02d}.pkl", _BENIGN_PICKLE, "clean")
        else:
            put(f"loose/notes{j:02d}.txt", f"release notes {j}\n", "clean")
    return expected
