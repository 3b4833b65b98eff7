"""Policy check: facts the model's SBOM must contain."""

from __future__ import annotations

from modelseal.policy.checks.interface import Check
from modelseal.policy.decision import CheckOutcome, Reason
from modelseal.policy.schema import Policy
from modelseal.policy.subject import Subject
from modelseal.sbom.collect import ModelFacts

__all__ = ["SbomCheck"]

_PRESENT = {
    "license": lambda f: bool(f.licenses),
    "base_model": lambda f: bool(f.base_models),
    "datasets": lambda f: bool(f.datasets),
    "architecture": lambda f: bool(f.architectures or f.model_type),
    "parameters": lambda f: f.parameter_count is not None,
}


class SbomCheck(Check):
    """Denies when a required SBOM field cannot be filled from the model itself."""

    name = "sbom"

    def evaluate(self, subject: Subject, policy: Policy) -> CheckOutcome | None:
        """Applies when the policy requires SBOM fields."""
        required = policy.sbom.required_fields
        if not required:
            return None
        facts: ModelFacts = subject.facts
        missing = [name for name in required if not _PRESENT[name](facts)]
        reasons = tuple(Reason(f"the SBOM has no {name.replace('_', ' ')}") for name in missing)
        summary = f"required SBOM fields: {', '.join(required)}"
        return CheckOutcome(self.name, not missing, summary, reasons)
