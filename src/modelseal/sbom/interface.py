"""The SBOM emitter plug point: one :class:`SbomEmitter` per document format.

An emitter turns the collected :class:`~modelseal.sbom.collect.ModelFacts` (plus the
scan result and signature status, when given) into a JSON-ready ``dict``. Emitters
never read files and never print; :mod:`modelseal.sbom` picks one by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from modelseal.sbom.collect import ModelFacts
    from modelseal.scan.model import ScanReport

__all__ = ["EmitContext", "SbomEmitter", "SignatureStatus"]


@dataclass(frozen=True)
class SignatureStatus:
    """What checking the model's signature said."""

    #: ``verified``, ``failed`` or ``not-checked`` (verification was not available).
    status: str
    #: The signature bundle that was checked.
    signature: str
    #: Why it failed or was not checked; the signer identity when verified.
    detail: str = ""


@dataclass(frozen=True)
class EmitContext:
    """Everything besides the model facts that goes into a document."""

    spec_version: str
    #: ISO 8601 UTC creation time (``2026-01-01T00:00:00Z``).
    created: str
    #: A stable id for this document (a UUID string).
    document_id: str
    tool_version: str
    scan: ScanReport | None = None
    signature: SignatureStatus | None = None


class SbomEmitter(ABC):
    """Builds one SBOM format from model facts."""

    #: The ``--format`` name (``cyclonedx``, ``spdx3``).
    name: ClassVar[str]
    #: Spec versions this emitter writes; the first is the default.
    spec_versions: ClassVar[tuple[str, ...]]

    @abstractmethod
    def emit(self, facts: ModelFacts, context: EmitContext) -> dict[str, Any]:
        """The document as a JSON-ready dict."""
