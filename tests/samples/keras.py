"""Builders for Keras samples, written the way Keras writes them (Keras is not installed).

``.keras`` (Keras 3): a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``.
``.h5`` (legacy tf.keras): an HDF5 file whose root ``model_config`` attribute holds the
architecture JSON and whose ``model_weights`` group holds the weights.

Lambda code is produced with ``marshal.dumps`` of code we compile here (never run);
the scanner must not ``marshal.loads`` it.
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DANGEROUS_LAMBDA",
    "dense_layer",
    "dtype_policy",
    "functional",
    "keras3_lambda",
    "lambda_code",
    "legacy_lambda",
    "legacy_sequential",
    "sequential",
    "write_h5",
    "write_keras",
    "write_weights_h5",
]

#: A harmless stand-in for a malicious Lambda (compiled, never executed).
DANGEROUS_LAMBDA = "lambda x: __import__('os').system('true') or x"


def lambda_code(source: str) -> str:
    """base64 of ``marshal.dumps`` of the code of a lambda expression, as Keras stores it."""
    module = compile(source, "<keras-lambda>", "eval")
    code = next(c for c in module.co_consts if hasattr(c, "co_code"))
    return base64.b64encode(marshal.dumps(code)).decode("ascii") + "\n"


def dtype_policy() -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }


def dense_layer(name: str = "dense", units: int = 2, **extra: Any) -> dict[str, Any]:
    """A Keras 3 Dense layer config."""
    config = {
        "name": name,
        "trainable": True,
        "dtype": dtype_policy(),
        "units": units,
        "activation": "relu",
        "use_bias": True,
        "kernel_initializer": {
            "module": "keras.initializers",
            "class_name": "GlorotUniform",
            "config": {"seed": None},
            "registered_name": None,
        },
        "bias_initializer": {
            "module": "keras.initializers",
            "class_name": "Zeros",
            "config": {},
            "registered_name": None,
        },
        "kernel_regularizer": None,
        "bias_regularizer": None,
        **extra,
    }
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": config,
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
    }


def keras3_lambda(source: str = DANGEROUS_LAMBDA, name: str = "lambda") -> dict[str, Any]:
    """A Keras 3 Lambda layer config."""
    return {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": dtype_policy(),
            "function": {
                "class_name": "__lambda__",
                "config": {"code": lambda_code(source), "defaults": None, "closure": None},
            },
            "arguments": {},
        },
        "registered_name": None,
    }


def sequential(layers: list[dict[str, Any]], name: str = "sequential") -> dict[str, Any]:
    """A Keras 3 Sequential model config."""
    input_layer = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "input"},
        "registered_name": None,
    }
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": dtype_policy(),
            "layers": [input_layer, *layers],
            "build_input_shape": [None, 4],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
        "compile_config": {
            "optimizer": {
                "module": "keras.optimizers",
                "class_name": "Adam",
                "config": {"name": "adam", "learning_rate": 0.001},
                "registered_name": None,
            },
            "loss": "mse",
            "metrics": None,
        },
    }


def functional(layers: list[dict[str, Any]], name: str = "inner") -> dict[str, Any]:
    """A Keras 3 Functional model config (usable as a layer of another model)."""
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": name,
            "trainable": True,
            "layers": [{**layer, "inbound_nodes": []} for layer in layers],
            "input_layers": [[layers[0]["config"]["name"], 0, 0]],
            "output_layers": [[layers[-1]["config"]["name"], 0, 0]],
        },
        "registered_name": "Functional",
    }


def legacy_lambda(source: str = DANGEROUS_LAMBDA, name: str = "lambda") -> dict[str, Any]:
    """A tf.keras 2 Lambda layer config (as in legacy .h5 files)."""
    return {
        "class_name": "Lambda",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "function": [lambda_code(source), None, None],
            "function_type": "lambda",
            "module": "__main__",
            "output_shape": None,
            "output_shape_type": "raw",
            "output_shape_module": None,
            "arguments": {},
        },
    }


def legacy_sequential(layers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A tf.keras 2 Sequential config: Dense-only unless ``layers`` is given."""
    dense = {
        "class_name": "Dense",
        "config": {
            "name": "dense",
            "trainable": True,
            "dtype": "float32",
            "units": 2,
            "activation": "relu",
            "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
        },
    }
    first = {
        "class_name": "InputLayer",
        "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "dense_input"},
    }
    return {
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": [first, dense, *(layers or [])]},
    }


def write_weights_h5(target: Path | io.BytesIO, *, legacy: bool = False) -> None:
    """Weights only (no model_config): Keras 3 ``model.weights.h5`` or a legacy weights file."""
    import h5py

    with h5py.File(target, "w") as handle:
        if legacy:
            group = handle.create_group("dense/dense")
            group.create_dataset("kernel:0", data=np.ones((4, 2), dtype=np.float32))
            group.create_dataset("bias:0", data=np.zeros(2, dtype=np.float32))
            handle.attrs["layer_names"] = [b"dense"]
        else:
            group = handle.create_group("layers/dense/vars")
            group.create_dataset("0", data=np.ones((4, 2), dtype=np.float32))
            group.create_dataset("1", data=np.zeros(2, dtype=np.float32))
            handle.create_group("optimizer/vars")


def write_keras(path: Path, config: dict[str, Any] | str, *, version: str = "3.6.0") -> Path:
    """A Keras 3 ``.keras`` zip with the given architecture config."""
    weights = io.BytesIO()
    write_weights_h5(weights)
    text = config if isinstance(config, str) else json.dumps(config)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": version, "date_saved": "x"}))
        archive.writestr("config.json", text)
        archive.writestr("model.weights.h5", weights.getvalue())
    return path


def write_h5(
    path: Path, config: dict[str, Any] | str | None, training: dict[str, Any] | None = None
) -> Path:
    """A legacy tf.keras ``.h5`` model (``config=None``: a weights-only file)."""
    import h5py

    with h5py.File(path, "w") as handle:
        if training is not None:
            handle.attrs["training_config"] = json.dumps(training).encode()
        if config is not None:
            text = config if isinstance(config, str) else json.dumps(config)
            handle.attrs["model_config"] = text
            handle.attrs["keras_version"] = "2.15.0"
            handle.attrs["backend"] = "tensorflow"
        group = handle.create_group("model_weights/dense/dense")
        group.create_dataset("kernel:0", data=np.ones((4, 2), dtype=np.float32))
        group.create_dataset("bias:0", data=np.zeros(2, dtype=np.float32))
        handle["model_weights"].attrs["layer_names"] = [b"dense"]
    return path
