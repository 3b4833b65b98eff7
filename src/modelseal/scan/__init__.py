"""Static scanning: say what would run if a model were loaded, without running it.

>>> from modelseal.scan import scan
>>> report = scan(["model_dir"])          # doctest: +SKIP
>>> [r.verdict for r in report.results]   # doctest: +SKIP
"""

from modelseal.scan.engine import ProgressCallback, scan, scan_entry
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import FileResult, Finding, RuleInfo, ScanReport, Severity, Verdict

__all__ = [
    "FileResult",
    "Finding",
    "ProgressCallback",
    "Rule",
    "RuleInfo",
    "ScanOptions",
    "ScanReport",
    "Severity",
    "Verdict",
    "scan",
    "scan_entry",
]
