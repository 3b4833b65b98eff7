"""What a file's name claims it is, so that a file which does not parse as its claimed
format family is reported as broken, never as clean.

Content sniffing (:mod:`modelseal.formats.sniff`) decides a file's format; the name
decides only what the file *should* be. A real zip called ``pytorch_model.bin`` is read
as a PyTorch zip; random bytes called ``pytorch_model.bin`` are not "an unknown file"
but a weight file that cannot be read: whatever loads it would not load what the
scanner saw. The table below is data: one row per name pattern, first match wins.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from modelseal.formats.format import Format

__all__ = ["CLAIMS", "Claim", "claim_for", "could_be_model", "is_lfs_pointer"]

_COMPRESSED = frozenset({Format.GZIP, Format.BZIP2, Format.XZ, Format.ZLIB, Format.LZ4})
_PICKLES = frozenset({Format.PICKLE, Format.JOBLIB, Format.PYTORCH_LEGACY})
_TORCH = _PICKLES | {
    Format.PYTORCH_ZIP,
    Format.PYTORCH_LEGACY_TAR,
    Format.TORCHSCRIPT,
}
_ZIPS = frozenset(
    {Format.ZIP, Format.PYTORCH_ZIP, Format.TORCHSCRIPT, Format.NUMPY_NPZ, Format.KERAS}
)
#: Formats a generic ``.bin`` weight file is seen in (PyTorch, safetensors, GGUF...).
_WEIGHTS = (
    _TORCH
    | _ZIPS
    | {
        Format.SAFETENSORS,
        Format.GGUF,
        Format.ONNX,
        Format.HDF5,
        Format.NUMPY,
    }
)
#: Legacy GGML model files (whisper.cpp's ``ggml-*.bin``; ggml, ggmf, ggjt, ggla as
#: little-endian uint32) and fastText binary models (magic 793712314).
_RAW_WEIGHT_MAGICS = (b"lmgg", b"fmgg", b"tjgg", b"algg", b"\xba\x16\x4f\x2f")


@dataclass(frozen=True)
class Claim:
    """A format family that a name pattern claims."""

    #: A shell pattern matched against the lower-cased file name (no directories).
    pattern: str
    #: The family in words, as the error message says it.
    family: str
    #: The detected formats that count as "parses as that family"; empty: no claim
    #: (names of raw tensor shards that have no header to check).
    accepts: frozenset[Format]
    #: Also accept any top-level protobuf message (``.pb`` files of many schemas).
    protobuf: bool = False
    #: No claim when a file next to this one matches one of these patterns (``{stem}``
    #: is the file's name without its extension): raw tensor bytes described elsewhere.
    raw_if_sibling: tuple[str, ...] = ()
    #: Also accept content that starts with one of these magic numbers: formats that
    #: modelseal has no reader for but that hold no code (recognised, not parsed).
    magics: tuple[bytes, ...] = ()
    #: Detected formats for which a format rule already explains why the file is broken
    #: (the safetensors rule reads every ``*.safetensors`` it cannot recognise).
    explained_for: frozenset[Format] = frozenset()


#: First match wins, so specific names (Hugging Face weight files, raw shards) come
#: before the extensions they end with.
CLAIMS: tuple[Claim, ...] = (
    # Raw tensor bytes without a header (TensorFlow.js shards): nothing to check.
    Claim("group*-shard*of*.bin", "raw TensorFlow.js weight shard", frozenset()),
    Claim("pytorch_model*.bin", "PyTorch weight file", _TORCH | _ZIPS | {Format.SAFETENSORS}),
    Claim("*_pytorch_model*.bin", "PyTorch weight file", _TORCH | _ZIPS | {Format.SAFETENSORS}),
    Claim("adapter_model.bin", "PyTorch adapter weights", _TORCH | _ZIPS | {Format.SAFETENSORS}),
    Claim("training_args.bin", "PyTorch pickle of training arguments", _TORCH | _ZIPS),
    # OpenVINO IR keeps raw weights in model.bin next to model.xml; ONNX external data
    # is raw bytes that a sibling .onnx points to.
    Claim(
        "*.bin",
        "model weight file (PyTorch, safetensors, GGUF...)",
        _WEIGHTS,
        raw_if_sibling=("{stem}.xml", "*.onnx"),
        magics=_RAW_WEIGHT_MAGICS,
    ),
    Claim("*.pt", "PyTorch file", _TORCH),
    Claim("*.pth", "PyTorch file", _TORCH),
    Claim("*.ckpt", "checkpoint (PyTorch or safetensors)", _TORCH | {Format.SAFETENSORS}),
    Claim("*.pkl", "pickle", _PICKLES | _COMPRESSED),
    Claim("*.pickle", "pickle", _PICKLES | _COMPRESSED),
    Claim("*.joblib", "joblib pickle", _PICKLES | _COMPRESSED),
    Claim("*.npy", "NumPy array", frozenset({Format.NUMPY})),
    Claim("*.npz", "NumPy archive", frozenset({Format.NUMPY_NPZ, Format.ZIP})),
    Claim(
        "*.safetensors",
        "safetensors file",
        frozenset({Format.SAFETENSORS}),
        explained_for=frozenset({Format.UNKNOWN, Format.TEXT, Format.JSON}),
    ),
    Claim("*.gguf", "GGUF model", frozenset({Format.GGUF})),
    Claim("*.onnx", "ONNX model", frozenset({Format.ONNX})),
    Claim("*.h5", "HDF5 / Keras model", frozenset({Format.HDF5})),
    Claim("*.hdf5", "HDF5 / Keras model", frozenset({Format.HDF5})),
    Claim("*.keras", "Keras model", frozenset({Format.KERAS, Format.ZIP, Format.HDF5})),
    Claim(
        "*.pb",
        "protobuf (TensorFlow / ONNX)",
        frozenset({Format.TF_SAVEDMODEL, Format.ONNX}),
        protobuf=True,
    ),
    Claim("*.zip", "zip archive", _ZIPS),
    Claim("*.tar", "tar archive", frozenset({Format.TAR, Format.PYTORCH_LEGACY_TAR})),
    Claim("*.tar.gz", "gzip-compressed tar archive", frozenset({Format.GZIP})),
    Claim("*.tgz", "gzip-compressed tar archive", frozenset({Format.GZIP})),
    Claim("*.tar.xz", "xz-compressed tar archive", frozenset({Format.XZ})),
    Claim("*.tar.bz2", "bzip2-compressed tar archive", frozenset({Format.BZIP2})),
    Claim("*.7z", "7z archive", frozenset({Format.SEVEN_ZIP})),
)

_LFS_POINTER = b"version https://git-lfs.github.com/spec/"

#: Extensions of documents and images: files that are never weights or code. Anything
#: else (no extension, an unknown one, ``.py``, ``.jinja``) could be loaded as a model.
_DOCUMENTS = (
    ".txt",
    ".md",
    ".rst",
    ".json",
    ".yaml",
    ".yml",
    ".csv",
    ".tsv",
    ".html",
    ".css",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".svg",
    ".pdf",
    ".cff",
)


def claim_for(name: str) -> Claim | None:
    """The claim that a file name makes, or None when it claims no model format."""
    lowered = name.lower()
    for claim in CLAIMS:
        if fnmatch.fnmatchcase(lowered, claim.pattern):
            return claim if claim.accepts else None
    return None


def is_lfs_pointer(head: bytes) -> bool:
    """Whether ``head`` is a Git LFS pointer file (the model was never downloaded)."""
    return head.startswith(_LFS_POINTER)


def could_be_model(name: str) -> bool:
    """Whether a file called ``name`` (whose content cannot be read, e.g. an encrypted
    archive member) could be a model file or code: everything but documents."""
    return not name.lower().endswith(_DOCUMENTS)
