"""A model directory the ``modelseal monitor`` CLI can load without running any code from it.

A model directory holds two files:

- ``modelseal-model.json``: the architecture, as a list of layers from a fixed set of PyTorch
  building blocks (``linear``, ``conv1d``, ``conv2d``, ``batchnorm1d``, ``batchnorm2d``,
  ``layernorm``, ``relu``, ``gelu``, ``tanh``, ``sigmoid``, ``silu``, ``dropout``, ``flatten``,
  ``unflatten``, ``maxpool2d``, ``avgpool2d``, ``adaptiveavgpool2d``, ``identity``) stacked as a
  ``torch.nn.Sequential``, and the shape of one input::

      {"format": "modelseal-model/1", "input_shape": [64], "weights": "model.safetensors",
       "layers": [{"type": "linear", "in_features": 64, "out_features": 10}, {"type": "relu"}]}

- the weights (``model.safetensors`` by default): the ``Sequential``'s state dict, read with
  modelseal's strict safetensors reader (never pickle).

Any other model (a transformer, a custom ``nn.Module``) is monitored from Python with
:func:`modelseal.monitor.watch`; the CLI covers models that can be described this way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelseal._io import atomic_output
from modelseal.errors import FormatError
from modelseal.monitor.errors import MonitorError, require_torch

__all__ = [
    "MODEL_FILE",
    "MODEL_FORMAT",
    "LoadedModel",
    "ModelDirError",
    "build_model",
    "load_inputs",
    "load_model_dir",
    "save_model_dir",
]

MODEL_FILE = "modelseal-model.json"
MODEL_FORMAT = "modelseal-model/1"

_INT, _DIM, _FLOAT, _BOOL, _SIZE = "int", "dim", "float", "bool", "size"

# type -> (torch.nn class name, {argument: kind}, required arguments)
_LAYERS: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "linear": (
        "Linear",
        {"in_features": _INT, "out_features": _INT, "bias": _BOOL},
        ("in_features", "out_features"),
    ),
    "conv1d": (
        "Conv1d",
        {
            "in_channels": _INT,
            "out_channels": _INT,
            "kernel_size": _SIZE,
            "stride": _SIZE,
            "padding": _SIZE,
            "bias": _BOOL,
        },
        ("in_channels", "out_channels", "kernel_size"),
    ),
    "conv2d": (
        "Conv2d",
        {
            "in_channels": _INT,
            "out_channels": _INT,
            "kernel_size": _SIZE,
            "stride": _SIZE,
            "padding": _SIZE,
            "bias": _BOOL,
        },
        ("in_channels", "out_channels", "kernel_size"),
    ),
    "batchnorm1d": ("BatchNorm1d", {"num_features": _INT, "eps": _FLOAT}, ("num_features",)),
    "batchnorm2d": ("BatchNorm2d", {"num_features": _INT, "eps": _FLOAT}, ("num_features",)),
    "layernorm": ("LayerNorm", {"normalized_shape": _SIZE, "eps": _FLOAT}, ("normalized_shape",)),
    "relu": ("ReLU", {}, ()),
    "gelu": ("GELU", {}, ()),
    "tanh": ("Tanh", {}, ()),
    "sigmoid": ("Sigmoid", {}, ()),
    "silu": ("SiLU", {}, ()),
    "identity": ("Identity", {}, ()),
    "dropout": ("Dropout", {"p": _FLOAT}, ()),
    "flatten": ("Flatten", {"start_dim": _DIM, "end_dim": _DIM}, ()),
    "unflatten": (
        "Unflatten",
        {"dim": _INT, "unflattened_size": _SIZE},
        ("dim", "unflattened_size"),
    ),
    "maxpool2d": ("MaxPool2d", {"kernel_size": _SIZE, "stride": _SIZE}, ("kernel_size",)),
    "avgpool2d": ("AvgPool2d", {"kernel_size": _SIZE, "stride": _SIZE}, ("kernel_size",)),
    "adaptiveavgpool2d": ("AdaptiveAvgPool2d", {"output_size": _SIZE}, ("output_size",)),
}

# safetensors dtype code <-> torch dtype name
_ST_DTYPES = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float64": "F64",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


class ModelDirError(MonitorError):
    """A model directory, its description or an inputs file is missing or invalid."""


@dataclass(frozen=True)
class LoadedModel:
    """A model loaded from a model directory."""

    model: Any
    input_shape: tuple[int, ...]
    weights: Path
    layers: tuple[dict[str, Any], ...]


def _valid(kind: str, value: Any) -> bool:
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == _FLOAT:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == _DIM:
        return isinstance(value, int) and not isinstance(value, bool) and -8 <= value <= 8
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1 << 24
    return _valid(_INT, value) or (
        isinstance(value, list) and 0 < len(value) <= 4 and all(_valid(_INT, v) for v in value)
    )


def build_model(layers: list[dict[str, Any]]) -> Any:
    """A ``torch.nn.Sequential`` from layer descriptions (see the module docstring)."""
    torch: Any = require_torch()
    if not isinstance(layers, list) or not layers:
        raise ModelDirError("'layers' must be a non-empty list of layer descriptions")
    modules = []
    for position, spec in enumerate(layers):
        if not isinstance(spec, dict) or spec.get("type") not in _LAYERS:
            raise ModelDirError(
                f"layer {position}: unknown or missing type {spec!r:.80}",
                advice="supported layer types: " + ", ".join(sorted(_LAYERS)),
            )
        cls_name, arguments, required = _LAYERS[spec["type"]]
        options = {k: v for k, v in spec.items() if k != "type"}
        unknown = sorted(set(options) - set(arguments))
        missing = sorted(set(required) - set(options))
        invalid = sorted(
            k for k, v in options.items() if k in arguments and not _valid(arguments[k], v)
        )
        if unknown or missing or invalid:
            raise ModelDirError(
                f"layer {position} ({spec['type']}): "
                + "; ".join(
                    f"{label} {', '.join(names)}"
                    for label, names in (
                        ("unknown argument(s)", unknown),
                        ("missing argument(s)", missing),
                        ("invalid value(s) for", invalid),
                    )
                    if names
                ),
                advice=f"{spec['type']} takes: {', '.join(arguments) or 'no arguments'}",
            )
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        modules.append(getattr(torch.nn, cls_name)(**options))
    return torch.nn.Sequential(*modules)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelDirError(
            f"{path.parent}: no {MODEL_FILE}",
            advice=f"a model directory holds {MODEL_FILE} and the weights; see docs/monitor.md",
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise ModelDirError(
            f"{path}: not a {MODEL_FORMAT} description",
            advice=f'set "format": "{MODEL_FORMAT}"; see docs/monitor.md',
        )
    return data


def load_model_dir(
    directory: str | os.PathLike[str],
    *,
    signature: str | os.PathLike[str] | None = None,
    key: Any = None,
) -> LoadedModel:
    """Build the model a model directory describes and load its safetensors weights (strict).

    With ``signature`` (a modelseal/OpenSSF signature bundle of the directory) and ``key``,
    every tensor is checked against the signed per-tensor manifest as it is read
    (:func:`modelseal.integrity.load_safetensors`); a mismatch raises
    :class:`~modelseal.errors.VerificationError`.
    """
    from modelseal.formats import describe_tensors, tensor_array, walk_files

    torch: Any = require_torch()
    root = Path(directory)
    if not root.is_dir():
        raise ModelDirError(f"{root}: not a directory", advice="pass a model directory")
    data = _read_json(root / MODEL_FILE)
    shape = data.get("input_shape")
    if not isinstance(shape, list) or not shape or not all(_valid(_INT, s) for s in shape):
        raise ModelDirError(f"{root / MODEL_FILE}: 'input_shape' must be a list of sizes")
    weights_name = data.get("weights", "model.safetensors")
    if not isinstance(weights_name, str) or Path(weights_name).name != weights_name:
        raise ModelDirError(f"{root / MODEL_FILE}: 'weights' must be a file name in the directory")
    model = build_model(data.get("layers"))  # type: ignore[arg-type]  # validated there
    weights = root / weights_name
    if not weights.is_file():
        raise ModelDirError(f"{weights}: weights file not found")
    try:
        entry = next(iter(walk_files(weights)))
        infos = describe_tensors(entry)
    except (FormatError, StopIteration) as exc:
        raise ModelDirError(
            f"{weights}: not a readable safetensors file ({exc})",
            advice="store the weights as safetensors (save_model_dir() writes them)",
        ) from exc
    verified: dict[str, Any] = {}
    if signature is not None:
        from modelseal.integrity import load_safetensors

        verified = load_safetensors(weights, signature=signature, key=key, root=root)
    state = {}
    for info in infos:
        if info.dtype not in _ST_DTYPES:
            raise ModelDirError(f"{weights}: tensor {info.name} has unsupported dtype {info.dtype}")
        # A verified copy, or a copy out of the memory map.
        array = verified[info.name] if signature is not None else np.array(tensor_array(info))
        tensor = torch.from_numpy(array)
        if info.dtype == "bfloat16":
            tensor = tensor.view(torch.bfloat16)
        state[info.name] = tensor
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelDirError(
            f"{weights}: the weights do not fit the described layers: {str(exc).splitlines()[0]}",
            advice=f"make {MODEL_FILE} describe the network the weights were saved from",
        ) from exc
    model.eval()
    return LoadedModel(model, tuple(shape), weights, tuple(data["layers"]))


def save_model_dir(
    directory: str | os.PathLike[str],
    model: Any,
    layers: list[dict[str, Any]],
    input_shape: tuple[int, ...] | list[int],
) -> Path:
    """Write ``model`` (built by :func:`build_model` from ``layers``) as a model directory."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    reference = build_model(layers)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    if got != want:
        raise ModelDirError("the model does not match the layer descriptions")
    _write_safetensors(root / "model.safetensors", model.state_dict())
    description = {
        "format": MODEL_FORMAT,
        "input_shape": list(input_shape),
        "weights": "model.safetensors",
        "layers": layers,
    }
    with atomic_output(root / MODEL_FILE) as handle:
        handle.write(json.dumps(description, indent=1).encode("utf-8") + b"\n")
    return root


