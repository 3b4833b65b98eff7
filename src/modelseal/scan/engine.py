"""The scan engine: walk the inventory, run every applicable rule, collect results."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from modelseal.errors import ModelsealError
from modelseal.formats.inventory import Entry, expand, walk_files
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import FileResult, Finding, ScanReport, Verdict
from modelseal.scan.rules import all_rules, rule_catalog

__all__ = ["ProgressCallback", "scan", "scan_entry"]

#: Called after each top-level file with (files done, files in total, path).
ProgressCallback = Callable[[int, int, str], None]


def scan(
    paths: Iterable[str | os.PathLike[str]],
    *,
    options: ScanOptions | None = None,
    progress: ProgressCallback | None = None,
) -> ScanReport:
    """Scan files, directories and archives without executing anything in them.

    Every file on disk gets a result; archive members get one (``outer!inner``)
    when they have findings or errors, and their worst verdict rolls up into the
    archive's own result.
    """
    options = options or ScanOptions()
    rules = all_rules()
    top_level: list[Entry] = []
    for raw in paths:
        top_level.extend(walk_files(Path(raw)))
    results: list[FileResult] = []
    for done, entry in enumerate(top_level, start=1):
        results.extend(_scan_tree(entry, rules, options))
        if progress is not None:
            progress(done, len(top_level), entry.path)
    return ScanReport(tuple(results), rule_catalog())


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
