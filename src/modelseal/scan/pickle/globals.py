"""The three lists of pickle globals: known-dangerous, known-safe, and everything else.

Each list is typed data: ``module -> frozenset of names`` or the wildcard ``"*"``
(the whole module *and its submodules*). Every dangerous row carries the rule id it
reports under and the reason a user reads in the finding.

How an entry earns its place
----------------------------
*Dangerous* — importing the name and calling it (``REDUCE``, ``NEWOBJ``, ``OBJ``,
``INST``) or handing it to something that calls it can run code or commands, touch
files or the network, load another pickle/model, or turn a *string* into code or an
object (``getattr``, ``import_module``, ``attrgetter``, ``pkgutil.resolve_name``...).
Even a bare reference is reported: a model file has no reason to mention ``os.system``.

*Safe* — calling the name with **any** arguments only builds plain data: no I/O, no
import, no attribute lookup by name, no code objects. A safe callable may call a
callable it is *given* (``copyreg._reconstructor`` calls ``cls.__new__``,
``torch._tensor._rebuild_from_type_v2`` calls ``func``): such a callable is itself a
global in the same stream and is classified on its own, so a payload cannot hide
behind a safe helper. This is why harmless-to-construct is not enough: ``type`` is
harmless with one argument but builds classes with three, so it is not listed as safe;
``functools.partial`` is harmless to build, but it is not needed by any model format,
so it stays *unknown*.

*Unknown* — anything else (e.g. scikit-learn estimators): suspicious by default, and
critical under ``--strict`` (deny by default). That is the honest default: we cannot
tell what an arbitrary class's ``__setstate__`` or ``__reduce__`` partner does.

Precedence (documented for users): built-in or user *dangerous* > *safe* > unknown.
A user's ``safe-globals`` table can promote unknown names to safe but never silence a
built-in dangerous entry; a user's ``dangerous-globals`` table always wins.

Names and modules are normalised the way ``pickle`` does for protocol < 3 streams
(``__builtin__`` -> ``builtins``, ``copy_reg`` -> ``copyreg``...), and dotted names
(protocol 4 ``STACK_GLOBAL('os.path', 'os.system')`` walks attributes) are checked
through every module they may traverse.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from modelseal.config import WILDCARD, GlobalsTable
from modelseal.scan.pickle.safe_lists import BUILTIN_SAFE, TORCHSCRIPT_SAFE, Names, SafeEntry

__all__ = [
    "BUILTIN_DANGEROUS",
    "BUILTIN_SAFE",
    "DANGEROUS_ATTRIBUTES",
    "DANGEROUS_RULE",
    "TORCHSCRIPT_SAFE",
    "Classification",
    "DangerEntry",
    "Kind",
    "SafeEntry",
    "classify",
]

#: The rule id every built-in dangerous entry reports under.
DANGEROUS_RULE = "MS-PICKLE-DANGEROUS-GLOBAL"

Kind = Literal["dangerous", "safe", "unknown"]


@dataclass(frozen=True)
class DangerEntry:
    """One row of the dangerous list."""

    module: str
    names: Names
    reason: str
    rule: str = DANGEROUS_RULE


@dataclass(frozen=True)
class Classification:
    """What a global is, and why."""

    kind: Kind
    #: The (module, name) the decision was made on (may differ from the raw global
    #: for dotted names or Python 2 module names).
    module: str
    name: str
    reason: str = ""
    rule: str = ""
    #: Safe only when rebuilt without calling ``__init__`` (NEWOBJ, copyreg): a stream
    #: that calls it with arguments makes it unknown (see ``safe_lists``).
    instantiate_only: bool = False


def _n(*names: str) -> frozenset[str]:
    return frozenset(names)


_EXEC = "runs arbitrary Python code"
_SHELL = "runs shell commands or spawns processes"
_FILES = "reads or writes files"
_NET = "opens network connections"
_LOADS = "deserialises another pickle/model, which may run code"
_RESOLVE = "turns a string into an arbitrary object (import or attribute lookup by name)"

#: Built-in known-dangerous globals (critical).
BUILTIN_DANGEROUS: tuple[DangerEntry, ...] = (
    DangerEntry("os", WILDCARD, "the os module runs commands and touches files"),
    DangerEntry("posix", WILDCARD, "os internals: runs commands and touches files"),
    DangerEntry("nt", WILDCARD, "os internals: runs commands and touches files"),
    DangerEntry("posixpath", WILDCARD, "os.path: filesystem access, and a route to os"),
    DangerEntry("ntpath", WILDCARD, "os.path: filesystem access, and a route to os"),
    DangerEntry("genericpath", WILDCARD, "os.path helpers: filesystem access"),
    DangerEntry("subprocess", WILDCARD, _SHELL),
    DangerEntry("_posixsubprocess", WILDCARD, _SHELL),
    DangerEntry("_winapi", WILDCARD, _SHELL),
    DangerEntry("pty", WILDCARD, _SHELL),
    DangerEntry("platform", WILDCARD, "runs helper commands (platform._syscmd_ver, popen)"),
    DangerEntry("multiprocessing", WILDCARD, _SHELL),
    DangerEntry("_osx_support", WILDCARD, "runs commands (_read_output, _find_build_tool)"),
    DangerEntry(
        "uuid",
        _n(
            "_get_command_stdout",
            "_popen",
            "_find_mac",
            "_find_mac_near_keyword",
            "_find_mac_under_heading",
        ),
        _SHELL,
    ),
    DangerEntry("__builtins__", WILDCARD, "not importable; written only by payloads"),
    DangerEntry("imaplib", WILDCARD, "IMAP4_stream runs a command; the rest " + _NET),
    DangerEntry("asyncio", WILDCARD, "subprocess transports spawn processes; streams " + _NET),
    DangerEntry("_aix_support", WILDCARD, "_read_cmd_output runs a shell command"),
    DangerEntry("_pyrepl", WILDCARD, "pager.pipe_pager/tempfile_pager run a pager command"),
    DangerEntry("pipes", WILDCARD, "Template pipelines run shell commands"),
    DangerEntry("pexpect", WILDCARD, _SHELL),
    DangerEntry("commands", WILDCARD, "Python 2 getoutput: " + _SHELL),
    DangerEntry("popen2", WILDCARD, "Python 2 popen: " + _SHELL),
    DangerEntry(
        "test", WILDCARD, "CPython's tests: script_helper spawns Python processes running code"
    ),
    DangerEntry("_interpreters", WILDCARD, "runs source code in a subinterpreter"),
    DangerEntry("_xxsubinterpreters", WILDCARD, "runs source code in a subinterpreter"),
    DangerEntry("concurrent.interpreters", WILDCARD, "runs source code in a subinterpreter"),
    DangerEntry(
        "concurrent.futures",
        _n("ProcessPoolExecutor", "ThreadPoolExecutor", "process", "thread"),
        "runs callables in worker processes or threads",
    ),
    DangerEntry("_thread", WILDCARD, "runs a callable on a new thread, after loading returns"),
    DangerEntry("threading", WILDCARD, "runs a callable on a new thread, after loading returns"),
    DangerEntry("atexit", WILDCARD, "registers a callable to run at interpreter exit"),
    DangerEntry("signal", WILDCARD, "installs signal handlers, sends signals, sets alarms"),
    DangerEntry("_signal", WILDCARD, "installs signal handlers, sends signals, sets alarms"),
    DangerEntry("gc", WILDCARD, "reaches every live object (get_objects, get_referrers)"),
    DangerEntry("inspect", WILDCARD, "reads source files; getattr_static: " + _RESOLVE),
    DangerEntry(
        "copyreg",
        _n("add_extension", "remove_extension", "clear_extension_cache", "pickle", "constructor"),
        "changes how later pickles resolve EXT codes and reduce objects (hides globals "
        "from scanners)",
    ),
    DangerEntry(
        "warnings",
        _n("filterwarnings", "simplefilter", "resetwarnings"),
        "silences the warnings other safety checks raise (torch.load's weights_only...)",
    ),
    DangerEntry("lib2to3", WILDCARD, "grammar loaders unpickle files; driver writes pickles"),
    DangerEntry(
        "logging",
        _n("FileHandler", "basicConfig", "handlers", "config"),
        "FileHandler/basicConfig(filename=...) create and write files",
    ),
    DangerEntry("logging.handlers", WILDCARD, "file, socket, SMTP, HTTP and syslog handlers"),
    DangerEntry("syslog", WILDCARD, "writes to the system log"),
    DangerEntry("compileall", WILDCARD, "compiles sources and writes .pyc files"),
    DangerEntry("py_compile", WILDCARD, "compiles sources and writes .pyc files"),
    DangerEntry("zipapp", WILDCARD, _FILES),
    DangerEntry("filecmp", WILDCARD, _FILES),
    DangerEntry("mmap", WILDCARD, "maps files and shared memory"),
    DangerEntry("_posixshmem", WILDCARD, "opens shared memory files"),
    DangerEntry("netrc", WILDCARD, "reads credential files (~/.netrc)"),
    DangerEntry("getpass", WILDCARD, "reads the terminal and the environment"),
    DangerEntry("readline", WILDCARD, "reads and writes history files"),
    DangerEntry("mailbox", WILDCARD, _FILES),
    DangerEntry("gettext", WILDCARD, "reads catalogue files; install() patches builtins"),
    DangerEntry("xml.sax", WILDCARD, "parse() opens files and URLs"),
    DangerEntry("xml.dom", WILDCARD, "parse() opens files and URLs"),
    DangerEntry(
        "xml.etree.ElementTree", _n("parse", "iterparse", "ElementTree", "XInclude"), _FILES
    ),
    DangerEntry("xml.etree.ElementInclude", WILDCARD, "include() reads files and URLs"),
    DangerEntry("wave", _n("open"), _FILES),
    DangerEntry("aifc", _n("open"), _FILES),
    DangerEntry("sunau", _n("open"), _FILES),
    DangerEntry("_sqlite3", WILDCARD, _FILES),
    DangerEntry("socket", WILDCARD, _NET),
    DangerEntry("_socket", WILDCARD, _NET),
    DangerEntry("ssl", WILDCARD, _NET),
    DangerEntry("http", WILDCARD, _NET),
    DangerEntry("urllib", WILDCARD, _NET),
    DangerEntry("urllib3", WILDCARD, _NET),
    DangerEntry("requests", WILDCARD, _NET),
    DangerEntry("httpx", WILDCARD, _NET),
    DangerEntry("aiohttp", WILDCARD, _NET),
    DangerEntry("ftplib", WILDCARD, _NET),
    DangerEntry("smtplib", WILDCARD, _NET),
    DangerEntry("telnetlib", WILDCARD, _NET),
    DangerEntry("poplib", WILDCARD, _NET),
    DangerEntry("nntplib", WILDCARD, _NET),
    DangerEntry("xmlrpc", WILDCARD, _NET),
    DangerEntry("socketserver", WILDCARD, _NET),
    DangerEntry("webbrowser", WILDCARD, "opens a browser (runs a command)"),
    DangerEntry("shutil", WILDCARD, "copies, moves and deletes files; runs archivers"),
    DangerEntry("tempfile", WILDCARD, _FILES),
    DangerEntry("glob", WILDCARD, "lists the filesystem"),
    DangerEntry("fileinput", WILDCARD, _FILES),
    DangerEntry("linecache", WILDCARD, _FILES),
    DangerEntry("io", WILDCARD, _FILES),
    DangerEntry("_io", WILDCARD, "FileIO/open: " + _FILES),
    DangerEntry("pathlib", _n("Path.write_text", "Path.write_bytes"), _FILES),
    DangerEntry("tarfile", WILDCARD, _FILES),
    DangerEntry("zipfile", WILDCARD, _FILES),
    DangerEntry("gzip", _n("open", "GzipFile"), _FILES),
    DangerEntry("bz2", _n("open", "BZ2File"), _FILES),
    DangerEntry("lzma", _n("open", "LZMAFile"), _FILES),
    DangerEntry("shelve", WILDCARD, _FILES + " and unpickles them"),
    DangerEntry("dbm", WILDCARD, _FILES),
    DangerEntry("sqlite3", WILDCARD, _FILES),
    DangerEntry("logging.config", WILDCARD, "dictConfig/listen import and run named callables"),
    DangerEntry(
        "builtins",
        _n(
            "eval",
            "exec",
            "execfile",
            "compile",
            "open",
            "file",
            "getattr",
            "setattr",
            "delattr",
            "__import__",
            "breakpoint",
            "globals",
            "locals",
            "vars",
            "input",
            "raw_input",
            "help",
            "exit",
            "quit",
            "reload",
            "memoryview",
            "apply",
            "__build_class__",
            "__loader__",
            "__spec__",
        ),
        "builtins that run code, import, read input, open files or reach attributes by name",
    ),
    DangerEntry("runpy", WILDCARD, _EXEC),
    DangerEntry("code", WILDCARD, "code.InteractiveInterpreter/InteractiveConsole " + _EXEC),
    DangerEntry("codeop", WILDCARD, "compiles source code"),
    DangerEntry("marshal", WILDCARD, "loads code objects"),
    DangerEntry(
        "types",
        _n(
            "FunctionType",
            "CodeType",
            "LambdaType",
            "MethodType",
            "ModuleType",
            "CellType",
            "new_class",
        ),
        "builds functions, code objects or modules from data",
    ),
    DangerEntry("ctypes", WILDCARD, "calls native code"),
    DangerEntry("_ctypes", WILDCARD, "calls native code"),
    DangerEntry("cffi", WILDCARD, "calls native code"),
    DangerEntry("importlib", WILDCARD, "imports modules by name: " + _RESOLVE),
    DangerEntry("imp", WILDCARD, "imports modules by name"),
    DangerEntry("zipimport", WILDCARD, "imports modules from archives"),
    DangerEntry("sys", WILDCARD, "interpreter internals (sys.modules, exit, hooks)"),
    DangerEntry("site", WILDCARD, "runs site configuration code"),
    DangerEntry("pickle", WILDCARD, _LOADS),
    DangerEntry("_pickle", WILDCARD, _LOADS),
    DangerEntry("dill", WILDCARD, "dill rebuilds functions, code objects, modules and files"),
    DangerEntry(
        "cloudpickle", WILDCARD, "cloudpickle rebuilds functions, code objects and modules"
    ),
    DangerEntry(
        "joblib",
        _n(
            "load",
            "dump",
            "Memory",
            "Parallel",
            "parallel_backend",
            "parallel_config",
            "register_parallel_backend",
            "register_store_backend",
        ),
        _LOADS + "; dump and Memory write files; Parallel spawns worker processes",
    ),
    DangerEntry(
        "joblib.numpy_pickle",
        _n("load", "dump", "NumpyUnpickler", "load_compatibility", "_unpickle"),
        _LOADS + "; dump writes files",
    ),
    DangerEntry("joblib.memory", WILDCARD, "caches results in files on disk"),
    DangerEntry("joblib.disk", WILDCARD, "creates and deletes files and folders"),
    DangerEntry("joblib._store_backends", WILDCARD, _FILES),
    DangerEntry("joblib.parallel", WILDCARD, "spawns worker processes"),
    DangerEntry("joblib._parallel_backends", WILDCARD, "spawns worker processes"),
    DangerEntry("joblib.pool", WILDCARD, "spawns worker processes"),
    DangerEntry("joblib._memmapping_reducer", WILDCARD, "memory-maps and deletes files"),
    DangerEntry("joblib.externals", WILDCARD, "loky spawns processes; cloudpickle rebuilds code"),
    DangerEntry("joblib.numpy_pickle_compat", WILDCARD, _LOADS),
    DangerEntry(
        "torch",
        _n("load", "from_file", "compile", "ops", "classes", "_dynamo", "_inductor"),
        _LOADS + "; compile generates, writes and loads code; ops/classes.load_library "
        "load native code",
    ),
    DangerEntry(
        "torch.serialization",
        _n(
            "load",
            "_load",
            "_legacy_load",
            "add_safe_globals",
            "safe_globals",
            "_safe_globals",
            "clear_safe_globals",
        ),
        _LOADS + "; add_safe_globals disables torch.load(weights_only=True) checks",
    ),
    DangerEntry(
        "torch._weights_only_unpickler",
        WILDCARD,
        "edits the weights_only allowlist (disables torch.load's own check)",
    ),
    DangerEntry("torch._ops", WILDCARD, "ops.load_library loads native code"),
    DangerEntry("torch.utils._config_module", WILDCARD, "load_config unpickles bytes"),
    DangerEntry("torch.utils.data.datapipes.utils.decoder", WILDCARD, "handlers unpickle bytes"),
    DangerEntry("torch.compiler", WILDCARD, "compiles, writes and loads generated code"),
    DangerEntry(
        "torch.nn.modules.module",
        _n(
            "register_module_forward_hook",
            "register_module_forward_pre_hook",
            "register_module_backward_hook",
            "register_module_full_backward_hook",
            "register_module_full_backward_pre_hook",
            "register_module_buffer_registration_hook",
            "register_module_module_registration_hook",
            "register_module_parameter_registration_hook",
        ),
        "registers a process-wide hook that runs a callable on every module call",
    ),
    DangerEntry("torch.storage", _n("_load_from_bytes"), "unpickles bytes with torch.load"),
    DangerEntry("torch.hub", WILDCARD, "downloads and runs hub code"),
    DangerEntry("torch.package", WILDCARD, "imports packaged Python code"),
    DangerEntry("torch.jit", _n("load", "_load_for_lite_interpreter"), _LOADS),
    DangerEntry("torch.utils.collect_env", WILDCARD, "collect_env.run " + _SHELL),
    DangerEntry("torch.utils.cpp_extension", WILDCARD, "compiles and loads native code"),
    DangerEntry("torch._inductor", WILDCARD, "compiles and loads generated code"),
    DangerEntry("torch.distributed", WILDCARD, _NET + " (rpc runs remote calls)"),
    DangerEntry(
        "numpy",
        _n("load", "loads", "fromfile", "memmap", "loadtxt", "genfromtxt", "fromregex"),
        "numpy.load unpickles with allow_pickle; the others read files",
    ),
    DangerEntry(
        "numpy.lib.npyio",
        _n("load", "loadtxt", "genfromtxt", "fromregex", "NpzFile", "DataSource"),
        _FILES + " (and unpickles)",
    ),
    DangerEntry(
        "numpy.lib._npyio_impl",
        _n("load", "loadtxt", "genfromtxt", "fromregex", "NpzFile", "DataSource"),
        _FILES + " (and unpickles)",
    ),
    DangerEntry("numpy.lib.format", _n("read_array", "open_memmap"), _FILES + " and unpickles"),
    DangerEntry(
        "numpy.lib._format_impl", _n("read_array", "open_memmap"), _FILES + " and unpickles"
    ),
    DangerEntry("numpy.lib._datasource", WILDCARD, _FILES + " and downloads URLs"),
    DangerEntry("numpy.testing", WILDCARD, "test helpers run code (runstring, build_err_msg)"),
    DangerEntry("numpy.f2py", WILDCARD, "compiles and runs generated code"),
    DangerEntry("numpy.distutils", WILDCARD, "exec_command runs shell commands"),
    DangerEntry("numpy.ctypeslib", WILDCARD, "loads native libraries"),
    DangerEntry("torch.fx", WILDCARD, "GraphModule rebuilds exec generated source code"),
    DangerEntry("torch._dynamo", WILDCARD, "compiles and evaluates generated code"),
    DangerEntry("torch.utils.bottleneck", WILDCARD, "run_cprofile executes a code string"),
    DangerEntry("torch.jit.unsupported_tensor_ops", WILDCARD, "execWrapper executes code"),
    DangerEntry("numpy.core.records", _n("fromfile"), _FILES),
    DangerEntry("numpy._core.records", _n("fromfile"), _FILES),
    DangerEntry("numpy.core.memmap", WILDCARD, _FILES),
    DangerEntry("numpy._core.memmap", WILDCARD, _FILES),
    DangerEntry("pandas.io", WILDCARD, _FILES + " (read_pickle unpickles)"),
    DangerEntry(
        "pandas",
        _n(
            "read_pickle", "read_csv", "read_table", "read_json", "read_sql", "read_parquet", "eval"
        ),
        "reads files (read_pickle unpickles); pandas.eval evaluates expressions",
    ),
    DangerEntry(
        "yaml",
        _n(
            "load",
            "load_all",
            "unsafe_load",
            "unsafe_load_all",
            "full_load",
            "full_load_all",
            "Loader",
            "UnsafeLoader",
            "FullLoader",
        ),
        "YAML loaders that build arbitrary Python objects",
    ),
    DangerEntry("sklearn.datasets", WILDCARD, "fetchers download URLs; loaders read files"),
    DangerEntry("sklearn.utils._testing", WILDCARD, "test helpers run Python scripts"),
    DangerEntry("sklearn.utils.estimator_checks", WILDCARD, "test helpers run estimators"),
    DangerEntry("sklearn.utils.discovery", WILDCARD, "imports modules by name"),
    DangerEntry("sklearn.utils._set_output", _n("check_library_installed"), _RESOLVE),
    DangerEntry("sklearn.utils.parallel", WILDCARD, "joblib Parallel spawns worker processes"),
    DangerEntry("sklearn.externals", WILDCARD, "vendored code that execs and imports by name"),
    DangerEntry("sklearn._build_utils", WILDCARD, "build helpers run compilers and templates"),
    DangerEntry("sklearn.callback", WILDCARD, "callback transport connects to sockets"),
    DangerEntry("sklearn.tree._export", WILDCARD, "export_graphviz writes to a file path"),
    DangerEntry("sklearn.tree", _n("export_graphviz", "plot_tree"), "writes or draws to files"),
    DangerEntry("typing", _n("get_type_hints", "_eval_type", "ForwardRef"), "evaluates strings"),
    DangerEntry("dataclasses", _n("_create_fn", "_FuncBuilder"), "executes generated source code"),
    DangerEntry("unittest.mock", WILDCARD, "patches objects and imports them by name"),
    DangerEntry("codecs", _n("open", "EncodedFile"), _FILES),
    DangerEntry("_sitebuiltins", WILDCARD, "site helpers read files and start pagers"),
    DangerEntry("antigravity", WILDCARD, "importing it opens a web browser"),
    DangerEntry("pip", WILDCARD, "installs packages (runs their setup code)"),
    DangerEntry("ensurepip", WILDCARD, "_run_pip installs packages"),
    DangerEntry("setuptools", WILDCARD, "builds and runs package code"),
    DangerEntry("distutils", WILDCARD, "spawns compilers and commands"),
    DangerEntry("venv", WILDCARD, "creates environments, runs pip"),
    DangerEntry("profile", WILDCARD, "profile.run executes a code string"),
    DangerEntry("cProfile", WILDCARD, "cProfile.run executes a code string"),
    DangerEntry("trace", WILDCARD, "Trace.run executes a code string"),
    DangerEntry("timeit", WILDCARD, "timeit executes code strings"),
    DangerEntry("doctest", WILDCARD, "debug_script and friends execute code"),
    DangerEntry("pdb", WILDCARD, "the debugger executes code"),
    DangerEntry("bdb", WILDCARD, "the debugger base executes code"),
    DangerEntry("idlelib", WILDCARD, "IDLE helpers execute code"),
    DangerEntry("pydoc", WILDCARD, "pydoc.locate: " + _RESOLVE + "; pagers run commands"),
    DangerEntry("pkgutil", WILDCARD, "resolve_name: " + _RESOLVE),
    DangerEntry(
        "operator",
        _n("attrgetter", "methodcaller", "itemgetter"),
        "calls an attribute or reads an item looked up by name (like getattr)",
    ),
    DangerEntry(
        "_operator",
        _n("attrgetter", "methodcaller", "itemgetter"),
        "calls an attribute or reads an item looked up by name (like getattr)",
    ),
)

#: State keys that change what an object *does* when ``BUILD`` writes them into its
#: ``__dict__`` or sets them as slots: pickle, copy and the attribute machinery look
#: these up on the instance, so the value replaces behaviour (or the object's
#: class or dict). Any other dunder-shaped key is ordinary data (a CRF tagger keeps
#: ``__model_bytes__``-style keys) and is not reported.
DANGEROUS_ATTRIBUTES: Mapping[str, str] = {
    "__reduce__": "replaces how the object pickles: code runs when it is saved again",
    "__reduce_ex__": "replaces how the object pickles: code runs when it is saved again",
    "__getstate__": "replaces how the object pickles: code runs when it is saved again",
    "__setstate__": "a later BUILD calls it with the next state (pickle looks it up "
    "on the instance)",
    "__class__": "swaps the object's class",
    "__dict__": "swaps the object's whole attribute dict",
    "__code__": "replaces a function's code",
    "__globals__": "reaches or replaces a function's module namespace",
    "__closure__": "replaces a function's closure cells",
    "__defaults__": "replaces a function's default arguments",
    "__kwdefaults__": "replaces a function's default arguments",
    "__builtins__": "replaces the builtins a function's code sees",
    "__getattr__": "intercepts attribute lookups",
    "__getattribute__": "intercepts attribute lookups",
    "__setattr__": "intercepts attribute writes",
    "__delattr__": "intercepts attribute deletes",
    "__call__": "replaces what calling the object does",
    "__init__": "replaces the constructor",
    "__new__": "replaces the constructor",
    "__del__": "runs when the object is garbage-collected",
    "__import__": "replaces the import function",
    "__loader__": "replaces a module's loader",
    "__spec__": "replaces a module's import spec",
    "__bases__": "swaps a class's base classes",
    "__mro__": "swaps a class's method resolution order",
    "__subclasses__": "reaches every subclass (sandbox-escape gadget)",
    "__init_subclass__": "runs for every later subclass",
    "__class_getitem__": "runs on subscription of the class",
    "__get__": "turns the value into a descriptor",
    "__set__": "turns the value into a descriptor",
    "__func__": "replaces a bound method's function",
    "__self__": "replaces a bound method's receiver",
    "__wrapped__": "changes what inspect and functools unwrap to",
}

# Attribute names that lead from an object to interpreter internals.
_DUNDER_TRAVERSAL = "attribute traversal through a dunder (reaches interpreter internals)"


def _index(rows: tuple[DangerEntry, ...] | tuple[SafeEntry, ...]) -> dict[str, list[object]]:
    table: dict[str, list[object]] = {}
    for row in rows:
        table.setdefault(row.module, []).append(row)
    return table


_DANGEROUS_INDEX = _index(BUILTIN_DANGEROUS)
_SAFE_INDEX = _index(BUILTIN_SAFE)
_TORCHSCRIPT_INDEX = _index(TORCHSCRIPT_SAFE)


def _match(
    index: Mapping[str, list[object]], module: str, name: str, *, exact_name: bool
) -> object | None:
    """The row covering (module, name): exact module with the name (or its first dotted
    part, unless ``exact_name``) or ``*``, or a parent module with ``*``."""
    head = name.split(".", 1)[0]
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = ".".join(parts[:cut])
        for row in index.get(candidate, ()):
            names = row.names  # type: ignore[attr-defined]
            if names == WILDCARD:
                if exact_name and ("." in name or _is_dunder(name)):
                    # Safe-listing a module does not vouch for whatever its attributes
                    # lead to (``module.some_import.func``), nor for its dunder hooks
                    # (a module ``__getattr__`` imports submodules by name).
                    continue
                return row
            if cut == len(parts) and (name in names or (not exact_name and head in names)):
                return row
    return None


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _user_match(table: GlobalsTable, module: str, name: str, *, exact_name: bool) -> bool:
    head = name.split(".", 1)[0]
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        names = table.get(".".join(parts[:cut]))
        if names is None:
            continue
        if names == WILDCARD:
            return True
        if cut == len(parts) and (name in names or (not exact_name and head in names)):
            return True
    return False


def _normalise(module: str, name: str) -> tuple[str, str]:
    """Apply pickle's Python 2 -> 3 renames (what ``fix_imports=True`` does)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _candidates(module: str, name: str) -> Iterator[tuple[str, str]]:
    """Every (module, name) a global may really resolve to.

    ``find_class('os.path', 'os.system')`` imports ``os.path`` then walks the
    attributes ``os`` and ``system``: any attribute on the way may be a module
    (``posixpath.os`` is ``os``), so each one is also tried as a module name, and the
    dotted prefix is tried as a submodule (``torch.hub`` reached as ``torch`` +
    ``hub.load``).
    """
    seen: set[tuple[str, str]] = set()
    for mod, nm in ((module, name), _normalise(module, name)):
        parts = nm.split(".")
        options = [(mod, nm)]
        for i in range(1, len(parts)):
            options.append((".".join([mod, *parts[:i]]), ".".join(parts[i:])))
            options.append((".".join(parts[:i]), ".".join(parts[i:])))
            options.append((parts[i - 1], ".".join(parts[i:])))
        for option in options:
            normalised = _normalise(*option)
            for candidate in (option, normalised):
                if candidate not in seen:
                    seen.add(candidate)
                    yield candidate


