"""Hugging Face clients through ``/hf`` vs ``modelseal pull``, side by side in one run.

Starts ``modelseal serve`` (SQLite, local blob store) on loopback, pushes a signed
model of four safetensors shards and a config, then measures, alternating:

- ``huggingface_hub.snapshot_download`` into an empty ``HF_HOME`` (``HF_ENDPOINT`` =
  the registry's ``/hf``): the call itself, timed inside the child process;
- the same call again with the cache filled (only the metadata requests);
- ``modelseal pull`` into a new directory (digests, signature, local re-scan, log
  proofs): the whole command.

Figures: median wall time of the repetitions and MB/s.
Run: ``python -m bench hf`` (``MODELSEAL_BENCH_MIB`` sets the shard size, default 128;
``MODELSEAL_BENCH_REPEAT`` the repetitions, default 3).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_oci import _write_model
from bench.bench_registry_load import RegistryServer

__all__ = ["main"]

_EXE = [sys.executable, "-m", "modelseal"]
_SNAPSHOT = """
import json, time
from huggingface_hub import snapshot_download
started = time.perf_counter()
snapshot_download("bench/model", revision="1.0")
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*_EXE, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"modelseal {' '.join(args[:2])} failed: {done.stdout}{done.stderr}")
    return done.stdout


def _snapshot(endpoint: str, token: str, hf_home: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_TOKEN=token,
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"snapshot_download failed: {done.stdout}{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    """Print the figures."""
    shard_mib = int(os.environ.get("MODELSEAL_BENCH_MIB", "128"))
    repeat = int(os.environ.get("MODELSEAL_BENCH_REPEAT", "3"))
    with tempfile.TemporaryDirectory(prefix="bench-hf-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "MODELSEAL_HOME": str(root / "home")}
        data = root / "data"
        _cli(env, "admin", "--data", str(data), "create-user", "bench")
        token = _cli(
            env,
            "admin",
            "--data",
            str(data),
            "token",
            "create",
            "bench",
            "-a",
            "read",
            "-a",
            "push",
        ).strip()
        _cli(env, "keygen", "-o", str(root / "release"))
        _cli(env, "admin", "--data", str(data), "trust-key", "bench", str(root / "release.pub.pem"))
        total = _write_model(root / "model", shard_mib)
        server = RegistryServer(data)
        server.start()
        try:
            _cli(env, "login", server.url, "--token", token)
            _cli(
                env, "push", str(root / "model"), "bench/model:1.0", "--key",
                str(root / "release.priv.pem"),
            )  # fmt: skip
            cold, warm, pull = [], [], []
            for run in range(repeat):
                hf_home = root / f"hf-{run}"
                cold.append(_snapshot(server.url + "/hf", token, hf_home))
                warm.append(_snapshot(server.url + "/hf", token, hf_home))
                started = time.perf_counter()
                _cli(env, "pull", "bench/model:1.0", str(root / f"pulled-{run}"))
                pull.append(time.perf_counter() - started)
                shutil.rmtree(hf_home)
                shutil.rmtree(root / f"pulled-{run}")
        finally:
            server.stop()
    mb = total / 1e6
    print(f"model: 4 x {shard_mib} MiB safetensors + config = {mb:.0f} MB, medians of {repeat}")
    for name, values in (
        ("snapshot_download via /hf, empty cache", cold),
        ("snapshot_download via /hf, cache filled", warm),
        ("modelseal pull (verify + scan + log)", pull),
    ):
        seconds = statistics.median(values)
        rate = f"{mb / seconds:8.0f} MB/s" if values is not warm else "  (metadata only)"
        print(f"{name:44s} {seconds:7.2f} s  {rate}")


if __name__ == "__main__":
    main()
