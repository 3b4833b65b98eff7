"""Scanner benchmark: detection and speed of ``modelseal scan`` next to picklescan and
modelaudit, on the same corpus, in one run.

* detection: the tests' sample corpus (every malicious technique, every benign
  look-alike); a tool *flags* a file when its own outcome is not clean (modelseal:
  verdict not clean; picklescan: dangerous globals or a scan error; modelaudit: a
  warning or critical issue);
* speed, each tool's CLI side by side: a directory of ~130 mixed small samples (pickles,
  ONNX, GGUF, safetensors, Keras, SavedModel, templates, archives), the pickle-only
  corpus, one file (start-up) and a 10,000-file tree (hard links to the mixed samples);
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
from typing import Any

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
    stats: dict[str, dict[str, Any]] = {
        name: {"tp": 0, "fp": 0, "crash": 0, "missed": []} for name in tools
    }
    for name, malicious, path in corpus:
        for tool, func in tools.items():
            flagged = _quietly(func, path)
            entry = stats[tool]
            if flagged is None:
                entry["crash"] += 1
                if malicious:
                    entry["missed"].append(name)
            elif malicious and flagged:
                entry["tp"] += 1
            elif malicious:
                entry["missed"].append(name)
            elif flagged:
                entry["fp"] += 1
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
            print(f"  {tool} missed: {', '.join(missed)}")


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


def _run(cmd: list[str], timeout: float | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (KiB) and exit code of one command."""
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd],
        capture_output=True,
        text=True,
        env=_ENV,
        check=True,
        timeout=timeout,
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def _best(cmd: list[str], runs: int = 3) -> tuple[float, int, int]:
    results = [_run(cmd) for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def _use_bytecode_cache(work: Path) -> None:
    """Let every tool run from cached bytecode, as installed packages do.

    Development shells often set PYTHONDONTWRITEBYTECODE, which makes modelseal (run from
    source) recompile every module on each start while pip-installed reference tools load
    their .pyc files; a cache prefix in the work directory evens that out without writing
    into the source tree.
    """
    _ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    _ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")


def _other_formats(directory: Path) -> int:
    """Non-pickle samples, malicious and benign, one folder each; returns the file count."""
    sys.path.insert(0, str(ROOT))
    from tests.samples import keras as k
    from tests.samples import tensorflow as tf
    from tests.samples.chat_templates import ATTACK_TEMPLATES, BENIGN_TEMPLATES
    from tests.samples.containers import build_tar, plain_zip
    from tests.samples.gguf import write_gguf
    from tests.samples.hf import write_hf_repo
    from tests.samples.onnx_models import external_tensor, linear_model, save
    from tests.samples.safetensors_samples import write_real_safetensors

    def folder(name: str) -> Path:
        path = directory / name
        path.mkdir(parents=True)
        return path

    ssti = ATTACK_TEMPLATES["cycler-globals"][0]
    save(linear_model(), folder("onnx-ok") / "model.onnx")
    save(
        linear_model(initializers=[external_tensor("E", "/etc/passwd")]),
        folder("onnx-x") / "m.onnx",
    )
    write_gguf(folder("gguf-ok") / "model.gguf")
    write_gguf(folder("gguf-ssti") / "model.gguf", templates={"tokenizer.chat_template": ssti})
    for dtype in ("float32", "float16"):
        write_real_safetensors(folder(f"st-{dtype}") / "model.safetensors", dtype)
    k.write_keras(folder("keras-ok") / "model.keras", k.sequential([k.dense_layer()]))
    k.write_keras(folder("keras-lambda") / "model.keras", k.sequential([k.keras3_lambda()]))
    k.write_h5(folder("h5-ok") / "model.h5", k.legacy_sequential())
    k.write_h5(folder("h5-lambda") / "model.h5", k.legacy_sequential([k.legacy_lambda()]))
    for name, layers in (("sm-ok", None), ("sm-lambda", [k.legacy_lambda()])):
        target = folder(name)
        tf.write_saved_model(target, tf.saved_model())
        nodes = tf.keras_saved_model_nodes(k.legacy_sequential(layers))
        (target / "keras_metadata.pb").write_bytes(tf.keras_metadata(nodes))
    write_hf_repo(folder("hf-repo") / "repo")
    templates = folder("templates")
    (templates / "chatml.jinja").write_text(BENIGN_TEMPLATES["chatml"])
    (templates / "evil.j2").write_text(ssti)
    (templates / "serve.yaml").write_text("chat_template: |\n  " + ssti + "\n")
    (templates / "gen.json").write_text(json.dumps({"chat_template": BENIGN_TEMPLATES["gemma"]}))
    archives = folder("archives")
    (archives / "docs.zip").write_bytes(plain_zip({"a.txt": b"hello", "b.json": b"{}"}))
    build_tar(archives / "bundle.tar", [("file", "x.txt", b"hello")])
    return sum(1 for p in directory.rglob("*") if p.is_file())


def _mixed_dir(corpus: list[tuple[str, bool, Path]], directory: Path) -> Path:
    """~130 small samples: 100 of the pickle corpus (every benign one first) and the
    other formats' samples."""
    benign_first = sorted(corpus, key=lambda sample: sample[1])
    pickles = [p for _, _, p in benign_first if p.stat().st_size < 256 * 1024][:100]
    for index, path in enumerate(pickles):
        (directory / f"{index:03d}").mkdir(parents=True)
        shutil.copy(path, directory / f"{index:03d}" / path.name)
    _other_formats(directory / "formats")
    return directory


def _pickle_dir(corpus: list[tuple[str, bool, Path]], directory: Path) -> Path:
    for index, (_, _, path) in enumerate(corpus):
        (directory / f"{index:03d}").mkdir(parents=True)
        shutil.copy(path, directory / f"{index:03d}" / path.name)
    return directory


def _big_tree(source: Path, directory: Path, files: int = 10_000) -> Path:
    """``files`` files: hard links to the mixed directory's files, 100 per folder."""
    sources = sorted(p for p in source.rglob("*") if p.is_file())
    for index in range(files):
        original = sources[index % len(sources)]
        folder = directory / f"{index // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        os.link(original, folder / f"{index:05d}-{original.name}")
    return directory


def _commands(target: Path) -> dict[str, list[str]]:
    commands = {"modelseal": [str(BIN / "modelseal"), "scan", str(target), "--format", "json"]}
    if (BIN / "picklescan").exists():
        commands["picklescan"] = [str(BIN / "picklescan"), "-p", str(target)]
    if (BIN / "modelaudit").exists():
        commands["modelaudit"] = [str(BIN / "modelaudit"), "scan", str(target), "-f", "json"]
    return commands


def _side_by_side(
    title: str, target: Path, runs: int, *, slow_runs: int = 1, skip: dict[str, str] | None = None
) -> dict[str, float]:
    """Each tool's CLI on ``target``; modelaudit (tens of seconds a directory) gets
    ``slow_runs`` runs. ``skip`` maps tools not run to the reason printed instead."""
    count = sum(1 for p in target.rglob("*") if p.is_file()) if target.is_dir() else 1
    print(f"\n{title}: {count:,} file(s), CLI, best of {runs} (modelaudit: {slow_runs})")
    print(f"{'tool':<12} {'wall s':>8} {'vs picklescan':>14} {'peak RSS MB':>12}")
    figures: dict[str, tuple[float, int, int]] = {}
    for tool, cmd in _commands(target).items():
        if skip and tool in skip:
            continue
        figures[tool] = _best(cmd, slow_runs if tool == "modelaudit" else runs)
    reference = figures.get("picklescan", (0.0, 0, 0))[0]
    for tool, (wall, rss, _) in figures.items():
        ratio = f"{wall / reference:.2f}x" if reference else "-"
        print(f"{tool:<12} {wall:>8.2f} {ratio:>14} {rss / 1024:>12.0f}")
    for tool, reason in (skip or {}).items():
        print(f"{tool:<12} {'-':>8} {'-':>14} {'-':>12}   ({reason})")
    return {tool: wall for tool, (wall, _, _) in figures.items()}


def _speed(corpus: list[tuple[str, bool, Path]], work: Path) -> None:
    _use_bytecode_cache(work)
    mixed = _mixed_dir(corpus, work / "mixed")
    one = next(p for name, bad, p in corpus if not bad and p.suffix == ".pkl")
    for cmd in _commands(one).values():
        _run(cmd)  # warm the bytecode cache
    _side_by_side("One file (start-up)", one, 5, slow_runs=3)
    title = "Mixed formats (pickle, ONNX, GGUF, Keras, SavedModel, templates...)"
    mixed_walls = _side_by_side(title, mixed, 3)
    _side_by_side("Pickle only (the detection corpus)", _pickle_dir(corpus, work / "pickles"), 3)
    tree = _big_tree(mixed, work / "tree")
    skip = None
    if "modelaudit" in mixed_walls:
        per_file = mixed_walls["modelaudit"] / sum(1 for p in mixed.rglob("*") if p.is_file())
        skip = {"modelaudit": f"not run: ~{per_file * 10_000:,.0f} s at its mixed-directory rate"}
    _side_by_side("A 10,000-file tree (hard links to the mixed samples)", tree, 1, skip=skip)
    from modelseal.scan.engine import scan

    scan([mixed])  # warm every lazy import: the figures below are scan work only
    for label, target in (("mixed directory", mixed), ("10,000-file tree", tree)):
        timings = []
        for workers in (1, None):
            start = time.perf_counter()
            scan([target], workers=workers)
            timings.append(time.perf_counter() - start)
        print(
            f"  in-process modelseal scan of the {label}: {timings[0]:.3f} s in one process, "
            f"{timings[1]:.3f} s with the automatic pool"
        )


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
    """Build the corpus in a temporary directory and print the tables asked for
    (``--only detection,speed,scale``; all by default)."""
    import argparse

    parser = argparse.ArgumentParser(prog="bench_scan")
    parser.add_argument("--only", default="detection,speed,scale")
    sections = set(parser.parse_args().only.split(","))
    with tempfile.TemporaryDirectory(prefix="modelseal-bench-") as tmp:
        work = Path(tmp)
        corpus = _build_corpus(work / "corpus")
        if "detection" in sections:
            _detection(corpus)
        if "speed" in sections:
            _speed(corpus, work)
        if "scale" in sections:
            _scale(work)


if __name__ == "__main__":
    main()