def classify(
    module: str,
    name: str,
    *,
    user_dangerous: GlobalsTable | None = None,
    user_safe: GlobalsTable | None = None,
    torchscript: bool = False,
) -> Classification:
    """Classify one global as dangerous, safe or unknown (see the module docstring)."""
    parts = name.split(".")
    for mod, nm in _candidates(module, name):
        row = _match(_DANGEROUS_INDEX, mod, nm, exact_name=False)
        if isinstance(row, DangerEntry):
            return Classification("dangerous", mod, nm, row.reason, row.rule)
        if user_dangerous and _user_match(user_dangerous, mod, nm, exact_name=False):
            return Classification(
                "dangerous", mod, nm, "listed in dangerous-globals settings", DANGEROUS_RULE
            )
    if len(parts) > 1 and any(_is_dunder(p) for p in parts):
        return Classification("dangerous", module, name, _DUNDER_TRAVERSAL, DANGEROUS_RULE)
    mod, nm = _normalise(module, name)
    indexes = [_SAFE_INDEX, _TORCHSCRIPT_INDEX] if torchscript else [_SAFE_INDEX]
    for index in indexes:
        row = _match(index, mod, nm, exact_name=True)
        if isinstance(row, SafeEntry):
            return Classification(
                "safe", mod, nm, row.reason, instantiate_only=row.instantiate_only
            )
    if user_safe and _user_match(user_safe, mod, nm, exact_name=True):
        return Classification("safe", mod, nm, "listed in safe-globals settings")
    return Classification("unknown", mod, nm, "not in the known-safe list")
