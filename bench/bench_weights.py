"""Weight forensics throughput: ``weights scan`` and ``weights diff`` on 2 GiB safetensors files.

Figures, measured side by side in one run (the machine is shared and noisy):

- ``weights scan`` MB/s on a 2 GiB fp32 safetensors file (target >= 300 MB/s on 2 cores),
  next to a naive single-threaded numpy pass over the same data (low bytes, bit planes,
  histograms and ``bytes.find`` magic searches: what a straightforward implementation does);
- ``weights diff`` MB/s of compared weights for two 2 GiB files (target >= 250 MB/s);
- peak RSS of each run (each runs in its own process), next to the largest tensor.

Files are written to /tmp and deleted afterwards. Run: ``python -m bench weights``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOTAL_BYTES = 2 * 1024**3
TENSOR_SHAPE = (4096, 4096)  # 64 MiB fp32 per tensor
_MAGICS = (b"\x7fELF", b"MZ\x90\x00", b"PK\x03\x04", b"\x1f\x8b\x08", b"#!/", b"import ")


def _write_model(path: Path, seed: int, base: Path | None = None) -> None:
    """A safetensors file of fp32 tensors, streamed (never all in memory)."""
    count = TOTAL_BYTES // (4 * TENSOR_SHAPE[0] * TENSOR_SHAPE[1])
    size = 4 * TENSOR_SHAPE[0] * TENSOR_SHAPE[1]
    header = {
        f"model.layers.{i}.mlp.weight": {
            "dtype": "F32",
            "shape": list(TENSOR_SHAPE),
            "data_offsets": [i * size, (i + 1) * size],
        }
        for i in range(count)
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(seed)
    base_data = (
        np.memmap(base, dtype=np.float32, mode="r", offset=8 + _header_len(base)) if base else None
    )
    with open(path, "wb") as handle:
        handle.write(len(raw).to_bytes(8, "little") + raw)
        for i in range(count):
            if base_data is not None:
                start = i * TENSOR_SHAPE[0] * TENSOR_SHAPE[1]
                block = np.asarray(base_data[start : start + TENSOR_SHAPE[0] * TENSOR_SHAPE[1]])
                noise = rng.standard_normal(block.shape, dtype=np.float32) * np.float32(1e-4)
                block = block + noise
            else:
                block = rng.standard_normal(TENSOR_SHAPE[0] * TENSOR_SHAPE[1], dtype=np.float32)
                block *= np.float32(0.02)
            handle.write(block.tobytes())
    del base_data


def _header_len(path: Path | None) -> int:
    assert path is not None
    with open(path, "rb") as handle:
        return int.from_bytes(handle.read(8), "little")


def _naive_scan(path: Path) -> None:
    """Single-threaded numpy: per tensor, low bytes, bit planes, histograms, magic finds."""
    offset = 8 + _header_len(path)
    data = np.memmap(path, dtype=np.uint32, mode="r", offset=offset)
    step = TENSOR_SHAPE[0] * TENSOR_SHAPE[1]
    for start in range(0, data.shape[0], step):
        units = np.asarray(data[start : start + step])
        np.bincount((units >> 23).astype(np.uint8), minlength=256)
        rows = units.view(np.uint8).reshape(-1, 4)
        np.bincount(rows[:, 0], minlength=256)
        np.packbits(rows[:, 0] & 1)
        low3 = rows[:, :3].tobytes()
        for magic in _MAGICS:
            low3.find(magic)


def _child(kind: str, paths: list[str]) -> None:
    """Run one measured operation in this process and print seconds as JSON."""
    from modelseal.weights import diff_weights, scan_weights

    start = time.perf_counter()
    if kind == "scan":
        report = scan_weights(paths)
        assert report.results and report.results[0].error is None
    elif kind == "naive":
        _naive_scan(Path(paths[0]))
    else:
        diff_weights(paths[0], paths[1])
    seconds = time.perf_counter() - start
    # VmHWM is this process's own high-water mark (ru_maxrss would include the RSS the
    # parent had when it forked us); worker processes are added from RUSAGE_CHILDREN.
    rss = _hwm_kib() * 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss": rss, "worker_peak_rss": workers}))


def _hwm_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _measure(kind: str, *paths: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.bench_weights", "--child", kind, *map(str, paths)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _warm(*paths: Path) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(64 * 1024 * 1024):
                pass


def _memory(result: dict[str, float]) -> str:
    mib = 1024**2
    return (
        f"({result['seconds']:.2f} s, peak RSS {result['peak_rss'] / mib:,.0f} MiB, "
        f"largest worker {result['worker_peak_rss'] / mib:,.0f} MiB)"
    )


def main() -> None:
    """Print the benchmark figures."""
    mib = 1024**2
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="modelseal-bench-weights-") as tmp:
        base = Path(tmp) / "base.safetensors"
        new = Path(tmp) / "finetuned.safetensors"
        _write_model(base, seed=0)
        _write_model(new, seed=1, base=base)
        size = base.stat().st_size
        largest = 4 * TENSOR_SHAPE[0] * TENSOR_SHAPE[1]
        print(
            f"files: 2 x {size / mib:,.0f} MiB fp32 safetensors, "
            f"tensors of {largest / mib:.0f} MiB, "
            f"{os.cpu_count()} CPU(s)"
        )
        _warm(base)
        for kind in ("scan", "naive"):
            result = _measure(kind, base)
            label = "weights scan" if kind == "scan" else "naive numpy (1 thread)"
            print(f"{label:<24} {size / result['seconds'] / 1e6:8.0f} MB/s  {_memory(result)}")
        _warm(base, new)
        result = _measure("diff", base, new)
        print(f"{'weights diff':<24} {size / result['seconds'] / 1e6:8.0f} MB/s  {_memory(result)}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3:])
    else:
        main()
