"""The known-safe pickle globals: data, one row per module, each row judged.

A row is safe when importing the name and rebuilding it the way ``pickle`` does
runs no code the stream chooses and touches no file, process or network:

* for classes, ``__new__``/``__init__`` and ``__setstate__`` (or the default
  ``__dict__`` update) only store the arguments and state they are given;
* for functions, calling them with *any* arguments only builds plain data. A safe
  callable may call a callable it is *given* (``copyreg._reconstructor`` calls
  ``cls.__new__``): that callable is a global of the same stream and is classified
  on its own, so a payload cannot hide behind a safe helper.

Rows marked ``instantiate_only`` are classes whose ``__init__`` can read a file
(``lightgbm.Booster(model_file=...)``): they are safe when the stream rebuilds them
without calling ``__init__`` -- ``NEWOBJ``/``NEWOBJ_EX`` or the ``copyreg``
reconstructors, which is how ``pickle`` saves them -- and *unknown* when the stream
calls them with arguments (``REDUCE``/``OBJ``/``INST``).

A ``"*"`` row covers the module and its submodules, but never a dotted attribute
walk (``module.some_import.func``) nor a dunder name (``module.__getattr__``).
How each third-party row was judged is written in docs/scanning.md ("Known-safe
globals").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelseal.config import WILDCARD

__all__ = ["BUILTIN_SAFE", "TORCHSCRIPT_SAFE", "Names", "SafeEntry"]

Names = frozenset[str] | Literal["*"]


@dataclass(frozen=True)
class SafeEntry:
    """One row of a safe list."""

    module: str
    names: Names
    reason: str
    #: Safe only when rebuilt without calling ``__init__`` (see the module docstring).
    instantiate_only: bool = False


def _n(*names: str) -> frozenset[str]:
    return frozenset(names)


_T = "torch rebuild helper: builds tensors and storages from data"

_SK = (
    "scikit-learn estimators and their helpers: __init__ only stores parameters, "
    "__setstate__ (BaseEstimator, Cython trees/losses/metrics) only restores "
    "arrays and attributes; file-touching helpers are on the dangerous list"
)
_NP_SCALARS = _n(
    *(f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)),
    *(f"float{bits}" for bits in (16, 32, 64, 96, 128)),
    *(f"complex{bits}" for bits in (64, 128, 192, 256)),
    "bool",
    "bool_",
    "intc",
    "uintc",
    "intp",
    "uintp",
    "int_",
    "uint",
    "longlong",
    "ulonglong",
    "short",
    "ushort",
    "byte",
    "ubyte",
    "half",
    "single",
    "double",
    "longdouble",
    "csingle",
    "cdouble",
    "clongdouble",
    "str_",
    "bytes_",
    "void",
    "object_",
    "datetime64",
    "timedelta64",
    "generic",
    "number",
    "integer",
    "signedinteger",
    "unsignedinteger",
    "floating",
    "complexfloating",
    "inexact",
    "character",
    "flexible",
    "ndarray",
    "dtype",
    "matrix",
)
_BIT_GENERATORS = "numpy bit generators and seed sequences: state is integers only"
_OMEGACONF = (
    "OmegaConf containers and nodes: __setstate__ only updates __dict__ (no "
    "interpolation is resolved while loading)"
)
_ATTRIBUTE_DICT = "Lightning's AttributeDict: a dict subclass with attribute access"
_BOOSTER = (
    "gradient-boosting booster: __setstate__ hands the model bytes to the library's "
    "native parser; __init__ can read a model file, so only the rebuild is safe"
)
_SKLEARN_API = "scikit-learn-API wrapper: __init__ stores parameters, state is a dict"

#: Classes that mainstream ML libraries pickle, each judged (see docs/scanning.md).
_THIRD_PARTY: tuple[SafeEntry, ...] = (
    SafeEntry(
        "numpy",
        _NP_SCALARS,
        "numpy array, dtype and scalar types (as dtype= parameters and scalar rebuilds)",
    ),
    SafeEntry(
        "numpy.ma.core",
        _n("MaskedArray", "_mareconstruct", "MaskedConstant", "mvoid"),
        "masked array rebuild: arrays and a mask",
    ),
    SafeEntry(
        "numpy.ma",
        _n("MaskedArray", "masked_array"),
        "masked array rebuild: arrays and a mask",
    ),
    SafeEntry(
        "numpy.core._internal",
        _n("_reconstruct"),
        "numpy < 1.0 array rebuild: ndarray.__new__(subtype, shape, dtype)",
    ),
    SafeEntry(
        "numpy.matrixlib.defmatrix",
        _n("matrix"),
        "ndarray subclass: __new__ converts data, __array_finalize__ checks the shape",
    ),
    SafeEntry("numpy.random._mt19937", _n("MT19937"), _BIT_GENERATORS),
    SafeEntry("numpy.random._pcg64", _n("PCG64", "PCG64DXSM"), _BIT_GENERATORS),
    SafeEntry("numpy.random._philox", _n("Philox"), _BIT_GENERATORS),
    SafeEntry("numpy.random._sfc64", _n("SFC64"), _BIT_GENERATORS),
    SafeEntry(
        "numpy.random.bit_generator",
        _n("SeedSequence", "__pyx_unpickle_SeedSequence"),
        _BIT_GENERATORS,
    ),
    SafeEntry("numpy.random._generator", _n("Generator"), _BIT_GENERATORS),
    SafeEntry("numpy.random.mtrand", _n("RandomState"), _BIT_GENERATORS),
    SafeEntry(
        "typing",
        _n(
            "Any",
            "Union",
            "Optional",
            "List",
            "Dict",
            "Tuple",
            "Set",
            "FrozenSet",
            "Callable",
            "Type",
            "Sequence",
            "Mapping",
            "Literal",
            "ClassVar",
            "Final",
        ),
        "typing special forms: singletons referenced as type annotations (ForwardRef "
        "and get_type_hints, which evaluate strings, are dangerous)",
    ),
    SafeEntry(
        "pathlib",
        _n("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"),
        "path objects: constructing one touches no file (exact names only: "
        "Path.write_text and friends are dangerous)",
    ),
    SafeEntry("torch.torch_version", _n("TorchVersion"), "a str subclass holding a version"),
    *(
        SafeEntry(f"sklearn.{package}", WILDCARD, _SK)
        for package in (
            "base",
            "_loss",
            "calibration",
            "cluster",
            "compose",
            "covariance",
            "cross_decomposition",
            "decomposition",
            "discriminant_analysis",
            "dummy",
            "ensemble",
            "feature_extraction",
            "feature_selection",
            "frozen",
            "gaussian_process",
            "impute",
            "isotonic",
            "kernel_approximation",
            "kernel_ridge",
            "linear_model",
            "manifold",
            "metrics",
            "mixture",
            "model_selection",
            "multiclass",
            "multioutput",
            "naive_bayes",
            "neighbors",
            "neural_network",
            "pipeline",
            "preprocessing",
            "random_projection",
            "semi_supervised",
            "svm",
            "tree",
            "utils._bunch",
            "utils._metadata_requests",
        )
    ),
    SafeEntry("lightgbm.basic", _n("Booster"), _BOOSTER, instantiate_only=True),
    SafeEntry(
        "lightgbm.sklearn",
        _n("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker"),
        _SKLEARN_API,
    ),
    SafeEntry(
        "lightgbm",
        _n("LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker"),
        _SKLEARN_API,
    ),
    SafeEntry("xgboost.core", _n("Booster"), _BOOSTER, instantiate_only=True),
    SafeEntry(
        "xgboost.sklearn",
        _n(
            "XGBModel",
            "XGBClassifier",
            "XGBRegressor",
            "XGBRanker",
            "XGBRFClassifier",
            "XGBRFRegressor",
        ),
        _SKLEARN_API,
    ),
    SafeEntry(
        "catboost.core",
        _n("CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker"),
        _BOOSTER,
        instantiate_only=True,
    ),
    SafeEntry("omegaconf.dictconfig", _n("DictConfig"), _OMEGACONF),
    SafeEntry("omegaconf.listconfig", _n("ListConfig"), _OMEGACONF),
    SafeEntry(
        "omegaconf.nodes",
        _n(
            "AnyNode",
            "BooleanNode",
            "BytesNode",
            "EnumNode",
            "FloatNode",
            "IntegerNode",
            "InterpolationResultNode",
            "NoneNode",
            "PathNode",
            "StringNode",
            "ValueNode",
        ),
        _OMEGACONF,
    ),
    SafeEntry(
        "omegaconf.base", _n("Metadata", "ContainerMetadata", "SCMode", "UnionNode"), _OMEGACONF
    ),
    SafeEntry("lightning_fabric.utilities.data", _n("AttributeDict"), _ATTRIBUTE_DICT),
    SafeEntry("lightning.fabric.utilities.data", _n("AttributeDict"), _ATTRIBUTE_DICT),
    SafeEntry("pytorch_lightning.utilities.parsing", _n("AttributeDict"), _ATTRIBUTE_DICT),
    SafeEntry("lightning.pytorch.utilities.parsing", _n("AttributeDict"), _ATTRIBUTE_DICT),
)

#: Built-in known-safe globals (no finding).
BUILTIN_SAFE: tuple[SafeEntry, ...] = (
    SafeEntry(
        "builtins",
        _n(
            "set",
            "frozenset",
            "dict",
            "list",
            "tuple",
            "int",
            "float",
            "complex",
            "bool",
            "str",
            "bytes",
            "bytearray",
            "slice",
            "range",
            "object",
            "Ellipsis",
            "NotImplemented",
            "len",
            "abs",
            "min",
            "max",
            "sum",
            "round",
            "divmod",
            "chr",
            "ord",
            "bin",
            "hex",
            "oct",
            "hash",
            "isinstance",
            "issubclass",
            "callable",
        ),
        "plain data types, and builtins that only compute a value from their arguments "
        "(calling them reaches no file, import or attribute by name)",
    ),
    SafeEntry(
        "collections",
        _n("OrderedDict", "defaultdict", "Counter", "deque", "ChainMap", "UserDict", "UserList"),
        "plain containers (defaultdict's factory is a global classified on its own)",
    ),
    SafeEntry(
        "__future__",
        WILDCARD,
        "feature flags: _Feature records of version tuples and an int, no behaviour",
    ),
    SafeEntry("_codecs", _n("encode"), "encodes a str to bytes (protocol 2 bytes)"),
    SafeEntry(
        "copyreg",
        _n("_reconstructor", "__newobj__", "__newobj_ex__"),
        "instantiates a class that is itself classified",
    ),
    SafeEntry(
        "torch",
        _n(
            "Size",
            "device",
            "Tensor",
            "dtype",
            "layout",
            "memory_format",
            "float32",
            "float",
            "float64",
            "double",
            "float16",
            "half",
            "bfloat16",
            "complex32",
            "chalf",
            "complex64",
            "cfloat",
            "complex128",
            "cdouble",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "int8",
            "int16",
            "short",
            "int32",
            "int",
            "int64",
            "long",
            "bool",
            "qint8",
            "quint8",
            "qint32",
            "quint4x2",
            "quint2x4",
            "float8_e4m3fn",
            "float8_e5m2",
            "float8_e4m3fnuz",
            "float8_e5m2fnuz",
            "float8_e8m0fnu",
            "float4_e2m1fn_x2",
            "bits8",
            "bits16",
            "bits1x8",
            "bits2x4",
            "bits4x2",
            *(f"uint{n}" for n in range(1, 8)),
            *(f"int{n}" for n in range(1, 8)),
            "strided",
            "sparse_coo",
            "sparse_csr",
            "sparse_csc",
            "sparse_bsr",
            "sparse_bsc",
            "_mkldnn",
            "jagged",
            "contiguous_format",
            "channels_last",
            "channels_last_3d",
            "preserve_format",
            "per_tensor_affine",
            "per_tensor_symmetric",
            "per_channel_affine",
            "per_channel_symmetric",
            "per_channel_affine_float_qparams",
            *(
                f"{kind}Storage"
                for kind in (
                    "Float",
                    "Double",
                    "Half",
                    "BFloat16",
                    "Long",
                    "Int",
                    "Short",
                    "Char",
                    "Byte",
                    "Bool",
                    "ComplexFloat",
                    "ComplexDouble",
                    "QInt8",
                    "QUInt8",
                    "QInt32",
                    "QUInt4x2",
                    "QUInt2x4",
                )
            ),
            *(
                f"{kind}Tensor"
                for kind in (
                    "Float",
                    "Double",
                    "Half",
                    "BFloat16",
                    "Long",
                    "Int",
                    "Short",
                    "Char",
                    "Byte",
                    "Bool",
                )
            ),
        ),
        "torch dtypes, layouts, devices, sizes, legacy storage and tensor types",
    ),
    SafeEntry("torch.storage", _n("UntypedStorage", "TypedStorage", "_TypedStorage"), _T),
    SafeEntry(
        "torch._utils",
        _n(
            "_rebuild_tensor",
            "_rebuild_tensor_v2",
            "_rebuild_tensor_v3",
            "_rebuild_parameter",
            "_rebuild_parameter_with_state",
            "_rebuild_qtensor",
            "_rebuild_sparse_tensor",
            "_rebuild_nested_tensor",
            "_rebuild_device_tensor_from_cpu_tensor",
            "_rebuild_device_tensor_from_numpy",
            "_rebuild_meta_tensor_no_storage",
            "_rebuild_wrapper_subclass",
            "_element_size",
        ),
        _T,
    ),
    SafeEntry("torch._tensor", _n("_rebuild_from_type", "_rebuild_from_type_v2"), _T),
    SafeEntry("torch.serialization", _n("_get_layout", "StorageType"), _T),
    SafeEntry("torch.nn.parameter", _n("Parameter", "UninitializedParameter", "Buffer"), _T),
    SafeEntry(
        "torch.nn.modules",
        WILDCARD,
        "torch's own layers: rebuilding one only restores its attribute dict",
    ),
    SafeEntry("numpy.core.multiarray", _n("_reconstruct", "scalar"), "numpy array/scalar rebuild"),
    SafeEntry("numpy._core.multiarray", _n("_reconstruct", "scalar"), "numpy array/scalar rebuild"),
    SafeEntry("numpy.core.numeric", _n("_frombuffer"), "numpy array rebuild (protocol 5)"),
    SafeEntry("numpy._core.numeric", _n("_frombuffer"), "numpy array rebuild (protocol 5)"),
    SafeEntry("numpy.dtypes", WILDCARD, "numpy dtype classes"),
    SafeEntry(
        "numpy.random",
        _n("__RandomState_ctor"),
        "random state rebuild (bit generator chosen from a fixed table)",
    ),
    SafeEntry(
        "numpy.random._pickle",
        _n("__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"),
        "random state rebuild (bit generator chosen from a fixed table)",
    ),
    SafeEntry(
        "joblib.numpy_pickle",
        _n("NumpyArrayWrapper"),
        "joblib's array placeholder; the array bytes follow in the stream",
    ),
    *_THIRD_PARTY,
)

#: Safe only inside a TorchScript archive: the TorchScript (C++) unpickler resolves
#: ``__torch__.*`` to compiled TorchScript classes, not Python imports.
TORCHSCRIPT_SAFE: tuple[SafeEntry, ...] = (
    SafeEntry("__torch__", WILDCARD, "TorchScript class (compiled, not a Python import)"),
    SafeEntry("torch.jit._pickle", WILDCARD, "TorchScript list/tensor rebuild helpers"),
)
