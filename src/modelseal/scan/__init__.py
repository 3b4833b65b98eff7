"""Static scanning: say what would run if a model were loaded, without running it.

>>> from modelseal.scan import scan
>>> report = scan(["model_dir"])          # doctest: +SKIP
>>> [r.verdict for r in report.results]   # doctest: +SKIP
"""

import sys
import types
from typing import Any

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


class _CallableModule(types.ModuleType):
    """Lets ``modelseal.scan(...)`` work even after this subpackage was imported.

    Importing ``modelseal.scan`` (as most of modelseal does) makes the package
    attribute ``modelseal.scan`` this module rather than the function; calling the
    module calls :func:`scan`, so the documented ``modelseal.scan(paths)`` always works.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> ScanReport:
        return scan(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
