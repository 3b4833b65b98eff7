"""The outcome of a policy check: one decision with every reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelseal.scan.model import FileResult, Finding, RuleInfo, ScanReport, Severity

__all__ = ["CheckOutcome", "Decision", "Reason"]


@dataclass(frozen=True)
class Reason:
    """One reason a check denies (or warns about) a model."""

    message: str
    #: The file (or ``outer!inner`` member) the reason is about, if any.
    path: str | None = None
    severity: Severity = Severity.HIGH


@dataclass(frozen=True)
class CheckOutcome:
    """What one check of the policy concluded."""

    check: str
    passed: bool
    #: One line saying what was checked, shown even when it passed.
    summary: str
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Allow or deny, for one model path under one policy."""

    path: str
    policy: str
    outcomes: tuple[CheckOutcome, ...]

    @property
    def allowed(self) -> bool:
        """True when every check passed."""
        return all(o.passed for o in self.outcomes)

    @property
    def reasons(self) -> tuple[tuple[str, Reason], ...]:
        """Every (check, reason) of every failed check."""
        return tuple((o.check, r) for o in self.outcomes if not o.passed for r in o.reasons)

    def to_dict(self) -> dict[str, Any]:
        """``{"path", "policy", "decision": "allow|deny", "checks": [...]}``."""
        return {
            "path": self.path,
            "policy": self.policy,
            "decision": "allow" if self.allowed else "deny",
            "checks": [
                {
                    "check": o.check,
                    "passed": o.passed,
                    "summary": o.summary,
                    "reasons": [
                        {"message": r.message, "path": r.path, "severity": r.severity.value}
                        for r in o.reasons
                    ],
                }
                for o in self.outcomes
            ],
        }

    def as_report(self) -> ScanReport:
        """The failed checks as a scan-shaped report, for the table and SARIF renderers."""
        by_path: dict[str, list[Finding]] = {}
        rules: dict[str, RuleInfo] = {}
        for check, reason in self.reasons:
            rule_id = f"MS-POLICY-{check.upper()}"
            rules[rule_id] = RuleInfo(
                rule_id, f"Policy check {check}", f"The {check} check of the policy.", Severity.HIGH
            )
            by_path.setdefault(reason.path or self.path, []).append(
                Finding(rule_id, reason.severity, reason.message, f"policy {self.policy}")
            )
        results = tuple(FileResult(p, "policy", tuple(f)) for p, f in by_path.items())
        return ScanReport(results, rules)
