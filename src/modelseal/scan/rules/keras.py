"""Keras ``.keras``, ``.h5`` and SavedModel ``keras_metadata.pb``: Lambdas and non-Keras objects.

The whole architecture config is walked (every nested model, layer, initializer,
activation or other serialized object at any depth), so a Lambda inside a Functional
model inside a Sequential layer is found like a top-level one.

The same checks run on every node of a SavedModel's ``keras_metadata.pb`` (tf.keras
2.5+ SavedModels keep each layer's config there as JSON inside a protobuf).

* ``MS-KERAS-LAMBDA`` — a Lambda layer carries Python bytecode that runs when the model
  is loaded (legacy ``.h5``, or ``.keras`` with ``safe_mode=False``) or called. The code
  is decoded far enough to list the names it uses (see :func:`~modelseal.formats.keras.code_names`):
  critical when one of them is a known-dangerous global (``os.system``, ``eval``,
  ``__import__``...), high otherwise.
* ``MS-KERAS-DANGEROUS-OBJECT`` — a config object whose ``module``/``class_name`` (or
  dotted legacy ``class_name``) resolves to a known-dangerous callable such as
  ``builtins.exec`` or ``os.system``: Keras imports and calls it while deserializing.
* ``MS-KERAS-CUSTOM-OBJECT`` — an object from a module outside Keras' own namespaces,
  or registered under a custom package name: loading needs (and imports) that code.
  Legacy configs name classes without modules; a class name Keras does not ship is
  reported with low severity (loading fails unless the user supplies it).

Known-dangerous means the pickle scanner's list
(:func:`modelseal.scan.pickle.globals.classify`), extended by the user's settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.formats.keras import (
    MAX_CONFIG_BYTES,
    CodeNames,
    code_names,
    read_keras_config,
    read_saved_metadata,
    read_savedmodel_keras_nodes,
)
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity
from modelseal.scan.pickle.globals import classify

__all__ = ["KERAS_CLASSES", "KERAS_NAMESPACES", "KerasRule"]

#: Top-level packages whose classes are Keras' own (``module`` values in Keras 3 configs).
KERAS_NAMESPACES = frozenset(
    {
        "keras",
        "tf_keras",
        "tensorflow.keras",
        "tensorflow.python.keras",
        # Published by the Keras team; their model classes ship in these packages.
        "keras_hub",
        "keras_nlp",
        "keras_cv",
    }
)

#: Class names legacy (module-less) configs use for Keras' own objects.
KERAS_CLASSES = frozenset(
    {
        # models
        "Model", "Functional", "Sequential",
        # core layers
        "InputLayer", "Dense", "EinsumDense", "Activation", "Dropout", "Flatten", "Reshape",
        "Permute", "RepeatVector", "Embedding", "Masking", "Identity", "Lambda",
        "TFOpLambda", "SlicingOpLambda", "ActivityRegularization", "SpatialDropout1D",
        "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
        "AlphaDropout", "UnitNormalization", "Rescaling", "Normalization", "CenterCrop",
        "Resizing",
        # convolution and pooling
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
        "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
        "DepthwiseConv2D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
        "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalMaxPooling1D",
        "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAveragePooling1D",
        "GlobalAveragePooling2D", "GlobalAveragePooling3D", "ZeroPadding1D",
        "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
        "UpSampling1D", "UpSampling2D", "UpSampling3D",
        # recurrent and attention
        "LSTM", "GRU", "SimpleRNN", "RNN", "LSTMCell", "GRUCell", "SimpleRNNCell",
        "StackedRNNCells", "Bidirectional", "TimeDistributed", "ConvLSTM1D", "ConvLSTM2D",
        "ConvLSTM3D", "Attention", "AdditiveAttention", "MultiHeadAttention",
        "GroupQueryAttention",
        # normalization, merging, activations
        "BatchNormalization", "LayerNormalization", "GroupNormalization",
        "SpectralNormalization", "Add", "Subtract", "Multiply", "Average", "Maximum",
        "Minimum", "Concatenate", "Dot", "ReLU", "LeakyReLU", "PReLU", "ELU",
        "ThresholdedReLU", "Softmax",
        # preprocessing
        "TextVectorization", "StringLookup", "IntegerLookup", "CategoryEncoding",
        "Hashing", "Discretization", "RandomFlip", "RandomRotation", "RandomZoom",
        "RandomTranslation", "RandomContrast", "RandomCrop", "RandomBrightness",
        # initializers, regularizers, constraints
        "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform",
        "LecunNormal", "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal",
        "TruncatedNormal", "VarianceScaling", "Orthogonal", "L1", "L2", "L1L2",
        "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint",
        # optimizers, losses, metrics, dtype policies and serialization markers
        "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam",
        "Ftrl", "Lion", "DTypePolicy", "Policy", "FloatDTypePolicy", "ExponentialDecay",
        "__tensor__", "__numpy__", "__bytes__", "__typespec__", "__lambda__",
        "__keras_tensor__", "__ellipsis__", "__slice__", "function",
        # metrics and losses (compiled models), and tf.keras SavedModel JSON markers
        "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
        "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
        "SparseTopKCategoricalAccuracy", "AUC", "Precision", "Recall", "MeanSquaredError",
        "MeanAbsoluteError", "BinaryCrossentropy", "CategoricalCrossentropy",
        "SparseCategoricalCrossentropy", "Huber", "LossFunctionWrapper", "TensorShape",
        "TypeSpec", "TensorSpec", "InputSpec", "__tuple__",
    }
)  # fmt: skip

LAMBDA = RuleInfo(
    "MS-KERAS-LAMBDA",
    "Keras Lambda layer (Python bytecode)",
    "A Lambda layer stores Python bytecode that runs when the model is loaded or called "
    "(legacy .h5, or .keras with safe_mode=False). Critical when the code uses a "
    "known-dangerous name such as os.system, eval or __import__.",
    Severity.HIGH,
)
DANGEROUS_OBJECT = RuleInfo(
    "MS-KERAS-DANGEROUS-OBJECT",
    "Keras config calls a dangerous Python object",
    "A serialized object's module/class_name resolves to a known-dangerous callable "
    "(e.g. builtins.exec, os.system) that Keras imports and calls while loading.",
    Severity.CRITICAL,
)
CUSTOM_OBJECT = RuleInfo(
    "MS-KERAS-CUSTOM-OBJECT",
    "Keras custom object",
    "A config object comes from outside Keras' own namespaces or is registered under a "
    "custom name: loading imports that module or needs user-supplied code.",
    Severity.MEDIUM,
)

_MAX_DEPTH = 200
#: ``saved_model.pb`` read for its Keras user objects (as the SavedModel rule reads it).
MAX_SAVEDMODEL_BYTES = 1024**3
_MAX_NAMES_SHOWN = 12


class KerasRule(Rule):
    """Flags Lambda layers and non-Keras objects anywhere in a Keras model config."""

    formats = frozenset({Format.KERAS, Format.HDF5, Format.KERAS_METADATA, Format.TF_SAVEDMODEL})
    infos = (LAMBDA, DANGEROUS_OBJECT, CUSTOM_OBJECT)

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Yield findings for every Lambda and foreign object in the model config."""
        if entry.format in (Format.KERAS_METADATA, Format.TF_SAVEDMODEL):
            yield from _check_saved_metadata(entry, options)
            return
        config = read_keras_config(entry, options.limits)
        if config is None:  # an HDF5 file that is not a Keras model
            return
        for location, obj in _objects(config.config, "", 0):
            yield from _check_object(obj, location or "model", options)
        if config.training_config is not None:
            for location, obj in _objects(config.training_config, "training_config", 0):
                yield from _check_object(obj, location, options)


