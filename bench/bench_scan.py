"""Scanner benchmark: detection and speed of ``modelseal scan`` next to picklescan and
modelaudit, on the same corpus, in one run.

* detection: the tests' sample corpus (every malicious technique, every benign
  look-alike); a tool *flags* a file when its own outcome is not clean (modelseal:
  verdict not clean; picklescan: dangerous globals or a scan error; modelaudit: a
  warning or critical issue);
* speed: a directory of 50 small samples through each tool's CLI (best of 3);
* scale: a sparse 2 GiB PyTorch zip checkpoint and a 2 GiB safetensors file:
  wall time and peak RSS of ``modelseal scan``;
* start-up: ``modelseal --help``.

Run: ``python -m bench scan`` (needs the ``bench`` extra for the reference tools).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_GiB = 1 << 30
# modelaudit reports telemetry unless told not to (also for its in-process use below).
os.environ.setdefault("PROMPTFOO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("NO_ANALYTICS", "1")
_ENV = {**os.environ, "NO_COLOR": "1"}


def _build_corpus(directory: Path) -> list[tuple[str, bool, Path]]:
    sys.path.insert(0, str(ROOT))
    from tests.samples.pickles import BENIGN, MALICIOUS

    corpus = []
    for malicious, table in ((True, MALICIOUS), (False, BENIGN)):
        for name, build in table.items():
            folder = directory / f"{'bad' if malicious else 'good'}-{name}"
            folder.mkdir(parents=True)
            corpus.append((name, malicious, build(folder)))
    return corpus


# -- per-file verdicts ----------------------------------------------------------------


def _modelseal_flags(path: Path) -> bool:
    from modelseal.scan.engine import scan

    return scan([path]).results[0].verdict.value != "clean"


def _picklescan_flags(path: Path) -> bool:
    from picklescan.scanner import scan_file_path

    result = scan_file_path(str(path))
    return bool(result.issues_count or result.infected_files or result.scan_err)


def _modelaudit_flags(path: Path) -> bool:
    from modelaudit.core import scan_model_directory_or_file

    result = scan_model_directory_or_file(str(path))
    return any(str(i.severity.value).lower() in ("warning", "critical") for i in result.issues)


def _tools() -> dict[str, Callable[[Path], bool]]:
    tools: dict[str, Callable[[Path], bool]] = {"modelseal": _modelseal_flags}
    if importlib.util.find_spec("picklescan") is not None:
        tools["picklescan"] = _picklescan_flags
    if importlib.util.find_spec("modelaudit") is not None:
        tools["modelaudit"] = _modelaudit_flags
    return tools


def _quietly(func: Callable[[Path], bool], path: Path) -> bool | None:
    import contextlib
    import io
    import logging

    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return func(path)
    except Exception:  # a reference tool crashing on a sample counts as "no verdict"
        return None
    finally:
        logging.disable(logging.NOTSET)


def _detection(corpus: list[tuple[str, bool, Path]]) -> None:
    tools = _tools()
    stats = {name: {"tp": 0, "fp": 0, "crash": 0, "missed": []} for name in tools}
    for name, malicious, path in corpus:
        for tool, func in tools.items():
            flagged = _quietly(func, path)
            entry = stats[tool]
            if flagged is None:
                entry["crash"] += 1  # type: ignore[operator]
                if malicious:
                    entry["missed"].append(name)  # type: ignore[union-attr]
            elif malicious and flagged:
                entry["tp"] += 1  # type: ignore[operator]
            elif malicious:
                entry["missed"].append(name)  # type: ignore[union-attr]
            elif flagged:
                entry["fp"] += 1  # type: ignore[operator]
    bad = sum(1 for _, m, _ in corpus if m)
    good = len(corpus) - bad
    print(f"\nDetection on {bad} malicious and {good} benign samples")
    print(f"{'tool':<12} {'flagged':>10} {'false pos.':>11} {'crashed':>8}")
    for tool, entry in stats.items():
        print(
            f"{tool:<12} {entry['tp']:>4}/{bad:<5} {entry['fp']:>5}/{good:<5} {entry['crash']:>8}"
        )
    for tool, entry in stats.items():
        missed = entry["missed"]
        if missed:
            print(f"  {tool} missed: {', '.join(missed)}")  # type: ignore[arg-type]


# -- speed -------------------------------------------------------------------------


# The command runs under a tiny Python parent: a child forked from this (large) process
# would report this process's pages as its own peak RSS.
_WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "wall = time.perf_counter() - start\n"
    "print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


def _run(cmd: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and exit code of one command."""
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, env=_ENV, check=True
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def _best(cmd: list[str], runs: int = 3) -> tuple[float, int, int]:
    results = [_run(cmd) for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def _small_dir(corpus: list[tuple[str, bool, Path]], directory: Path) -> Path:
    directory.mkdir()
    small = sorted(
        (p for _, _, p in corpus if p.is_file() and p.stat().st_size < 256 * 1024),
        key=lambda p: p.stat().st_size,
    )[:50]
    for index, path in enumerate(small):
        shutil.copy(path, directory / f"{index:02d}-{path.name}")
    return directory


def _speed(corpus: list[tuple[str, bool, Path]], work: Path) -> None:
    folder = _small_dir(corpus, work / "small50")
    count = len(list(folder.iterdir()))
    commands = {"modelseal": [str(BIN / "modelseal"), "scan", str(folder), "--format", "json"]}
    if (BIN / "picklescan").exists():
        commands["picklescan"] = [str(BIN / "picklescan"), "-p", str(folder)]
    if (BIN / "modelaudit").exists():
        commands["modelaudit"] = [str(BIN / "modelaudit"), "scan", str(folder), "-f", "json"]
    print(f"\nA directory of {count} small samples (CLI, best of 3)")
    print(f"{'tool':<12} {'wall s':>8} {'peak RSS MB':>12}")
    for tool, cmd in commands.items():
        wall, rss, _ = _best(cmd)
        print(f"{tool:<12} {wall:>8.2f} {rss / 1024:>12.0f}")
    files = sorted(folder.iterdir())
    for tool, func in _tools().items():
        _quietly(func, files[0])  # warm imports
        start = time.perf_counter()
        for path in files:
            _quietly(func, path)
        print(f"  in-process, {tool}: {time.perf_counter() - start:.3f} s for {count} files")


def _zip_local(name: bytes, crc: int, size: int) -> bytes:
    return (
        struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, size, size, len(name), 0)
        + name
    )


