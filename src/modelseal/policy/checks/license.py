"""Policy check: the licenses the model declares."""

from __future__ import annotations

from modelseal.policy.checks.interface import Check
from modelseal.policy.decision import CheckOutcome, Reason
from modelseal.policy.schema import Policy
from modelseal.policy.subject import Subject

__all__ = ["LicenseCheck"]


class LicenseCheck(Check):
    """Denies missing licenses (when required), denied ones, and ones outside the allow list."""

    name = "license"

    def evaluate(self, subject: Subject, policy: Policy) -> CheckOutcome | None:
        """Applies when the policy says anything about licenses."""
        rules = policy.license
        if rules.allow is None and not rules.deny and not rules.require:
            return None
        licenses = subject.facts.licenses
        allowed = {a.lower() for a in rules.allow} if rules.allow is not None else None
        denied = {d.lower() for d in rules.deny}
        reasons: list[Reason] = []
        if not licenses and rules.require:
            reasons.append(Reason("no license found (model card, GGUF or config metadata)"))
        for info in licenses:
            names = {info.name.lower(), info.license_ref.lower(), info.raw.lower()}
            if names & denied:
                reasons.append(Reason(f"license {info.name} is denied by the policy"))
            elif allowed is not None and not names & allowed:
                reasons.append(Reason(f"license {info.name} is not in the policy's allow list"))
        found = ", ".join(i.name for i in licenses) or "none"
        return CheckOutcome(self.name, not reasons, f"declared license(s): {found}", tuple(reasons))
