"""The dangerous/safe lists: well-formedness and classification semantics."""

from __future__ import annotations

import keyword

import pytest

from modelseal.config import WILDCARD
from modelseal.scan.pickle.globals import (
    BUILTIN_DANGEROUS,
    BUILTIN_SAFE,
    TORCHSCRIPT_SAFE,
    classify,
)

_ALL_ROWS = (*BUILTIN_DANGEROUS, *BUILTIN_SAFE, *TORCHSCRIPT_SAFE)


def _valid_dotted(text: str) -> bool:
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in text.split("."))


def test_modules_and_names_are_valid_dotted_identifiers() -> None:
    for row in _ALL_ROWS:
        assert _valid_dotted(row.module), row
        if row.names != WILDCARD:
            assert row.names, row
            for name in row.names:
                assert _valid_dotted(name), (row.module, name)


def test_no_duplicate_modules_within_a_list() -> None:
    for rows in (BUILTIN_DANGEROUS, BUILTIN_SAFE, TORCHSCRIPT_SAFE):
        modules = [row.module for row in rows]
        assert len(modules) == len(set(modules)), sorted(m for m in modules if modules.count(m) > 1)


def test_reasons_and_rule_ids_are_present() -> None:
    for row in _ALL_ROWS:
        assert row.reason.strip(), row
    for row in BUILTIN_DANGEROUS:
        assert row.rule.startswith("MS-PICKLE-"), row


def test_no_entry_is_both_dangerous_and_safe() -> None:
    for row in (*BUILTIN_SAFE, *TORCHSCRIPT_SAFE):
        names = ["anything"] if row.names == WILDCARD else sorted(row.names)
        for name in names:
            verdict = classify(row.module, name, torchscript=True)
            assert verdict.kind == "safe", (row.module, name, verdict)
    for row in BUILTIN_DANGEROUS:
        names = ["anything"] if row.names == WILDCARD else sorted(row.names)
        for name in names:
            assert classify(row.module, name, torchscript=True).kind == "dangerous", (
                row.module,
                name,
            )