def _check_saved_metadata(entry: Entry, options: ScanOptions) -> Iterator[Finding]:
    """Every Keras node of a SavedModel: ``keras_metadata.pb``, or the user objects of
    ``saved_model.pb`` (TF 2.0-2.4).

    Keras revives each layer from its own node's metadata, and the root node repeats
    the whole architecture (``config``, ``model_config``), so every node is walked; a
    finding already made for the same object (same rule, message and innermost
    ``Class(name)``) under another node is not repeated.
    """
    limit = MAX_CONFIG_BYTES if entry.format is Format.KERAS_METADATA else MAX_SAVEDMODEL_BYTES
    if entry.size > limit:
        raise LimitExceededError(f"{entry.path}: larger than {limit:,} bytes")
    with entry.open() as stream:
        data = stream.read(limit + 1)
    if entry.format is Format.KERAS_METADATA:
        nodes = read_saved_metadata(data, entry.path)
    else:
        nodes = read_savedmodel_keras_nodes(data, entry.path)
    seen: set[tuple[str, str, str]] = set()
    for node in nodes:
        for location, obj in _objects(node.metadata, node.node_path or node.identifier, 0):
            for finding in _check_object(obj, location, options):
                key = (finding.rule, finding.message, location.rsplit("/", 1)[-1])
                if key not in seen:
                    seen.add(key)
                    yield finding


