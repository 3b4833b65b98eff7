"""The end-to-end demo on built-in data: ``python -m modelseal.demo [DIR]`` (``make demo``).

It writes a small safe model and a malicious look-alike, then runs the real CLI
on them step by step, printing each command and its output. Every payload is
harmless (``os.system("true")``) and is only ever written, never loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["build_malicious_model", "build_safe_model", "main"]

_CARD = """---
license: apache-2.0
base_model: modelseal/tiny-base
datasets:
  - modelseal/digits
language:
  - en
pipeline_tag: text-classification
tags:
  - demo
---
# tiny-demo

A two-layer classifier written by `modelseal.demo` to show the toolchain.
"""


def _safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name, array in tensors.items():
        size = array.nbytes
        header[name] = {
            "dtype": {"float32": "F32", "float16": "F16"}[str(array.dtype)],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(raw)) + raw + b"".join(a.tobytes() for a in tensors.values())


def build_safe_model(folder: Path) -> Path:
    """Write a small, clean Hugging Face style model directory and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tensors = {
        "classifier.bias": np.zeros(10, dtype=np.float32),
        "classifier.weight": (rng.standard_normal((10, 32)) * 0.1).astype(np.float32),
        "encoder.bias": np.zeros(32, dtype=np.float32),
        "encoder.weight": (rng.standard_normal((32, 64)) * 0.1).astype(np.float32),
    }
    (folder / "model.safetensors").write_bytes(_safetensors_bytes(tensors, {"format": "pt"}))
    config = {
        "architectures": ["TinyClassifier"],
        "model_type": "tiny",
        "hidden_size": 32,
        "num_labels": 10,
        "torch_dtype": "float32",
        "transformers_version": "4.46.0",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "README.md").write_text(_CARD)
    tokenizer = {
        "chat_template": "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer, indent=2) + "\n")
    return folder


def _malicious_pickle() -> bytes:
    # Hand-assembled opcodes: os.system("true") runs during unpickling, then a
    # harmless dict is returned so the file still "loads". Nothing here executes it.
    call = b"cos\nsystem\n(Vtrue\ntR0"
    return b"\x80\x02" + call + b"}q\x00X\x07\x00\x00\x00weightsq\x01K\x01s."


def build_malicious_model(folder: Path) -> Path:
    """Write a look-alike model whose weights file runs a command when loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "pytorch_model.bin", "w") as archive:
        archive.writestr("archive/data.pkl", _malicious_pickle())
        archive.writestr("archive/version", "3\n")
    config = {
        "architectures": ["TinyClassifier"],
        "model_type": "tiny",
        "auto_map": {"AutoModel": "modeling_tiny.TinyClassifier"},
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "modeling_tiny.py").write_text(
        "import subprocess\n\n\nclass TinyClassifier:\n"
        "    def __init__(self):\n        subprocess.run(['true'])\n"
    )
    return folder


def _run(title: str, *args: str, expect: int = 0, capture: bool = False) -> str:
    print(f"\n\033[1m== {title}\033[0m\n$ modelseal {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "modelseal", *args],
        check=False,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    if result.returncode != expect:
        raise SystemExit(f"demo step failed: expected exit {expect}, got {result.returncode}")
    return result.stdout or ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _registry(data: Path, port: int) -> Iterator[str]:
    """Run `modelseal serve` on loopback for the duration of the block."""
    log = open(data.parent / "registry.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "modelseal", "serve", "--data", str(data), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the registry did not start; see {log.name}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _registry_steps(work: Path, safe: Path, evil: Path, keys: Path) -> None:
    data = work / "registry"
    print(f"\nstarting a local registry (SQLite + blobs under {data})")
    _run(
        "create a user (site admin) and its namespace",
        "admin",
        "--data",
        str(data),
        "create-user",
        "alice",
        "--admin",
    )
    token = _run(
        "create an API token (shown once, stored only as a hash)",
        *("admin", "--data", str(data), "token", "create", "alice"),
        *("-a", "read", "-a", "push", "-a", "admin"),
        capture=True,
    ).strip()
    _run(
        "trust the publisher's key in namespace alice",
        "admin",
        "--data",
        str(data),
        "trust-key",
        "alice",
        f"{keys}.pub.pem",
    )
    with _registry(data, _free_port()) as url:
        _run("log in", "login", url, "--token", token)
        _run(
            "push the safe model (signed, scanned and given an SBOM by the server: published)",
            *("push", str(safe), "alice/tiny:1.0", "--key", f"{keys}.priv.pem", "--tag", "latest"),
        )
        _run(
            "push the malicious model (quarantined with the reasons, exit 1)",
            *("push", str(evil), "alice/evil:1.0", "--key", f"{keys}.priv.pem"),
            expect=1,
        )
        _run(
            "pull by tag: digests, signature and scan verified before anything lands",
            *("pull", "alice/tiny:latest", str(work / "pulled-tiny")),
        )
        _run(
            "a quarantined version cannot be pulled (exit 1)",
            "pull",
            "alice/evil:1.0",
            str(work / "pulled-evil"),
            expect=1,
        )


def main(argv: list[str] | None = None) -> int:
    """Build the demo models under DIR (default ./demo-output) and run each step."""
    args = sys.argv[1:] if argv is None else argv
    work = Path(args[0] if args else "demo-output").resolve()
    if work.exists():
        shutil.rmtree(work)
    # Keep the demo's registry login out of the user's own ~/.modelseal.
    os.environ["MODELSEAL_HOME"] = str(work / "home")
    safe = build_safe_model(work / "tiny-model")
    evil = build_malicious_model(work / "evil-model")
    print(f"wrote a safe model to {safe} and a malicious look-alike to {evil}")
    keys = work / "keys" / "publisher"
    signature = work / "tiny-model.sig"
    _run("scan the safe model (exit 0: clean)", "scan", str(safe))
    _run("scan the malicious model (exit 1: not clean)", "scan", str(evil), expect=1)
    _run("make a signing key pair", "keygen", "-o", str(keys))
    _run(
        "sign the safe model (OpenSSF model-signing bundle)",
        *("sign", str(safe), "--key", f"{keys}.priv.pem", "-o", str(signature)),
    )
    _run(
        "verify it (exit 0: valid)",
        *("verify", str(safe), "--key", f"{keys}.pub.pem", "--signature", str(signature)),
    )
    _run(
        "write its SBOM (CycloneDX 1.6 ML-BOM)",
        *("sbom", str(safe), "--format", "cyclonedx", "-o", str(work / "tiny-model.cdx.json")),
    )
    _registry_steps(work, safe, evil, keys)
    _run(
        "the deploy gate allows the signed, clean model (exit 0)",
        *("check", str(safe), "--policy", "strict", "--key", f"{keys}.pub.pem"),
    )
    weights = safe / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    print("\nflipped one bit in the last weight of tiny-model/model.safetensors")
    _run(
        "verify names the changed file (exit 1: invalid)",
        *("verify", str(safe), "--key", f"{keys}.pub.pem", "--signature", str(signature)),
        expect=1,
    )
    _run(
        "the gate denies the changed model (exit 1)",
        *("check", str(safe), "--policy", "strict", "--key", f"{keys}.pub.pem"),
        expect=1,
    )
    _run(
        "the gate denies the malicious model (exit 1)",
        *("check", str(evil), "--policy", "standard"),
        expect=1,
    )
    print("\ndemo finished: every step behaved as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
