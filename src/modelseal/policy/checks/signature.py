"""Policy check: a valid signature by a trusted key."""

from __future__ import annotations

from modelseal.errors import ModelsealError
from modelseal.policy.checks.interface import Check
from modelseal.policy.decision import CheckOutcome, Reason
from modelseal.policy.schema import Policy
from modelseal.policy.subject import Subject

__all__ = ["SignatureCheck"]


class SignatureCheck(Check):
    """Passes when the model verifies against its signature with one of the trusted keys."""

    name = "signature"

    def evaluate(self, subject: Subject, policy: Policy) -> CheckOutcome | None:
        """Applies when the policy requires a signature."""
        if not policy.signature.required:
            return None
        from modelseal.integrity import verify

        keys = (*policy.signature.keys, *subject.keys)
        signature = subject.signature_path
        if not keys:
            return self._fail(
                "the policy requires a signature but names no trusted key (give --key)"
            )
        if not signature.exists():
            return self._fail(f"no signature found at {signature}")
        reasons: list[Reason] = []
        for key in keys:
            try:
                result = verify(
                    subject.path,
                    key=key,
                    signature=signature,
                    allow_unsigned=policy.signature.allow_unsigned_files,
                )
            except ModelsealError as exc:
                reasons.append(Reason(f"key {key.name}: {exc.message}"))
                continue
            if result.ok:
                summary = f"signature {signature.name} verified with trusted key {key.name}"
                return CheckOutcome(self.name, True, summary)
            reasons.extend(Reason(f"key {key.name}: {text}") for text in result.reasons)
        summary = f"signature {signature.name} did not verify with any of {len(keys)} key(s)"
        return CheckOutcome(self.name, False, summary, tuple(reasons))

    def _fail(self, message: str) -> CheckOutcome:
        return CheckOutcome(
            self.name, False, "a signature by a trusted key is required", (Reason(message),)
        )
