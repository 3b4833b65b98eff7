"""The registry of policy checks, in the order they are reported."""

from __future__ import annotations

from modelseal.policy.checks.formats import FormatsCheck
from modelseal.policy.checks.interface import Check
from modelseal.policy.checks.license import LicenseCheck
from modelseal.policy.checks.lineage import LineageCheck
from modelseal.policy.checks.registry import RegistryOriginCheck
from modelseal.policy.checks.sbom import SbomCheck
from modelseal.policy.checks.scan import ScanCheck
from modelseal.policy.checks.signature import SignatureCheck

__all__ = ["ALL_CHECKS", "Check"]

ALL_CHECKS: tuple[Check, ...] = (
    ScanCheck(),
    SignatureCheck(),
    FormatsCheck(),
    LicenseCheck(),
    SbomCheck(),
    LineageCheck(),
    RegistryOriginCheck(),
)
