"""Format detection, the inventory, and tensor readers (nothing here executes input)."""

from modelseal.formats.format import ARCHIVE_FORMATS, PICKLE_FORMATS, Format
from modelseal.formats.inventory import Entry, Limits, expand, walk, walk_files
from modelseal.formats.sniff import detect
from modelseal.formats.tensors import TensorInfo, describe_tensors, tensor_array

__all__ = [
    "ARCHIVE_FORMATS",
    "PICKLE_FORMATS",
    "Entry",
    "Format",
    "Limits",
    "TensorInfo",
    "describe_tensors",
    "detect",
    "expand",
    "tensor_array",
    "walk",
    "walk_files",
]
