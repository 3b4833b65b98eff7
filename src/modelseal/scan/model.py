"""Scan results: frozen dataclasses shared by every scanner and renderer.

The JSON contract in DESIGN.md is produced from these by ``to_dict``; renderers
never invent fields of their own.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FileResult",
    "Finding",
    "RuleInfo",
    "ScanReport",
    "Severity",
    "Verdict",
]


class Severity(str, enum.Enum):
    """How bad a finding is. Ordered: ``info < low < medium < high < critical``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 4 for critical."""
        return _SEVERITY_ORDER.index(self)

    def __str__(self) -> str:
        return self.value


_SEVERITY_ORDER = list(Severity)


class Verdict(str, enum.Enum):
    """The outcome for one file. ``error`` means it could not be fully analysed.

    Ordered by :attr:`rank`: clean < suspicious < error < malicious.
    """

    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    ERROR = "error"
    MALICIOUS = "malicious"

    @property
    def rank(self) -> int:
        """0 for clean up to 3 for malicious."""
        return _VERDICT_ORDER.index(self)

    def __str__(self) -> str:
        return self.value


_VERDICT_ORDER = list(Verdict)


@dataclass(frozen=True)
class RuleInfo:
    """Static description of a detection rule (used by SARIF and ``--help`` texts)."""

    id: str
    name: str
    description: str
    default_severity: Severity
    help_uri: str | None = None


@dataclass(frozen=True)
class Finding:
    """One thing a rule found: what would run, or what is wrong, and where."""

    rule: str
    severity: Severity
    message: str
    #: Where in the file: an opcode offset, a member name, a layer, a tensor.
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON shape of a finding."""
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "location": self.location,
        }


@dataclass(frozen=True)
class FileResult:
    """The scan outcome of one file or archive member."""

    path: str
    format: str
    findings: tuple[Finding, ...] = ()
    #: Set when the file could not be parsed completely (verdict is then never clean).
    error: str | None = None
    #: For archives: the worst verdict among their members (reported as ``outer!inner``).
    worst_member: Verdict | None = None

    @property
    def own_verdict(self) -> Verdict:
        """malicious (any critical) > error (unparsed) > suspicious (medium/high) > clean."""
        worst = max((f.severity.rank for f in self.findings), default=-1)
        if worst >= Severity.CRITICAL.rank:
            return Verdict.MALICIOUS
        if self.error is not None:
            return Verdict.ERROR
        if worst >= Severity.MEDIUM.rank:
            return Verdict.SUSPICIOUS
        return Verdict.CLEAN

    @property
    def verdict(self) -> Verdict:
        """The worse of this file's own verdict and its members' (an archive is never
        clean when something inside it is not)."""
        own = self.own_verdict
        if self.worst_member is not None and self.worst_member.rank > own.rank:
            return self.worst_member
        return own

    @property
    def max_severity(self) -> Severity | None:
        """The most severe finding's severity, or None without findings."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON shape of one result."""
        result: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "verdict": self.verdict.value,
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.error is not None:
            result["error"] = self.error
        return result


@dataclass(frozen=True)
class ScanReport:
    """Results for everything scanned in one run."""

    results: tuple[FileResult, ...]
    #: Rule descriptions for every rule id that may appear in ``results``.
    rules: Mapping[str, RuleInfo] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts by verdict and by severity."""
        verdicts = Counter(r.verdict.value for r in self.results)
        severities = Counter(f.severity.value for r in self.results for f in r.findings)
        return {
            "files": len(self.results),
            **{v.value: verdicts.get(v.value, 0) for v in Verdict},
            "findings": sum(severities.values()),
            "by_severity": {s.value: severities.get(s.value, 0) for s in Severity},
        }

    def is_clean(self, fail_on: Severity = Severity.MEDIUM) -> bool:
        """True when no result has an error or a finding at or above ``fail_on``."""
        return not any(
            r.error is not None or any(f.severity.rank >= fail_on.rank for f in r.findings)
            for r in self.results
        )

    def to_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON document."""
        return {
            "version": 1,
            "results": [r.to_dict() for r in self.results],
            "summary": self.summary(),
        }

    @classmethod
    def merge(cls, reports: Iterable[ScanReport]) -> ScanReport:
        """Combine reports (e.g. from parallel workers) in order."""
        results: list[FileResult] = []
        rules: dict[str, RuleInfo] = {}
        for report in reports:
            results.extend(report.results)
            rules.update(report.rules)
        return cls(tuple(results), rules)
