"""Benchmark: push and pull a 1 GiB model through `modelseal serve` on loopback.

Targets (issue 8): push >= 300 MB/s, pull >= 500 MB/s, server RSS < 200 MB during
transfers. Run: ``.venv/bin/python bench/bench_registry.py [--size-mib 1024]``.
Push time excludes signing (reported separately) and includes the server's publish
gate (signature verification, scan, SBOM); pull time includes digest checks,
signature verification and the local re-scan.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["main"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_model(root: Path, size: int) -> None:
    """A safetensors file of ``size`` bytes of F32 data (pseudo-random, streamed) + config."""
    import numpy as np

    root.mkdir(parents=True)
    count = size // 4
    header = json.dumps({"w": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}})
    raw = header.encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(0)
    with open(root / "model.safetensors", "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        left = count
        while left:
            n = min(left, 16 * 1024 * 1024)
            handle.write(rng.standard_normal(n, dtype=np.float32).tobytes())
            left -= n
    (root / "config.json").write_text('{"model_type": "bench"}')


def _write_speed(directory: Path, size: int = 256 * 1024 * 1024) -> float:
    """MB/s of writing and fsync-free closing a file in ``directory`` (a baseline)."""
    block = b"\0" * (4 * 1024 * 1024)
    path = directory / "write-test"
    started = time.perf_counter()
    with open(path, "wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
    seconds = time.perf_counter() - started
    path.unlink()
    return round(size / 1e6 / seconds, 1)


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--dir",
        default=None,
        help="Where the model, the server data and the pulled copy go (default: system temp). "
        "Use a tmpfs such as /dev/shm to measure the software rather than the disk.",
    )
    args = parser.parse_args(argv)

    from modelseal.integrity import generate_keypair, sign
    from modelseal.registry.client import ClientState, RegistryClient

    exe = [sys.executable, "-m", "modelseal"]
    with tempfile.TemporaryDirectory(prefix="bench-registry-", dir=args.dir) as tmp:
        base = Path(tmp)
        disk_MBps = _write_speed(base)
        model = base / "model"
        _write_model(model, args.size_mib * 1024 * 1024)
        size = sum(p.stat().st_size for p in model.iterdir())
        keys = generate_keypair(base / "release")
        data = base / "data"
        admin = [*exe, "admin", "--data", str(data)]
        subprocess.run([*admin, "create-user", "bench", "--admin"], check=True, capture_output=True)
        subprocess.run(
            [*admin, "trust-key", "bench", str(keys.public_key)], check=True, capture_output=True
        )
        token = subprocess.run(
            [*admin, "token", "create", "bench", "-a", "read", "-a", "push"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = _free_port()
        server = subprocess.Popen(
            [*exe, "serve", "--data", str(data), "--port", str(port), "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = {"rss": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.05):
                try:
                    peak["rss"] = max(peak["rss"], _rss_kib(server.pid, "VmRSS"))
                except OSError:
                    return

        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            idle_rss = _rss_kib(server.pid, "VmRSS")
            threading.Thread(target=sample, daemon=True).start()
            started = time.perf_counter()
            sign(model, key=keys.private_key, output=base / "model.sig")
            sign_seconds = time.perf_counter() - started
            client = RegistryClient(
                url, token, state=ClientState(base / "home"), workers=args.workers
            )
            started = time.perf_counter()
            client.push(model, "bench/big:1.0", signature=base / "model.sig", tags=["latest"])
            push_seconds = time.perf_counter() - started
            started = time.perf_counter()
            client.pull("bench/big:latest", base / "pulled")
            pull_seconds = time.perf_counter() - started
            client.close()
        finally:
            stop.set()
            server.terminate()
            server.wait(10)
        mb = size / 1e6
        report = {
            "model_bytes": size,
            "sign_seconds": round(sign_seconds, 2),
            "push_seconds": round(push_seconds, 2),
            "push_MBps": round(mb / push_seconds, 1),
            "pull_seconds": round(pull_seconds, 2),
            "pull_MBps": round(mb / pull_seconds, 1),
            "server_idle_rss_MB": round(idle_rss / 1024, 1),
            "server_peak_rss_MB": round(peak["rss"] / 1024, 1),
            "targets": {"push_MBps": 300, "pull_MBps": 500, "server_rss_MB": 200},
            "cpus": os.cpu_count(),
            "directory": str(Path(tmp).parent),
            "plain_write_MBps_of_directory": disk_MBps,
        }
        print(json.dumps(report, indent=2))
        ok = (
            report["push_MBps"] >= 300
            and report["pull_MBps"] >= 500
            and report["server_peak_rss_MB"] < 200
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
