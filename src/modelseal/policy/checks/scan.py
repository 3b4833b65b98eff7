"""Policy check: the static scan (and, when asked, weight forensics)."""

from __future__ import annotations

from modelseal.policy.checks.interface import Check
from modelseal.policy.decision import CheckOutcome, Reason
from modelseal.policy.schema import Policy
from modelseal.policy.subject import Subject
from modelseal.scan.model import Severity

__all__ = ["ScanCheck"]


class ScanCheck(Check):
    """Denies findings above ``scan.max_severity`` and files that could not be analysed."""

    name = "scan"

    def evaluate(self, subject: Subject, policy: Policy) -> CheckOutcome:
        """Always applies: every policy scans."""
        limit = Severity(policy.scan.max_severity)
        report = subject.scan_report(strict=policy.scan.strict, deep=policy.scan.deep)
        reasons: list[Reason] = []
        for result in report.results:
            if result.error:
                reasons.append(Reason(f"could not be analysed: {result.error}", result.path))
            for finding in result.findings:
                if finding.severity.rank > limit.rank:
                    reasons.append(
                        Reason(
                            f"{finding.severity.value}: {finding.message}",
                            result.path,
                            finding.severity,
                        )
                    )
        mode = "strict" if policy.scan.strict else "standard"
        deep = " + weight forensics" if policy.scan.deep else ""
        summary = (
            f"{len(report.results)} file(s) scanned ({mode}{deep}), "
            f"max allowed severity {limit.value}"
        )
        return CheckOutcome(self.name, not reasons, summary, tuple(reasons))