def _write_safetensors(path: Path, state: dict[str, Any]) -> None:
    from modelseal.monitor.integrity import torch_dtype_name

    torch: Any = require_torch()
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        dtype = torch_dtype_name(tensor.dtype)
        if dtype not in _ST_DTYPES:
            raise ModelDirError(f"cannot store {name}: dtype {dtype} is not supported")
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {
            "dtype": _ST_DTYPES[dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with atomic_output(path) as handle:
        handle.write(len(text).to_bytes(8, "little") + text)
        for raw in blobs:
            handle.write(raw)


def load_inputs(path: str | os.PathLike[str], input_shape: tuple[int, ...]) -> np.ndarray:
    """Inputs from a ``.npy`` file or an ``.npz`` file (array ``inputs`` or its only array).

    Read with ``allow_pickle=False``; must be numeric with shape ``(N, *input_shape)``.
    """
    source = Path(path)
    try:
        loaded = np.load(source, allow_pickle=False)
    except FileNotFoundError as exc:
        raise ModelDirError(f"{source}: inputs file not found") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise ModelDirError(
            f"{source}: not a NumPy .npy/.npz file without pickled objects ({exc})",
            advice="save the inputs with numpy.save('inputs.npy', array)",
        ) from exc
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = loaded.files
            if "inputs" in names:
                array = loaded["inputs"]
            elif len(names) == 1:
                array = loaded[names[0]]
            else:
                raise ModelDirError(f"{source}: several arrays and none named 'inputs'")
    else:
        array = loaded
    if array.dtype.kind not in "fiub" or array.ndim != len(input_shape) + 1:
        raise ModelDirError(
            f"{source}: expected a numeric array of shape (N, {', '.join(map(str, input_shape))}),"
            f" got {array.dtype} {array.shape}"
        )
    if tuple(array.shape[1:]) != tuple(input_shape) or len(array) == 0:
        raise ModelDirError(
            f"{source}: inputs have shape {array.shape}, the model takes (N, "
            f"{', '.join(map(str, input_shape))})"
        )
    return np.ascontiguousarray(array, dtype=np.float32)
