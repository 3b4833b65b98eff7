"""The plug point for tensor readers: one small class per weight format."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.formats.tensors import TensorInfo

__all__ = ["TensorReader"]


class TensorReader(ABC):
    """Lists the tensors of one weight format from its headers, lazily."""

    #: The formats this reader understands.
    formats: ClassVar[frozenset[Format]]

    @abstractmethod
    def tensors(self, entry: Entry) -> Sequence[TensorInfo]:
        """Describe every tensor in ``entry`` (raise ``FormatError`` on a bad header)."""