@pytest.mark.parametrize(
    ("module", "name", "kind"),
    [
        ("os", "system", "dangerous"),
        ("os.path", "join", "dangerous"),  # parent wildcard covers submodules
        ("posixpath", "os.system", "dangerous"),
        ("torch.serialization", "os.system", "dangerous"),  # attribute walk into os
        ("torch", "hub.load", "dangerous"),  # dotted prefix is a dangerous submodule
        ("__builtin__", "eval", "dangerous"),  # Python 2 names are normalised
        ("builtins", "getattr", "dangerous"),
        ("builtins", "set", "safe"),
        ("__builtin__", "set", "safe"),
        ("collections", "OrderedDict", "safe"),
        ("collections", "OrderedDict.__init__.__globals__", "dangerous"),
        ("collections", "OrderedDict.fromkeys", "unknown"),  # safe needs an exact name
        ("torch._utils", "_rebuild_tensor_v2", "safe"),
        ("torch.nn.modules.linear", "Linear", "safe"),
        ("torch", "load", "dangerous"),
        ("torch", "FloatStorage", "safe"),
        ("numpy.core.multiarray", "_reconstruct", "safe"),
        ("numpy._core.multiarray", "_reconstruct", "safe"),
        ("numpy", "load", "dangerous"),
        ("numpy.testing._private.utils", "runstring", "dangerous"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper", "safe"),
        ("sklearn.linear_model._base", "LinearRegression", "safe"),
        ("sklearn.tree._tree", "Tree", "safe"),
        ("sklearn.tree", "__getattr__", "unknown"),  # wildcards never vouch for dunders
        ("sklearn.datasets._openml", "fetch_openml", "dangerous"),
        ("sklearn.tree", "export_graphviz", "dangerous"),
        ("sklearn.utils._testing", "assert_run_python_script_without_output", "dangerous"),
        ("sklearn.utils.validation", "check_array", "unknown"),
        ("lightgbm.basic", "Booster", "safe"),
        ("xgboost.core", "Booster", "safe"),
        ("xgboost.core", "DMatrix", "unknown"),
        ("numpy", "float64", "safe"),
        ("numpy.random._pcg64", "PCG64", "safe"),
        ("typing", "Any", "safe"),
        ("typing", "ForwardRef", "dangerous"),
        ("omegaconf.dictconfig", "DictConfig", "safe"),
        ("omegaconf.omegaconf", "OmegaConf.load", "unknown"),
        ("lightning_fabric.utilities.data", "AttributeDict", "safe"),
        ("pathlib", "PosixPath", "safe"),
        ("pathlib", "Path.write_text", "dangerous"),
        ("builtins", "len", "safe"),
        ("__future__", "annotations", "safe"),
        ("_aix_support", "_read_cmd_output", "dangerous"),
        ("imaplib", "IMAP4", "dangerous"),
        ("lib2to3.pgen2.grammar", "Grammar.loads", "dangerous"),
        ("lib2to3.pgen2.driver", "load_grammar", "dangerous"),
        ("_pyrepl.pager", "pipe_pager", "dangerous"),
        ("test.support.script_helper", "assert_python_ok", "dangerous"),
        ("logging", "FileHandler", "dangerous"),
        ("logging.handlers", "RotatingFileHandler", "dangerous"),
        ("logging", "getLogger", "unknown"),
        ("_interpreters", "run_string", "dangerous"),
        ("torch", "compile", "dangerous"),
        ("torch.serialization", "add_safe_globals", "dangerous"),
        ("torch._weights_only_unpickler", "_add_safe_globals", "dangerous"),
        ("torch.nn.modules.module", "register_module_forward_hook", "dangerous"),
        ("copyreg", "add_extension", "dangerous"),
        ("warnings", "simplefilter", "dangerous"),
        ("operator", "itemgetter", "dangerous"),
        ("builtins", "type", "unknown"),
        ("functools", "partial", "unknown"),
        ("__torch__.model", "Net", "unknown"),  # only safe inside TorchScript
    ],
)
def test_classify(module: str, name: str, kind: str) -> None:
    assert classify(module, name).kind == kind


def test_torchscript_context() -> None:
    assert classify("__torch__.torch.nn.modules.linear", "Linear", torchscript=True).kind == "safe"
    assert classify("torch.jit._pickle", "build_intlist", torchscript=True).kind == "safe"
    assert classify("torch.jit._pickle", "build_intlist").kind == "unknown"
    assert classify("os", "system", torchscript=True).kind == "dangerous"


def test_instantiate_only_rows_say_so() -> None:
    assert classify("lightgbm.basic", "Booster").instantiate_only
    assert not classify("sklearn.pipeline", "Pipeline").instantiate_only


def test_user_tables_precedence() -> None:
    # user safe promotes unknown names, never built-in dangerous ones
    assert classify("mylib.layers", "Block", user_safe={"mylib": "*"}).kind == "safe"
    assert classify(
        "mylib.layers", "Block", user_safe={"mylib.layers": frozenset({"Head"})}
    ).kind == ("unknown")
    assert classify("os", "system", user_safe={"os": "*"}).kind == "dangerous"
    # user dangerous always wins, over built-in safe too
    verdict = classify("collections", "OrderedDict", user_dangerous={"collections": "*"})
    assert verdict.kind == "dangerous"
    assert verdict.rule == "MS-PICKLE-DANGEROUS-GLOBAL"


def test_wildcard_safe_module_does_not_vouch_for_attribute_walks() -> None:
    assert classify("torch.nn.modules.linear", "Linear").kind == "safe"
    assert classify("torch.nn.modules.linear", "F.conv2d").kind == "unknown"
    assert classify("torch.nn.modules.module", "torch.load").kind == "dangerous"


def test_dangerous_attributes_are_dunders_with_reasons() -> None:
    from modelseal.scan.pickle.globals import DANGEROUS_ATTRIBUTES

    assert DANGEROUS_ATTRIBUTES
    for name, reason in DANGEROUS_ATTRIBUTES.items():
        assert name.startswith("__") and name.endswith("__") and _valid_dotted(name), name
        assert reason.strip(), name


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# Names that exist only in other versions or on other platforms than this one.
_NOT_HERE = {
    ("torch.storage", "_TypedStorage"): "in pickles written by torch < 2.0",
    ("numpy", "float96"): "32-bit platforms",
    ("numpy", "complex192"): "32-bit platforms",
}


def test_named_safe_entries_exist_in_the_installed_libraries() -> None:
    """A misspelt safe row would silently vouch for nothing (or for a look-alike):
    every named entry of a library installed here must resolve to a real attribute.
    Imports only -- nothing is unpickled."""
    import importlib
    import warnings

    checked = 0
    for row in BUILTIN_SAFE:
        if row.names == WILDCARD or not _installed(row.module.split(".")[0]):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(row.module)
        missing = [
            name
            for name in sorted(row.names)
            if not hasattr(module, name) and (row.module, name) not in _NOT_HERE
        ]
        assert not missing, (row.module, missing)
        checked += 1
    assert checked >= 20


def test_instantiate_only_rows_name_classes() -> None:
    for row in BUILTIN_SAFE:
        if row.instantiate_only:
            assert row.names != WILDCARD, row
            assert all(name[:1].isupper() for name in row.names), row
