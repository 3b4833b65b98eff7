"""Pickle-family samples, built in code: hand-assembled malicious pickles (harmless
payloads such as ``os.system('true')``) and real benign files written by torch,
joblib and numpy.

NEVER load these with pickle/torch.load/joblib.load/numpy.load(allow_pickle=True):
the scanner reads them statically; so do the tests.

Each builder takes a directory and returns the path it wrote. ``MALICIOUS`` and
``BENIGN`` map sample names to builders; ``MALICIOUS_EXPECT`` gives, per malicious
sample, a text the scanner's findings must mention.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "BENIGN",
    "DANGEROUS_TARGETS",
    "MALICIOUS",
    "MALICIOUS_EXPECT",
    "Reduce",
    "asm",
    "call_pickle",
    "payload_bytes",
]

Builder = Callable[[Path], Path]

# -- a tiny opcode assembler -----------------------------------------------------


class asm:
    """Opcode emitters: each returns the bytes of one opcode with its argument."""

    MARK = b"("
    STOP = b"."
    POP = b"0"
    DUP = b"2"
    MEMOIZE = b"\x94"
    STACK_GLOBAL = b"\x93"
    REDUCE = b"R"
    BUILD = b"b"
    NEWOBJ = b"\x81"
    NEWOBJ_EX = b"\x92"
    OBJ = b"o"
    TUPLE = b"t"
    TUPLE1 = b"\x85"
    TUPLE2 = b"\x86"
    TUPLE3 = b"\x87"
    EMPTY_TUPLE = b")"
    EMPTY_DICT = b"}"
    EMPTY_LIST = b"]"
    SETITEM = b"s"
    APPEND = b"a"
    BINPERSID = b"Q"
    NONE = b"N"

    @staticmethod
    def proto(n: int) -> bytes:
        return b"\x80" + bytes([n])

    @staticmethod
    def frame(n: int) -> bytes:
        return b"\x95" + struct.pack("<Q", n)

    @staticmethod
    def global_(module: str, name: str) -> bytes:
        return b"c" + f"{module}\n{name}\n".encode()

    @staticmethod
    def inst(module: str, name: str) -> bytes:
        return b"i" + f"{module}\n{name}\n".encode()

    @staticmethod
    def short_binunicode(text: str) -> bytes:
        data = text.encode()
        return b"\x8c" + bytes([len(data)]) + data

    @staticmethod
    def binunicode(text: str) -> bytes:
        data = text.encode()
        return b"X" + struct.pack("<I", len(data)) + data

    @staticmethod
    def binunicode8(text: str) -> bytes:
        data = text.encode()
        return b"\x8d" + struct.pack("<Q", len(data)) + data

    @staticmethod
    def unicode0(text: str) -> bytes:
        return b"V" + text.encode("raw-unicode-escape") + b"\n"

    @staticmethod
    def string0(text: str) -> bytes:
        return b"S" + repr(text).encode() + b"\n"

    @staticmethod
    def short_binstring(text: str) -> bytes:
        return b"U" + bytes([len(text)]) + text.encode("latin-1")

    @staticmethod
    def binstring(text: str) -> bytes:
        return b"T" + struct.pack("<i", len(text)) + text.encode("latin-1")

    @staticmethod
    def short_binbytes(data: bytes) -> bytes:
        return b"C" + bytes([len(data)]) + data

    @staticmethod
    def binbytes(data: bytes) -> bytes:
        return b"B" + struct.pack("<I", len(data)) + data

    @staticmethod
    def binbytes8(data: bytes) -> bytes:
        return b"\x8e" + struct.pack("<Q", len(data)) + data

    @staticmethod
    def binput(i: int) -> bytes:
        return b"q" + bytes([i])

    @staticmethod
    def long_binput(i: int) -> bytes:
        return b"r" + struct.pack("<I", i)

    @staticmethod
    def binget(i: int) -> bytes:
        return b"h" + bytes([i])

    @staticmethod
    def long_binget(i: int) -> bytes:
        return b"j" + struct.pack("<I", i)

    @staticmethod
    def put(i: int) -> bytes:
        return b"p" + str(i).encode() + b"\n"

    @staticmethod
    def get(i: int) -> bytes:
        return b"g" + str(i).encode() + b"\n"

    @staticmethod
    def ext1(code: int) -> bytes:
        return b"\x82" + bytes([code])

    @staticmethod
    def binint1(n: int) -> bytes:
        return b"K" + bytes([n])


def call_pickle(module: str, name: str, *args: str, protocol: int = 2) -> bytes:
    """``module.name(*args)`` as GLOBAL + REDUCE."""
    body = asm.global_(module, name) + asm.MARK
    for arg in args:
        body += asm.binunicode(arg)
    body += asm.TUPLE + asm.REDUCE + asm.STOP
    return asm.proto(protocol) + body


class Reduce:
    """An object that pickles as ``func(*args)`` (pickling it runs nothing)."""

    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


def payload_bytes(protocol: int = 4) -> bytes:
    """A real ``pickle.dumps`` of an object whose unpickling calls os.system('true')."""
    return pickle.dumps({"weights": [1.0, 2.0], "hook": Reduce(os.system, ("true",))}, protocol)


# -- malicious samples -------------------------------------------------------------


def _write(name: str, data: bytes) -> Builder:
    def build(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(data)
        return path

    return build


_S = asm.short_binunicode

#: (module, name, args) called by a plain GLOBAL + REDUCE — one per listed technique.
DANGEROUS_TARGETS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("os", "system", ("true",)),
    ("posix", "system", ("true",)),
    ("nt", "system", ("true",)),
    ("subprocess", "Popen", ("true",)),
    ("subprocess", "check_output", ("true",)),
    ("pty", "spawn", ("true",)),
    ("socket", "create_connection", ("127.0.0.1",)),
    ("shutil", "rmtree", ("/nonexistent-modelseal",)),
    ("webbrowser", "open", ("http://127.0.0.1/",)),
    ("builtins", "eval", ("print('pwned')",)),
    ("builtins", "exec", ("print('pwned')",)),
    ("builtins", "compile", ("print(1)", "x", "exec")),
    ("builtins", "open", ("/etc/hostname",)),
    ("builtins", "getattr", ("x", "upper")),
    ("builtins", "__import__", ("os",)),
    ("builtins", "breakpoint", ()),
    ("__builtin__", "eval", ("print('pwned')",)),
    ("runpy", "run_path", ("/nonexistent.py",)),
    ("marshal", "loads", ("x",)),
    ("types", "FunctionType", ("x",)),
    ("types", "CodeType", ("x",)),
    ("ctypes", "CDLL", ("libc.so.6",)),
    ("importlib", "import_module", ("os",)),
    ("pickle", "loads", ("x",)),
    ("_pickle", "loads", ("x",)),
    ("dill", "loads", ("x",)),
    ("joblib", "load", ("x",)),
    ("torch.hub", "load", ("x", "y")),
    ("torch", "load", ("x",)),
    ("torch.storage", "_load_from_bytes", ("x",)),
    ("numpy", "load", ("x",)),
    ("pip", "main", ("install", "x")),
    ("ensurepip", "_run_pip", ("x",)),
    ("asyncio.unix_events", "_UnixSubprocessTransport._start", ("x",)),
    ("profile", "run", ("print(1)",)),
    ("cProfile", "run", ("print(1)",)),
    ("trace", "Trace", ()),
    ("timeit", "timeit", ("print(1)",)),
    ("doctest", "debug_script", ("print(1)",)),
    ("code", "InteractiveInterpreter", ()),
    ("pdb", "run", ("print(1)",)),
    ("idlelib.pyshell", "main", ()),
    ("multiprocessing.util", "spawnv_passfds", ("true",)),
    ("uuid", "_get_command_stdout", ("true",)),
    ("_osx_support", "_read_output", ("true",)),
    ("imaplib", "IMAP4_stream", ("true",)),
    ("torch.utils.collect_env", "run", ("true",)),
    ("_io", "FileIO", ("/etc/hostname",)),
    ("io", "open", ("/etc/hostname",)),
    ("pydoc", "locate", ("os.system",)),
    ("pkgutil", "resolve_name", ("os:system",)),
    ("numpy.testing._private.utils", "runstring", ("print(1)", "x")),
    ("numpy.f2py", "compile", ("x",)),
    ("numpy.distutils.exec_command", "exec_command", ("true",)),
    ("operator", "attrgetter", ("system",)),
    ("cloudpickle.cloudpickle", "_make_function", ("x",)),
    ("torch.fx.graph_module", "reduce_graph_module", ("x", "import os")),
    ("torch.utils.bottleneck.__main__", "run_cprofile", ("print(1)", "x")),
    ("pandas", "read_pickle", ("x",)),
    ("yaml", "unsafe_load", ("!!python/object/apply:os.system ['true']",)),
    ("dataclasses", "_create_fn", ("f", "x", "print(1)")),
    ("typing", "get_type_hints", ("x",)),
    ("unittest.mock", "patch", ("os.system",)),
)


def _getattr_import() -> bytes:
    # getattr(importlib.import_module('os'), 'system')('true')
    return (
        asm.proto(2)
        + asm.global_("builtins", "getattr")
        + asm.global_("importlib", "import_module")
        + asm.binunicode("os")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.binunicode("system")
        + asm.TUPLE2
        + asm.REDUCE
        + asm.binunicode("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _dunder_import() -> bytes:
    # getattr(__import__('subprocess'), 'check_output')(('true',))
    return (
        asm.proto(2)
        + asm.global_("__builtin__", "getattr")
        + asm.global_("__builtin__", "__import__")
        + asm.binunicode("subprocess")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.binunicode("check_output")
        + asm.TUPLE2
        + asm.REDUCE
        + asm.binunicode("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _attrgetter() -> bytes:
    # operator.attrgetter('system')(importlib.import_module('os'))('true')
    return (
        asm.proto(2)
        + asm.global_("operator", "attrgetter")
        + asm.binunicode("system")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.global_("importlib", "import_module")
        + asm.binunicode("os")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.TUPLE1
        + asm.REDUCE
        + asm.binunicode("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _methodcaller() -> bytes:
    # operator.methodcaller('system', 'true')(importlib.import_module('os'))
    return (
        asm.proto(2)
        + asm.global_("_operator", "methodcaller")
        + asm.binunicode("system")
        + asm.binunicode("true")
        + asm.TUPLE2
        + asm.REDUCE
        + asm.global_("importlib", "import_module")
        + asm.binunicode("os")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _resolve_name() -> bytes:
    # pkgutil.resolve_name('os:system')('true')
    return (
        asm.proto(2)
        + asm.global_("pkgutil", "resolve_name")
        + asm.binunicode("os:system")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.binunicode("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _stack_global_memo() -> bytes:
    # Strings reach STACK_GLOBAL through the memo, including MEMOIZE after POP.
    return (
        asm.proto(4)
        + _S("sub" + "process")
        + asm.MEMOIZE  # memo 0
        + asm.POP
        + _S("check_output")
        + asm.MEMOIZE  # memo 1
        + asm.POP
        + _S("decoy")
        + asm.MEMOIZE  # memo 2 = 'decoy'
        + asm.POP
        + asm.binget(0)
        + asm.binget(1)
        + asm.STACK_GLOBAL
        + asm.MEMOIZE
        + _S("true")
        + asm.TUPLE1
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _long_memo() -> bytes:
    return (
        asm.proto(4)
        + asm.binunicode8("os")
        + asm.long_binput(70000)
        + asm.POP
        + asm.binunicode8("system")
        + asm.long_binput(70001)
        + asm.POP
        + asm.long_binget(70000)
        + asm.long_binget(70001)
        + asm.STACK_GLOBAL
        + asm.binunicode("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _string_opcodes() -> bytes:
    # Module and name through every string opcode: protocol 0 UNICODE/STRING, PUT/GET.
    return (
        asm.proto(4)
        + asm.unicode0("os")
        + asm.put(5)
        + asm.POP
        + asm.string0("system")
        + asm.put(6)
        + asm.POP
        + asm.get(5)
        + asm.get(6)
        + asm.STACK_GLOBAL
        + asm.short_binstring("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.binstring("exec")
        + asm.POP
        + asm.short_binbytes(b"posix")
        + asm.binbytes(b"system")
        + asm.STACK_GLOBAL
        + asm.binbytes8(b"true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.POP
        + asm.STOP
    )


def _no_proto() -> bytes:
    # pickle.loads needs no PROTO: SHORT_BINUNICODE first, STACK_GLOBAL, REDUCE.
    return _S("os") + _S("system") + asm.STACK_GLOBAL + _S("true") + asm.TUPLE1 + asm.REDUCE + b"."


def _ascii_no_proto() -> bytes:
    # Starts with SHORT_BINBYTES: every byte is ASCII, so it sniffs as text.
    return b"C\x02os0cos\nsystem\n(S'true'\ntR."


def _inst() -> bytes:
    return b"(S'true'\nios\nsystem\n."


def _obj() -> bytes:
    return b"(cos\nsystem\nS'true'\no."


def _proto0() -> bytes:
    return b"cos\nsystem\n(S'true'\ntR."


def _newobj_ex() -> bytes:
    return (
        asm.proto(4)
        + _S("subprocess")
        + _S("Popen")
        + asm.STACK_GLOBAL
        + _S("true")
        + asm.TUPLE1
        + asm.EMPTY_DICT
        + asm.NEWOBJ_EX
        + asm.STOP
    )


def _dotted_traversal() -> bytes:
    # torch.serialization imports os: STACK_GLOBAL('torch.serialization', 'os.system').
    return (
        asm.proto(4)
        + _S("torch.serialization")
        + _S("os.system")
        + asm.STACK_GLOBAL
        + _S("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _os_path_trick() -> bytes:
    return (
        asm.proto(4)
        + _S("os.path")
        + _S("os.system")
        + asm.STACK_GLOBAL
        + _S("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _dunder_traversal() -> bytes:
    # collections.OrderedDict.__init__.__globals__ : a safe class, then internals.
    return (
        asm.proto(4)
        + _S("collections")
        + _S("OrderedDict.__init__.__globals__")
        + asm.STACK_GLOBAL
        + asm.STOP
    )


def _second_pickle() -> bytes:
    # A benign first pickle, then a payload pickle after STOP.
    return pickle.dumps({"a": 1}, 2) + _proto0()


def _broken_after_payload() -> bytes:
    # The payload REDUCE, then garbage: no STOP.
    return call_pickle("os", "system", "true")[:-1] + b"\xff\xfe"


def _build_tamper() -> bytes:
    # BUILD on a global function: overwrite attributes of torch._utils._rebuild_tensor_v2.
    return (
        asm.proto(2)
        + asm.global_("torch._utils", "_rebuild_tensor_v2")
        + asm.NONE
        + asm.EMPTY_DICT
        + asm.binunicode("__code__")
        + asm.binint1(1)
        + asm.SETITEM
        + asm.TUPLE2
        + asm.BUILD
        + asm.STOP
    )


def _dynamic_call() -> bytes:
    # Call a persistent_load result: the loader decides what it is.
    return (
        asm.proto(2)
        + asm.binunicode("evil")
        + asm.BINPERSID
        + asm.binunicode("true")
        + asm.TUPLE1
        + asm.REDUCE
        + asm.STOP
    )


def _torch_zip_payload(directory: Path) -> Path:
    import torch

    path = directory / "payload.pt"
    torch.save({"w": torch.zeros(2), "evil": Reduce(os.system, ("true",))}, path)
    return path


def _torch_zip_renamed(directory: Path) -> Path:
    # The same checkpoint, any extension: .bin
    path = _torch_zip_payload(directory)
    return path.rename(directory / "pytorch_model.bin")


def _torch_legacy_payload(directory: Path) -> Path:
    import torch

    path = directory / "payload_legacy.pth"
    torch.save(
        {"w": torch.zeros(2), "evil": Reduce(os.system, ("true",))},
        path,
        _use_new_zipfile_serialization=False,
    )
    return path


def _torch_legacy_sys_info_payload(directory: Path) -> Path:
    # Payload in the sys_info pickle (the 3rd), then the real data pickles.
    import torch

    clean = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, clean, _use_new_zipfile_serialization=False)
    data = clean.getvalue()
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, 2)
    protocol = pickle.dumps(1001, 2)
    assert data.startswith(magic + protocol)
    rest = data[len(magic + protocol) :]
    sys_info_len = _pickle_length(rest)
    path = directory / "sysinfo_payload.pt"
    path.write_bytes(magic + protocol + payload_bytes(2) + rest[sys_info_len:])
    return path


def _pickle_length(data: bytes) -> int:
    import pickletools

    stream = io.BytesIO(data)
    for op, _arg, _pos in pickletools.genops(stream):
        if op.name == "STOP":
            break
    return stream.tell()


def _torchscript_injected(directory: Path) -> Path:
    source = _torchscript(directory)
    path = directory / "scripted_injected.pt"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("constants.pkl"):
                data = payload_bytes(2)
            dst.writestr(info, data)
    source.unlink()
    return path


def _joblib_payload(compress: Any, name: str) -> Builder:
    def build(directory: Path) -> Path:
        import joblib
        import numpy as np

        path = directory / name
        joblib.dump(
            {"coef": np.arange(12.0).reshape(3, 4), "hook": Reduce(os.system, ("true",))},
            path,
            compress=compress,
        )
        return path

    return build


def _object_npy_payload(directory: Path) -> Path:
    import numpy as np

    path = directory / "objects.npy"
    array = np.empty(2, dtype=object)
    array[0] = 1
    array[1] = Reduce(os.system, ("true",))
    np.save(path, array, allow_pickle=True)
    return path


def _npz_payload(directory: Path) -> Path:
    import numpy as np

    path = directory / "arrays.npz"
    array = np.empty(1, dtype=object)
    array[0] = Reduce(os.system, ("true",))
    np.savez(path, weights=np.arange(4.0), extra=array)
    return path


def _legacy_tar_payload(directory: Path) -> Path:
    return _legacy_tar(directory, "legacy_payload.tar", payload=True)


def _cloudpickle_lambda(directory: Path) -> Path:
    import cloudpickle

    path = directory / "lambda.pkl"
    path.write_bytes(cloudpickle.dumps(lambda x: x + 1))
    return path


MALICIOUS: dict[str, Builder] = {
    **{
        f"reduce_{module}_{name}": _write(
            f"reduce_{module}_{name}.pkl", call_pickle(module, name, *args)
        )
        for module, name, args in DANGEROUS_TARGETS
    },
    "proto0_global_reduce": _write("proto0.pkl", _proto0()),
    "inst": _write("inst.pkl", _inst()),
    "no_proto_header": _write("noproto.bin", _no_proto()),
    "ascii_no_proto": _write("ascii.txt", _ascii_no_proto()),
    "obj": _write("obj.pkl", _obj()),
    "newobj_ex": _write("newobj_ex.pkl", _newobj_ex()),
    "getattr_import_module": _write("getattr.pkl", _getattr_import()),
    "dunder_import": _write("dunder_import.pkl", _dunder_import()),
    "attrgetter": _write("attrgetter.pkl", _attrgetter()),
    "methodcaller": _write("methodcaller.pkl", _methodcaller()),
    "resolve_name": _write("resolve_name.pkl", _resolve_name()),
    "stack_global_memo": _write("memo.pkl", _stack_global_memo()),
    "long_memo": _write("long_memo.pkl", _long_memo()),
    "string_opcodes": _write("strings.pkl", _string_opcodes()),
    "dotted_traversal": _write("dotted.pkl", _dotted_traversal()),
    "os_path_trick": _write("ospath.pkl", _os_path_trick()),
    "dunder_traversal": _write("dunder.pkl", _dunder_traversal()),
    "second_pickle": _write("second.pkl", _second_pickle()),
    "broken_after_payload": _write("broken.pkl", _broken_after_payload()),
    "real_dumps": _write("real_dumps.pkl", payload_bytes(4)),
    "real_dumps_proto0": _write("real_dumps0.pkl", payload_bytes(0)),
    "real_dumps_proto5": _write("real_dumps5", payload_bytes(5)),
    "torch_zip": _torch_zip_payload,
    "torch_zip_bin": _torch_zip_renamed,
    "torch_legacy": _torch_legacy_payload,
    "torch_legacy_sys_info": _torch_legacy_sys_info_payload,
    "torch_legacy_tar": _legacy_tar_payload,
    "torchscript_injected": _torchscript_injected,
    "joblib": _joblib_payload(False, "model.joblib"),
    "joblib_zlib": _joblib_payload(("zlib", 3), "model.joblib.z"),
    "joblib_gzip": _joblib_payload(("gzip", 3), "model.joblib.gz"),
    "joblib_bz2": _joblib_payload(("bz2", 3), "model.joblib.bz2"),
    "joblib_xz": _joblib_payload(("xz", 3), "model.joblib.xz"),
    "joblib_lzma": _joblib_payload(("lzma", 3), "model.joblib.lzma"),
    "object_npy": _object_npy_payload,
    "object_npz": _npz_payload,
    "cloudpickle_lambda": _cloudpickle_lambda,
}

#: A text the findings of each malicious sample must contain.
MALICIOUS_EXPECT: dict[str, str] = {
    **{f"reduce_{m}_{n}": f"{m}.{n}" for m, n, _ in DANGEROUS_TARGETS},
    "proto0_global_reduce": "os.system('true')",
    "inst": "os.system('true')",
    "no_proto_header": "os.system('true')",
    "ascii_no_proto": "os.system('true')",
    "obj": "os.system('true')",
    "newobj_ex": "subprocess.Popen('true'",
    "getattr_import_module": "os.system('true')",
    "dunder_import": "subprocess.check_output('true')",
    "attrgetter": "os.system('true')",
    "methodcaller": "os.system('true')",
    "resolve_name": "os.system('true')",
    "stack_global_memo": "subprocess.check_output(('true',))",
    "long_memo": "os.system('true')",
    "string_opcodes": "os.system('true')",
    "dotted_traversal": "torch.serialization.os.system('true')",
    "os_path_trick": "os.path.os.system('true')",
    "dunder_traversal": "collections.OrderedDict.__init__.__globals__",
    "second_pickle": "os.system('true')",
    "broken_after_payload": "os.system('true')",
    "real_dumps": "system('true')",
    "real_dumps_proto0": "system('true')",
    "real_dumps_proto5": "system('true')",
    "torch_zip": "system('true')",
    "torch_zip_bin": "system('true')",
    "torch_legacy": "system('true')",
    "torch_legacy_sys_info": "system('true')",
    "torch_legacy_tar": "system('true')",
    "torchscript_injected": "system('true')",
    "joblib": "system('true')",
    "joblib_zlib": "system('true')",
    "joblib_gzip": "system('true')",
    "joblib_bz2": "system('true')",
    "joblib_xz": "system('true')",
    "joblib_lzma": "system('true')",
    "object_npy": "system('true')",
    "object_npz": "system('true')",
    "cloudpickle_lambda": "cloudpickle",
}


# -- benign samples -------------------------------------------------------------------


def _net() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def _torch_module_zip(directory: Path) -> Path:
    import torch

    path = directory / "module.pt"
    torch.save(_net(), path)
    return path


def _torch_state_dict_zip(directory: Path) -> Path:
    import torch

    path = directory / "state_dict.pth"
    torch.save(_net().state_dict(), path)
    return path


def _torch_module_legacy(directory: Path) -> Path:
    import torch

    path = directory / "module_legacy.pt"
    torch.save(_net(), path, _use_new_zipfile_serialization=False)
    return path


def _torch_state_dict_legacy(directory: Path) -> Path:
    import torch

    path = directory / "state_dict_legacy.ckpt"
    torch.save(_net().state_dict(), path, _use_new_zipfile_serialization=False)
    return path


def _torchscript(directory: Path) -> Path:
    import torch

    path = directory / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
        torch.jit.save(torch.jit.script(_net()), path)
    return path


def _legacy_tar(directory: Path, name: str = "legacy.tar", payload: bool = False) -> Path:
    """The pre-1.0 tar checkpoint layout (torch can still load it; it cannot write it)."""
    import numpy as np

    values = np.arange(6, dtype="<f4").tobytes()
    storages = io.BytesIO()
    storages.write(pickle.dumps(1, 2))
    storages.write(
        asm.proto(2)
        + asm.binint1(0)
        + asm.binunicode("cpu")
        + asm.global_("torch", "FloatStorage")
        + asm.TUPLE3
        + asm.STOP
    )
    storages.write(struct.pack("<q", 6) + values)
    storages.write(pickle.dumps([], 2))
    tensors = io.BytesIO()
    tensors.write(pickle.dumps(1, 2))
    tensors.write(
        asm.proto(2)
        + asm.binint1(1)
        + asm.binint1(0)
        + asm.global_("torch", "FloatTensor")
        + asm.TUPLE3
        + asm.STOP
    )
    tensors.write(struct.pack("<ii", 2, 0) + struct.pack("<qq", 2, 3) + struct.pack("<qq", 3, 1))
    tensors.write(struct.pack("<q", 0))
    data = asm.proto(2) + asm.EMPTY_DICT + asm.binunicode("weight")
    data += asm.binunicode("1") + asm.BINPERSID + asm.SETITEM
    if payload:
        data += asm.binunicode("hook") + call_pickle("os", "system", "true")[2:-1] + asm.SETITEM
    data += asm.STOP
    members = {
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2),
        "pickle": data,
        "storages": storages.getvalue(),
        "tensors": tensors.getvalue(),
    }
    path = directory / name
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for member, content in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def _estimator_arrays(directory: Path, compress: Any, name: str) -> Path:
    import joblib
    import numpy as np

    rng = np.random.default_rng(0)
    estimator = {
        "coef_": rng.normal(size=(3, 4)),
        "intercept_": np.float64(0.5),
        "classes_": np.array([0, 1, 2], dtype=np.int64),
        "n_features_in_": 4,
        "mask": np.ones(5, dtype=bool),
        "names": ["a", "b"],
    }
    path = directory / name
    joblib.dump(estimator, path, compress=compress)
    return path


def _joblib_benign(compress: Any, name: str) -> Builder:
    return lambda directory: _estimator_arrays(directory, compress, name)


def _numeric_npy(directory: Path) -> Path:
    import numpy as np

    path = directory / "numeric.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    return path


def _numeric_npz(directory: Path) -> Path:
    import numpy as np

    path = directory / "numeric.npz"
    np.savez_compressed(path, a=np.arange(3), b=np.eye(2, dtype=np.float16))
    return path


def _object_npy_benign(directory: Path) -> Path:
    import numpy as np

    path = directory / "objects_benign.npy"
    np.save(path, np.array([1, "two", None, (3, 4)], dtype=object), allow_pickle=True)
    return path


def _plain_pickles(directory: Path) -> Path:
    import collections

    data = {
        "ints": list(range(5)),
        "floats": (1.5, -2.0),
        "bytes": b"\x00\x01",
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "complex": 1 + 2j,
        "ordered": collections.OrderedDict(a=1),
        "text": "os.system('true') is only a string here",
        "bytearray": bytearray(b"ab"),
    }
    path = directory / "plain.pkl"
    path.write_bytes(b"".join(pickle.dumps(data, p) for p in range(6)))
    return path


BENIGN: dict[str, Builder] = {
    "torch_module_zip": _torch_module_zip,
    "torch_state_dict_zip": _torch_state_dict_zip,
    "torch_module_legacy": _torch_module_legacy,
    "torch_state_dict_legacy": _torch_state_dict_legacy,
    "torchscript": _torchscript,
    "torch_legacy_tar": _legacy_tar,
    "joblib_arrays": _joblib_benign(False, "est.joblib"),
    "joblib_arrays_zlib": _joblib_benign(("zlib", 3), "est.joblib.z"),
    "joblib_arrays_gzip": _joblib_benign(("gzip", 3), "est.joblib.gz"),
    "joblib_arrays_bz2": _joblib_benign(("bz2", 3), "est.joblib.bz2"),
    "joblib_arrays_xz": _joblib_benign(("xz", 3), "est.joblib.xz"),
    "joblib_arrays_lzma": _joblib_benign(("lzma", 3), "est.joblib.lzma"),
    "numeric_npy": _numeric_npy,
    "numeric_npz": _numeric_npz,
    "object_npy": _object_npy_benign,
    "plain_pickles": _plain_pickles,
}


def sklearn_joblib(directory: Path, compress: Any = False) -> Path:
    """A fitted scikit-learn LinearRegression dumped with joblib (an *unknown* global)."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LinearRegression

    x = np.arange(12.0).reshape(6, 2)
    model = LinearRegression().fit(x, x @ np.array([1.0, 2.0]) + 0.5)
    path = directory / "linreg.joblib"
    joblib.dump(model, path, compress=compress)
    return path
