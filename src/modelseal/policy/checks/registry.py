"""Policy check: the model was pulled, unchanged, from the required registry."""

from __future__ import annotations

from modelseal.errors import ModelsealError
from modelseal.policy.checks.interface import Check
from modelseal.policy.decision import CheckOutcome, Reason
from modelseal.policy.schema import Policy
from modelseal.policy.subject import Subject

__all__ = ["RegistryOriginCheck"]


class RegistryOriginCheck(Check):
    """Passes when ``modelseal pull`` recorded this directory as coming from the required
    registry and its files still hash to the version digest that was pulled."""

    name = "registry"

    def evaluate(self, subject: Subject, policy: Policy) -> CheckOutcome | None:
        """Applies when the policy names a required origin."""
        required = policy.registry.required_origin
        if required is None:
            return None
        from modelseal.registry.client import ClientState
        from modelseal.registry.manifest import version_digest, walk_model

        required = required.rstrip("/")
        record = ClientState().pulled(subject.path)
        if record is None:
            return self._fail(required, f"not pulled from a registry (required: {required})")
        if record.get("registry", "").rstrip("/") != required:
            return self._fail(required, f"pulled from {record.get('registry')}, not {required}")
        try:
            current = version_digest(walk_model(subject.path))
        except ModelsealError as exc:
            return self._fail(required, f"cannot hash the pulled files: {exc.message}")
        if current != record.get("digest"):
            return self._fail(
                required,
                f"files changed since {record.get('model')} was pulled "
                f"(version digest {current[:16]}..., pulled {str(record.get('digest'))[:16]}...)",
            )
        summary = f"pulled from {required} as {record.get('model')}, unchanged since"
        return CheckOutcome(self.name, True, summary)

    def _fail(self, required: str, message: str) -> CheckOutcome:
        return CheckOutcome(self.name, False, f"must come from {required}", (Reason(message),))
