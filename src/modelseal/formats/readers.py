"""The registry of tensor readers, imported lazily by format.

To add a weight format, write ``modelseal/formats/<name>.py`` with a
:class:`~modelseal.formats.interface.TensorReader` subclass and list it here.
"""

from __future__ import annotations

import importlib
from functools import cache

from modelseal.formats.format import Format
from modelseal.formats.interface import TensorReader

__all__ = ["reader_for"]

_READERS: dict[Format, str] = {
    Format.SAFETENSORS: "modelseal.formats.safetensors:SafetensorsReader",
    Format.GGUF: "modelseal.formats.gguf:GgufReader",
    Format.PYTORCH_ZIP: "modelseal.formats.torch:TorchZipReader",
    Format.TORCHSCRIPT: "modelseal.formats.torch:TorchZipReader",
    Format.PYTORCH_LEGACY: "modelseal.formats.torch_legacy:TorchLegacyReader",
    Format.NUMPY: "modelseal.formats.numpy:NumpyReader",
    Format.NUMPY_NPZ: "modelseal.formats.numpy:NumpyReader",
    Format.ONNX: "modelseal.formats.onnx:OnnxReader",
    Format.HDF5: "modelseal.formats.hdf5_weights:Hdf5WeightsReader",
}


@cache
def reader_for(fmt: Format) -> TensorReader | None:
    """The tensor reader for ``fmt``, or None if the format stores no tensors we read."""
    target = _READERS.get(fmt)
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    reader: TensorReader = getattr(importlib.import_module(module_name), class_name)()
    return reader
