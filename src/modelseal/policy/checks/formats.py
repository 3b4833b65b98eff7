"""Policy check: which file formats may appear (including inside archives)."""

from __future__ import annotations

from modelseal.policy.checks.interface import Check
from modelseal.policy.decision import CheckOutcome, Reason
from modelseal.policy.schema import Policy
from modelseal.policy.subject import Subject

__all__ = ["FormatsCheck"]


class FormatsCheck(Check):
    """Denies files whose detected format is denied, or not in the allow list."""

    name = "formats"

    def evaluate(self, subject: Subject, policy: Policy) -> CheckOutcome | None:
        """Applies when the policy allows or denies formats."""
        rules = policy.formats
        if rules.allow is None and not rules.deny:
            return None
        denied = rules.expanded(rules.deny)
        allowed = rules.expanded(rules.allow) if rules.allow is not None else None
        reasons = []
        for entry in subject.entries:
            if (
                entry.is_member
                and entry.container_format is not None
                and (entry.container_format.value in denied)
            ):
                continue  # the container itself is already reported
            fmt = entry.format.value
            if fmt in denied:
                reasons.append(Reason(f"format {fmt} is denied by the policy", entry.path))
            elif allowed is not None and not entry.is_member and fmt not in allowed:
                reasons.append(
                    Reason(f"format {fmt} is not in the policy's allow list", entry.path)
                )
        summary = f"{len(subject.entries)} file(s) and member(s) checked against the format rules"
        return CheckOutcome(self.name, not reasons, summary, tuple(reasons))
