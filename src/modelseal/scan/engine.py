"""The scan engine: walk the inventory, run every applicable rule, collect results."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from modelseal.errors import ModelsealError
from modelseal.formats.inventory import Entry, expand, walk_files
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import FileResult, Finding, ScanReport, Verdict
from modelseal.scan.rules import all_rules, rule_catalog

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

__all__ = ["ProgressCallback", "scan", "scan_entry"]

#: Called after each top-level file with (files done, files in total, path).
ProgressCallback = Callable[[int, int, str], None]


#: A directory is scanned by a process pool only when it has at least this many files...
POOL_MIN_FILES = 200
#: ...or at least this many bytes in two or more files (forking workers costs ~50 ms).
POOL_MIN_BYTES = 256 * 1024**2


def scan(
    paths: Iterable[str | os.PathLike[str]],
    *,
    options: ScanOptions | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> ScanReport:
    """Scan files, directories and archives without executing anything in them.

    Every file on disk gets a result; archive members get one (``outer!inner``)
    when they have findings or errors, and their worst verdict rolls up into the
    archive's own result.

    ``workers`` is the number of processes: ``None`` uses every core when the work is
    large enough to pay for a pool (:data:`POOL_MIN_FILES`, :data:`POOL_MIN_BYTES`),
    ``1`` scans in this process. Results are the same, in the same order, either way.
    """
    options = options or ScanOptions()
    rules = all_rules()
    top_level: list[Entry] = []
    for raw in paths:
        top_level.extend(walk_files(Path(raw)))
    results: list[FileResult] = []
    pool_size = _pool_size(top_level, workers)
    if pool_size > 1:
        trees: Iterable[list[FileResult]] = _scan_in_pool(top_level, options, pool_size)
    else:
        trees = (_scan_tree(entry, rules, options) for entry in top_level)
    for done, (entry, tree) in enumerate(zip(top_level, trees, strict=True), start=1):
        results.extend(tree)
        if progress is not None:
            progress(done, len(top_level), entry.path)
    return ScanReport(tuple(results), rule_catalog())


def _pool_size(entries: Sequence[Entry], workers: int | None) -> int:
    """How many processes to scan ``entries`` with (1: no pool)."""
    if len(entries) < 2 or workers == 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if workers is None:
        total = sum(e.size for e in entries)
        if len(entries) < POOL_MIN_FILES and total < POOL_MIN_BYTES:
            return 1
        workers = cores or 1
    return max(1, min(workers, len(entries)))


def _context() -> BaseContext:
    """``fork`` (workers inherit the imported rules) unless other threads run here (a
    progress bar, a server): forking those can deadlock, so a fork server is used."""
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


def _scan_in_pool(
    entries: Sequence[Entry], options: ScanOptions, size: int
) -> Iterator[list[FileResult]]:
    """``_scan_tree`` of each entry in worker processes, in order.

    Entries travel without their opener (a closure); a file on disk is reopened by path,
    as :func:`~modelseal.formats.inventory.walk_files` opens it. If the pool breaks (a
    worker killed), the entries not yet done are scanned here.
    """
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    jobs = [(dataclasses.replace(e, _opener=None), e._opener is not None) for e in entries]
    chunk = max(1, len(jobs) // (size * 8))
    done = 0
    try:
        with ProcessPoolExecutor(size, mp_context=_context()) as pool:
            for tree in pool.map(_scan_job, jobs, [options] * len(jobs), chunksize=chunk):
                yield tree
                done += 1
    except (BrokenProcessPool, OSError):
        rules = all_rules()
        for entry in entries[done:]:
            yield _scan_tree(entry, rules, options)


def _scan_job(job: tuple[Entry, bool], options: ScanOptions) -> list[FileResult]:
    entry, readable = job
    if readable and entry.fs_path is not None:
        entry = dataclasses.replace(entry, _opener=_reopen(entry.fs_path))
    return _scan_tree(entry, all_rules(), options)


def _reopen(path: Path) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        return open(path, "rb")

    return opener


def _scan_tree(entry: Entry, rules: Sequence[Rule], options: ScanOptions) -> list[FileResult]:
    """The result for ``entry`` followed by those of its members that are not clean."""
    own = scan_entry(entry, rules, options)
    members: list[FileResult] = []
    worst: Verdict | None = None
    try:
        for member in expand(entry, options.limits):
            result = scan_entry(member, rules, options)
            if result.own_verdict is not Verdict.CLEAN or any(
                f.severity.rank > 0 for f in result.findings
            ):
                members.append(result)
                if worst is None or result.own_verdict.rank > worst.rank:
                    worst = result.own_verdict
    except ModelsealError as exc:
        own = FileResult(own.path, own.format, own.findings, own.error or exc.message)
    except Exception as exc:  # an inventory bug on hostile input must fail safe, not crash
        message = f"internal error while listing members: {exc!r}"
        own = FileResult(own.path, own.format, own.findings, own.error or message)
    if worst is not None and worst is not Verdict.CLEAN:
        own = FileResult(own.path, own.format, own.findings, own.error, worst)
    return [own, *members]


def scan_entry(entry: Entry, rules: Sequence[Rule], options: ScanOptions) -> FileResult:
    """Run every applicable rule on one entry (no recursion into members)."""
    findings: list[Finding] = []
    errors: list[str] = []
    for rule in rules:
        if not rule.applies_to(entry, options):
            continue
        try:
            for finding in rule.check(entry, options):
                findings.append(finding)
        except ModelsealError as exc:
            errors.append(exc.message)
        except Exception as exc:  # a rule bug on hostile input must fail safe, not clean
            errors.append(f"internal error in {type(rule).__name__}: {exc!r}")
    unique = tuple(dict.fromkeys(findings))
    return FileResult(
        entry.path, entry.format.value, unique, "; ".join(dict.fromkeys(errors)) or None
    )