def _zip_central(name: bytes, crc: int, size: int, offset: int) -> bytes:
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            0,
            0,
            0,
            crc,
            size,
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        + name
    )


def _zeros_crc(size: int) -> int:
    crc = 0
    block = bytes(64 << 20)
    remaining = size
    while remaining:
        step = min(remaining, len(block))
        crc = zlib.crc32(block[:step] if step < len(block) else block, crc)
        remaining -= step
    return crc


def _sparse_torch_zip(path: Path, nbytes: int) -> None:
    """A ``torch.save`` layout with one float32 tensor of ``nbytes`` bytes (sparse)."""
    sys.path.insert(0, str(ROOT))
    from tests.samples.pickles import asm

    numel = nbytes // 4
    pkl = (
        asm.proto(2)
        + asm.global_("collections", "OrderedDict")
        + asm.EMPTY_TUPLE
        + asm.REDUCE
        + asm.binunicode("weight")
        + asm.global_("torch._utils", "_rebuild_tensor_v2")
        + asm.MARK
        + asm.MARK
        + asm.binunicode("storage")
        + asm.global_("torch", "FloatStorage")
        + asm.binunicode("0")
        + asm.binunicode("cpu")
        + b"J"
        + struct.pack("<i", numel)
        + asm.TUPLE
        + asm.BINPERSID
        + asm.binint1(0)
        + b"J"
        + struct.pack("<i", numel)
        + asm.TUPLE1
        + asm.binint1(1)
        + asm.TUPLE1
        + b"\x89"  # NEWFALSE
        + asm.global_("collections", "OrderedDict")
        + asm.EMPTY_TUPLE
        + asm.REDUCE
        + asm.TUPLE
        + asm.REDUCE
        + asm.SETITEM
        + asm.STOP
    )
    members = [
        (b"big/data.pkl", pkl),
        (b"big/byteorder", b"little"),
        (b"big/data/0", None),
        (b"big/version", b"3\n"),
    ]
    central = b""
    with open(path, "wb") as out:
        for name, data in members:
            offset = out.tell()
            if data is None:
                crc = _zeros_crc(nbytes)
                out.write(_zip_local(name, crc, nbytes))
                out.seek(nbytes, os.SEEK_CUR)
                size = nbytes
            else:
                crc, size = zlib.crc32(data), len(data)
                out.write(_zip_local(name, crc, size) + data)
            central += _zip_central(name, crc, size, offset)
        start = out.tell()
        out.write(central)
        out.write(
            struct.pack(
                "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0
            )
        )


def _sparse_safetensors(path: Path, nbytes: int) -> None:
    header = json.dumps(
        {"weight": {"dtype": "F32", "shape": [nbytes // 4], "data_offsets": [0, nbytes]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header)) + header)
        out.truncate(8 + len(header) + nbytes)


def _scale(work: Path) -> None:
    torch_zip = work / "big.pt"
    _sparse_torch_zip(torch_zip, 2 * _GiB)
    safetensors = work / "big.safetensors"
    _sparse_safetensors(safetensors, 2 * _GiB)
    print("\nScale: 2 GiB files (sparse), modelseal scan, best of 3")
    print(f"{'file':<22} {'wall s':>8} {'peak RSS MB':>12} {'exit':>5}")
    from modelseal.scan.engine import scan
    from modelseal.scan.rules import all_rules

    all_rules()  # import every rule once: in-process times below are scan work only
    for path in (torch_zip, safetensors):
        wall, rss, code = _best([str(BIN / "modelseal"), "scan", str(path), "--format", "json"])
        start = time.perf_counter()
        verdict = scan([path]).results[0].verdict.value
        inside = time.perf_counter() - start
        print(
            f"{path.name:<22} {wall:>8.2f} {rss / 1024:>12.0f} {code:>5}"
            f"   (in-process scan: {inside * 1000:.1f} ms, {verdict})"
        )
    baseline, _, _ = _best([sys.executable, "-c", "pass"], runs=5)
    wall, rss, _ = _best([str(BIN / "modelseal"), "--help"], runs=5)
    print(
        f"\n`modelseal --help`: {wall:.3f} s ({rss / 1024:.0f} MB); bare python: {baseline:.3f} s"
    )


def main() -> None:
    """Build the corpus in a temporary directory and print every table."""
    with tempfile.TemporaryDirectory(prefix="modelseal-bench-") as tmp:
        work = Path(tmp)
        corpus = _build_corpus(work / "corpus")
        _detection(corpus)
        _speed(corpus, work)
        _scale(work)


if __name__ == "__main__":
    main()