def _objects(value: Any, path: str, depth: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every dict in the config that names a class, with a readable location."""
    if depth > _MAX_DEPTH:
        raise FormatError(f"model config nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        if isinstance(value.get("class_name"), str):
            inner = value.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
            label = value["class_name"] + (f"({name})" if isinstance(name, str) else "")
            path = f"{path}/{label}" if path else label
            yield path, value
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                child = path if key == "config" else f"{path}/{key}" if path else str(key)
                yield from _objects(item, child, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                yield from _objects(item, f"{path}[{index}]", depth + 1)


def _check_object(obj: dict[str, Any], location: str, options: ScanOptions) -> Iterator[Finding]:
    class_name: str = obj["class_name"]
    module = obj.get("module")
    if class_name == "Lambda" and (module is None or _is_keras(module)):
        yield _lambda_finding(obj, location, options)
        return
    if class_name == "__lambda__":
        return  # reported with its Lambda layer
    registered = obj.get("registered_name")
    if registered is None and ">" in class_name:  # tf.keras 2: "package>Class" names
        registered = class_name
    if isinstance(module, str) and module and not _is_keras(module):
        yield _foreign_finding(module, _callable_name(obj), location, options)
    elif "." in class_name and module is None and "module" not in obj:
        head, _, tail = class_name.rpartition(".")
        yield _foreign_finding(head, tail, location, options)
    elif isinstance(registered, str) and ">" in registered:
        package = registered.split(">", 1)[0]
        if not _is_keras(package.lower()):
            yield Finding(
                CUSTOM_OBJECT.id,
                CUSTOM_OBJECT.default_severity,
                f"custom object {class_name!r} registered as {registered!r}: loading "
                "needs that package's code",
                location,
            )
    elif "module" not in obj and class_name not in KERAS_CLASSES:
        yield Finding(
            CUSTOM_OBJECT.id,
            Severity.LOW,
            f"class {class_name!r} is not a built-in Keras class: loading needs it passed "
            "as a custom object",
            location,
        )


def _is_keras(module: str) -> bool:
    return any(module == ns or module.startswith(ns + ".") for ns in KERAS_NAMESPACES)


def _callable_name(obj: dict[str, Any]) -> str:
    """The attribute Keras fetches from ``module``: the class, or for ``function``
    objects the function named by ``config``."""
    config = obj.get("config")
    if obj["class_name"] == "function" and isinstance(config, str):
        return config
    return str(obj["class_name"])


def _foreign_finding(module: str, name: str, location: str, options: ScanOptions) -> Finding:
    verdict = _classify(module, name, options)
    if verdict is not None:
        return Finding(
            DANGEROUS_OBJECT.id,
            DANGEROUS_OBJECT.default_severity,
            f"config object {module}.{name} is called while loading: {verdict}",
            location,
        )
    return Finding(
        CUSTOM_OBJECT.id,
        CUSTOM_OBJECT.default_severity,
        f"config object {module}.{name} comes from outside Keras: loading imports {module!r}",
        location,
    )


def _classify(module: str, name: str, options: ScanOptions) -> str | None:
    """The reason ``module.name`` is dangerous, or None."""
    settings = options.settings
    result = classify(module, name, user_dangerous=settings.dangerous_globals)
    return result.reason if result.kind == "dangerous" else None


def _lambda_finding(obj: dict[str, Any], location: str, options: ScanOptions) -> Finding:
    raw_config = obj.get("config")
    config: dict[str, Any] = raw_config if isinstance(raw_config, dict) else {}
    used: list[CodeNames] = []
    named: list[str] = []
    for key in ("function", "output_shape"):
        code, ref = _lambda_code(config.get(key), config, key)
        if code is not None:
            used.append(_decode(code))
        if ref is not None:
            named.append(ref)
    names = [n for c in used for n in c.names] + named
    strings = [s for c in used for s in c.strings]
    dangerous = _dangerous_uses(names, strings, options)
    shown = ", ".join(list(dict.fromkeys(names))[:_MAX_NAMES_SHOWN])
    method = "/".join(sorted({c.method for c in used})) or "reference"
    detail = f"uses {shown}" if shown else "uses no global names"
    if dangerous:
        return Finding(
            LAMBDA.id,
            Severity.CRITICAL,
            f"Lambda layer runs Python code that calls {', '.join(dangerous)} ({detail}; "
            f"decoded by {method})",
            location,
        )
    return Finding(
        LAMBDA.id,
        LAMBDA.default_severity,
        f"Lambda layer runs Python code on load ({detail}; decoded by {method})",
        location,
    )


def _lambda_code(value: Any, config: dict[str, Any], key: str) -> tuple[str | None, str | None]:
    """(base64 code, named function reference) of a Lambda's ``function``/``output_shape``."""
    if isinstance(value, dict):  # Keras 3: {"class_name": "__lambda__", "config": {"code"}}
        inner = value.get("config")
        if value.get("class_name") == "__lambda__" and isinstance(inner, dict):
            code = inner.get("code")
            return (code if isinstance(code, str) else None), None
        module, name = value.get("module"), value.get("config")
        if isinstance(module, str) and isinstance(name, str):
            return None, f"{module}.{name}"
        return None, None
    kind = config.get(f"{key}_type", "lambda")
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return (value[0] if kind == "lambda" else None), None
    if isinstance(value, str):
        if kind == "lambda":
            return value, None
        module = config.get("module")
        return None, f"{module}.{value}" if isinstance(module, str) else value
    return None, None


def _decode(code: str) -> CodeNames:
    try:
        return code_names(code)
    except FormatError as exc:
        return CodeNames((f"<undecodable code: {exc.message}>",), (), "none")


def _dangerous_uses(
    names: Iterable[str], strings: Iterable[str], options: ScanOptions
) -> list[str]:
    """Known-dangerous globals among the names a Lambda uses.

    A bare name is looked up as a builtin (``eval``); a dotted name as module.attribute;
    and every module-like name or string constant (``'os'`` passed to ``__import__``) is
    combined with every name (``system``), since that is how the code reaches them.
    """
    names = list(dict.fromkeys(names))[:200]
    modules = list(dict.fromkeys([*names, *strings]))[:200]
    found: dict[str, None] = {}
    for name in names:
        if "." in name:
            head, _, tail = name.rpartition(".")
            if _classify(head, tail, options):
                found[name] = None
        elif _classify("builtins", name, options):
            found[name] = None
    for module in modules:
        if not module.replace(".", "").replace("_", "").isalnum():
            continue
        for name in names:
            if name != module and not name.startswith("__") and _classify(module, name, options):
                found[f"{module}.{name}"] = None
    return list(found)
