"""The plug point for policy checks: one module per check."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from modelseal.policy.decision import CheckOutcome
from modelseal.policy.schema import Policy
from modelseal.policy.subject import Subject

__all__ = ["Check"]


class Check(ABC):
    """Evaluates one section of a policy against a subject."""

    #: Short name used in reports and rule ids (``MS-POLICY-<NAME>``).
    name: ClassVar[str]

    @abstractmethod
    def evaluate(self, subject: Subject, policy: Policy) -> CheckOutcome | None:
        """The outcome, or None when the policy asks nothing of this check."""
