"""Policy check: which base models a model may derive from."""

from __future__ import annotations

import fnmatch

from modelseal.policy.checks.interface import Check
from modelseal.policy.decision import CheckOutcome, Reason
from modelseal.policy.schema import Policy
from modelseal.policy.subject import Subject

__all__ = ["LineageCheck"]


class LineageCheck(Check):
    """Denies declared base models that match none of the allowed patterns."""

    name = "lineage"

    def evaluate(self, subject: Subject, policy: Policy) -> CheckOutcome | None:
        """Applies when the policy lists allowed base models."""
        patterns = policy.lineage.allowed_base_models
        if patterns is None:
            return None
        bases = subject.facts.base_models
        reasons = tuple(
            Reason(f"base model {base.name} is not allowed by the policy")
            for base in bases
            if not any(fnmatch.fnmatchcase(base.name, pattern) for pattern in patterns)
        )
        found = ", ".join(b.name for b in bases) or "none declared"
        return CheckOutcome(self.name, not reasons, f"base model(s): {found}", reasons)
