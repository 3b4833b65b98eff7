"""The plug point for scan rules: one module per format family under ``scan/rules/``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from modelseal.config import Settings
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, Limits
from modelseal.scan.model import Finding, RuleInfo

__all__ = ["Rule", "ScanOptions"]


@dataclass(frozen=True)
class ScanOptions:
    """What a scan run was asked to do."""

    #: Deny by default: unknown pickle globals are critical instead of medium.
    strict: bool = False
    #: Also inspect weight values (the ``weights`` scanner), not only code paths.
    deep: bool = False
    limits: Limits = field(default_factory=Limits)
    settings: Settings = field(default_factory=Settings)


class Rule(ABC):
    """Looks at one entry and yields findings.

    A rule may raise :class:`~modelseal.errors.FormatError` when the entry cannot be
    parsed; findings yielded before the error are kept and the entry's verdict
    becomes ``error`` (or ``malicious`` if something critical was already found).
    """

    #: The formats this rule looks at; ``None`` means every entry.
    formats: ClassVar[frozenset[Format] | None]
    #: Descriptions of every rule id this rule can emit.
    infos: ClassVar[tuple[RuleInfo, ...]]

    @abstractmethod
    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Yield the findings for ``entry``."""

    def applies_to(self, entry: Entry, options: ScanOptions) -> bool:
        """Whether :meth:`check` should run on ``entry``."""
        return self.formats is None or entry.format in self.formats
