"""The formats modelseal recognises, named as they appear in reports."""

from __future__ import annotations

import enum

__all__ = ["ARCHIVE_FORMATS", "PICKLE_FORMATS", "Format"]


class Format(str, enum.Enum):
    """A file format, detected from a file's bytes (never from its name alone)."""

    PICKLE = "pickle"
    PYTORCH_ZIP = "pytorch-zip"
    PYTORCH_LEGACY = "pytorch-legacy"
    PYTORCH_LEGACY_TAR = "pytorch-legacy-tar"
    TORCHSCRIPT = "torchscript"
    JOBLIB = "joblib"
    NUMPY = "numpy"
    NUMPY_NPZ = "npz"
    ZIP = "zip"
    TAR = "tar"
    SEVEN_ZIP = "7z"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    ZLIB = "zlib"
    LZ4 = "lz4"
    KERAS = "keras"
    HDF5 = "hdf5"
    TF_SAVEDMODEL = "tf-savedmodel"
    KERAS_METADATA = "keras-metadata"
    ONNX = "onnx"
    GGUF = "gguf"
    SAFETENSORS = "safetensors"
    PYTHON = "python"
    JSON = "json"
    TEXT = "text"
    EMPTY = "empty"
    SYMLINK = "symlink"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


#: Formats whose loading unpickles data (and so may run code).
PICKLE_FORMATS = frozenset(
    {
        Format.PICKLE,
        Format.PYTORCH_ZIP,
        Format.PYTORCH_LEGACY,
        Format.PYTORCH_LEGACY_TAR,
        Format.TORCHSCRIPT,
        Format.JOBLIB,
        Format.NUMPY,
        Format.NUMPY_NPZ,
    }
)

#: Formats the inventory opens to list members.
ARCHIVE_FORMATS = frozenset(
    {
        Format.ZIP,
        Format.TAR,
        Format.PYTORCH_ZIP,
        Format.PYTORCH_LEGACY_TAR,
        Format.TORCHSCRIPT,
        Format.NUMPY_NPZ,
        Format.KERAS,
        Format.SEVEN_ZIP,
    }
)
