"""Fleet scan benchmark: one ``modelseal scan`` process vs ``modelseal fleet scan``.

Builds a generated mirror (the test tree of tests/samples/fleet.py, scaled up, plus
an 8 MiB SafeTensors shard in every tenth model so MB/s means something) and times,
each as a child process on the same tree:

- ``modelseal scan TREE`` (one process, the reference);
- ``fleet scan --engine local --workers 1`` and ``--workers 2``;
- ``fleet scan --engine ray --workers 1`` and ``--workers 2`` (a local cluster
  started by the command; the start-up cost of Ray alone is measured separately);
- a cold then a warm run with ``--cache`` (the warm one reads nothing).

It also times listing (directory walk and model grouping) in this process.
Figures: wall time, files/s, MB/s of the tree's bytes. Run once:
``python -m bench fleet`` (``MODELSEAL_BENCH_MODELS`` changes the model count,
default 600). On a shared 2-core machine treat the figures as rough.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

_BIG = 8 * 2**20


def _tree(root: Path, models: int) -> tuple[int, int]:
    """Write the mirror; (files, bytes)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.samples.fleet import build_mirror
    from tests.samples.safetensors_samples import raw_safetensors

    build_mirror(root, models=models, standalone=models // 9)
    for i in range(0, models, 10):
        model = next(root.glob(f"hub/org*/model{i:03d}"))
        header = {"w": {"dtype": "U8", "shape": [_BIG], "data_offsets": [0, _BIG]}}
        (model / "model-00002-of-00002.safetensors").write_bytes(
            raw_safetensors(header, os.urandom(_BIG))
        )
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _time(argv: list[str]) -> tuple[float, str]:
    """Wall seconds and standard output of one child (exit 0 or 1 are results)."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv[:6])} failed:\n{done.stderr}")
    return elapsed, done.stdout


def _ray_start_seconds(workers: int) -> float:
    code = (
        f"import logging, ray; ray.init(num_cpus={workers}, include_dashboard=False, "
        "logging_level=logging.WARNING); ray.shutdown()"
    )
    seconds, _ = _time([sys.executable, "-c", code])
    return seconds


def main() -> None:
    models = int(os.environ.get("MODELSEAL_BENCH_MODELS", "600"))
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
    modelseal = [sys.executable, "-m", "modelseal"]
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        work = Path(tmp)
        root = work / "mirror"
        files, size = _tree(root, models)
        print(f"tree: {models + models // 9} models, {files} files, {size / 1e6:.1f} MB")

        from modelseal.fleet.sources import list_models, parse_source

        started = time.perf_counter()
        listed = list_models(parse_source(str(root)))
        listing = time.perf_counter() - started
        print(f"listing: {len(listed)} models in {listing:.3f} s ({files / listing:,.0f} files/s)")

        def report(name: str, seconds: float, count: int = files) -> None:
            print(
                f"{name:<34} {seconds:7.2f} s  {count / seconds:8.0f} files/s  "
                f"{size / seconds / 1e6:7.1f} MB/s"
            )

        seconds, _ = _time([*modelseal, "scan", str(root), "-f", "json", "-o", str(work / "s")])
        report("modelseal scan (1 process)", seconds)
        for engine in ("local", "ray"):
            for workers in (1, 2):
                out = work / f"{engine}{workers}.parquet"
                argv = [*modelseal, "fleet", "scan", str(root), "-o", str(out), "-f", "json"]
                seconds, _ = _time([*argv, "--engine", engine, "--workers", str(workers)])
                report(f"fleet --engine {engine} --workers {workers}", seconds)
        for workers in (1, 2):
            print(
                f"  (Ray start + stop alone, {workers} CPUs: {_ray_start_seconds(workers):.2f} s)"
            )
        cache = work / "cache.db"
        argv = [*modelseal, "fleet", "scan", str(root), "-o", str(work / "c.parquet")]
        argv += ["--cache", str(cache), "--workers", "2", "-f", "json"]
        seconds, _ = _time(argv)
        report("fleet local 2, cold cache", seconds)
        seconds, out = _time(argv)
        summary = json.loads(out)["summary"]
        report(f"fleet local 2, warm cache ({summary['cached']} cached)", seconds)


if __name__ == "__main__":
    main()
