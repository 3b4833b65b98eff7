"""Walk pickle opcode streams with a symbolic stack and memo — never unpickling.

The walker tokenises opcodes with :mod:`pickletools`' opcode table (arguments are
read with bounded readers: a huge string is skipped, not loaded) and simulates what
``pickle.Unpickler`` would do with *symbolic* values: constants stay constants,
``GLOBAL``/``STACK_GLOBAL``/``INST``/``OBJ`` push :class:`Global` references, calls
push :class:`Obj` results. Strings that reach a global through the memo, through any
string opcode, or through computing calls (``getattr(module, "name")``,
``operator.attrgetter``, ``importlib.import_module``, ``pkgutil.resolve_name``,
``pydoc.locate``, ``builtins.__import__``, ``sys.modules[...]``) are resolved to the
real ``(module, name)`` that would be imported.

The result is a :class:`PickleAnalysis` of facts (references, calls, state
mutations); classifying them is the scanner rule's job.
"""

from __future__ import annotations

import io
import pickletools
import struct
import warnings
from dataclasses import dataclass, field
from typing import IO, Any, cast

from modelseal.errors import FormatError, LimitExceededError

__all__ = [
    "Blob",
    "Call",
    "Global",
    "Limits",
    "ModuleRef",
    "Obj",
    "Persistent",
    "PickleAnalysis",
    "PickleParseError",
    "Reference",
    "SymDict",
    "Walker",
    "render",
]


class PickleParseError(FormatError):
    """A pickle stream could not be parsed (findings before the break are kept)."""


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile streams from hanging the scan or exhausting memory."""

    #: Opcodes walked per stream (all pickles in it together).
    max_opcodes: int = 10_000_000
    #: Entries in the memo.
    max_memo: int = 5_000_000
    #: Items on the stack (all mark levels together).
    max_stack: int = 5_000_000
    #: Longest string/bytes argument kept in memory; longer ones are skipped.
    max_arg_bytes: int = 1 << 20
    #: Longest text line for names and numbers (GLOBAL, INST, PERSID, INT, LONG, FLOAT).
    max_line: int = 1 << 16
    #: Longest protocol 0 STRING/UNICODE line: models saved with protocol 0 carry
    #: their bytes in one such line. Read in chunks; past ``max_arg_bytes`` only its
    #: size and head are kept.
    max_text_arg: int = 1 << 32
    #: Pickles in one stream.
    max_pickles: int = 100_000


# -- symbolic values -------------------------------------------------------------


@dataclass(frozen=True)
class Global:
    """A global the stream imports (``module.name``; ``name`` may be dotted)."""

    module: str
    name: str

    @property
    def dotted(self) -> str:
        """``module.name``."""
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class ModuleRef:
    """A module object produced by ``importlib.import_module`` & co."""

    module: str


@dataclass(frozen=True)
class Blob:
    """A string or bytes argument too large to keep; only its size and head."""

    kind: str
    size: int
    head: bytes


@dataclass(frozen=True)
class Persistent:
    """What ``persistent_load(pid)`` returns (resolved by the loader, not by pickle)."""

    pid: Any


class SymDict:
    """A dict under construction (keys may be symbolic, so not a real dict)."""

    __slots__ = ("pairs",)

    def __init__(self) -> None:
        self.pairs: list[tuple[Any, Any]] = []

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of the last pair whose key equals ``key``."""
        for k, v in reversed(self.pairs):
            if type(k) is type(key) and k == key:
                return v
        return default


class Obj:
    """The result of a call (``REDUCE``/``NEWOBJ``/``OBJ``/``INST``), with what was
    later appended, set or built into it."""

    __slots__ = ("args", "func", "items", "offset", "pairs", "states")

    def __init__(self, func: Any, args: Any, offset: int) -> None:
        self.func = func
        self.args = args
        self.offset = offset
        self.items: list[Any] = []
        self.pairs: list[tuple[Any, Any]] = []
        self.states: list[Any] = []


@dataclass(frozen=True)
class Reference:
    """One place where a stream makes the unpickler import something."""

    module: str
    name: str
    #: Absolute byte offset of the opcode in the scanned stream.
    offset: int
    #: How: ``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``EXT1``… or the computing call
    #: (``builtins.getattr``, ``importlib.import_module``…).
    via: str


@dataclass(frozen=True, eq=False)
class Call:
    """One call the unpickler would make (its text is rendered only when asked for)."""

    #: The global called, when it resolves to one.
    target: Global | None
    func: Any
    args: Any
    offset: int
    opcode: str
    kwargs: Any = None
    #: Replaces the rendered call in :attr:`text` (for non-call events).
    note: str | None = None

    @property
    def text(self) -> str:
        """Readable text of what runs, e.g. ``os.system('true')``."""
        if self.note is not None:
            return self.note
        text = f"{_callee_text(self.func, 0)}({_args_text(self.args, 0)})"
        if self.kwargs is not None:
            text = text[:-1] + f", **{render(self.kwargs)})"
        return text if len(text) <= 200 else text[:197] + "..."


@dataclass(frozen=True)
class Mutation:
    """``BUILD`` applied to something that is not a freshly built object, or state
    that sets a dunder attribute (the rule judges which dunders matter)."""

    text: str
    offset: int
    #: The dunder state key, when that is what the mutation is.
    attribute: str | None = None


@dataclass
class PickleAnalysis:
    """Facts gathered from one stream of pickles."""

    references: list[Reference] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    mutations: list[Mutation] = field(default_factory=list)
    #: Calls whose callee could not be resolved statically.
    dynamic_calls: list[Call] = field(default_factory=list)
    #: The value each complete pickle returned (symbolic).
    results: list[Any] = field(default_factory=list)
    #: Every persistent id seen, in order.
    persistent_ids: list[Any] = field(default_factory=list)
    #: joblib arrays whose raw bytes were skipped.
    joblib_arrays: int = 0
    #: Bytes consumed from the stream.
    end_offset: int = 0
    #: Why the walk stopped early, if it did.
    error: str | None = None


_MARK = object()


class _Source:
    """A byte stream with a position counter, bounded lines and skipping."""

    def __init__(self, raw: IO[bytes], base: int, limits: Limits) -> None:
        self._raw = raw
        self.pos = base
        self._limits = limits
        try:
            self._seekable = bool(raw.seekable())
        except (AttributeError, OSError, ValueError):
            self._seekable = False

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise PickleParseError("unbounded read requested")
        data = self._raw.read(n)
        self.pos += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        line = self._raw.readline(self._limits.max_line + 1)
        self.pos += len(line)
        if len(line) > self._limits.max_line:
            raise LimitExceededError(
                f"pickle text argument longer than {self._limits.max_line:,} bytes"
            )
        return line

    def long_line(self, keep: int, limit: int, what: str) -> tuple[bytes, int]:
        """A text line of up to ``limit`` bytes, read in chunks: its first ``keep``
        bytes (newline included when it fits) and its full length. Raises
        :class:`PickleParseError` if the stream ends before the newline."""
        head = bytearray()
        total = 0
        while True:
            chunk = self._raw.readline(_CHUNK)
            self.pos += len(chunk)
            total += len(chunk)
            if len(head) < keep:
                head += chunk[: keep - len(head)]
            if total > limit:
                raise LimitExceededError(f"pickle {what} argument longer than {limit:,} bytes")
            if not chunk:
                raise PickleParseError(f"{what}: no newline at offset {self.pos}")
            if chunk.endswith(b"\n"):
                return bytes(head), total

    def exact(self, n: int, what: str) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise PickleParseError(f"truncated {what} at offset {self.pos}")
        return data

    def skip(self, n: int, what: str) -> None:
        if n <= 0:
            return
        if self._seekable:
            here = self._raw.tell()
            end = self._raw.seek(0, io.SEEK_END)
            if end - here < n:
                self._raw.seek(end)
                self.pos += end - here
                raise PickleParseError(f"truncated {what} at offset {self.pos}")
            self._raw.seek(here + n)
            self.pos += n
            return
        remaining = n
        while remaining:
            chunk = self._raw.read(min(remaining, 1 << 20))
            if not chunk:
                raise PickleParseError(f"truncated {what} at offset {self.pos}")
            remaining -= len(chunk)
            self.pos += len(chunk)

    def at_eof(self) -> bool:
        peek = getattr(self._raw, "peek", None)
        if peek is not None:
            return not peek(1)
        if self._seekable:
            here = self._raw.tell()
            end = self._raw.seek(0, io.SEEK_END)
            self._raw.seek(here)
            return here >= end
        raise PickleParseError("cannot look ahead in this stream")

    def peek(self, n: int) -> bytes:
        peek = getattr(self._raw, "peek", None)
        if peek is not None:
            return bytes(peek(n)[:n])
        here = self._raw.tell()
        data = self._raw.read(n)
        self._raw.seek(here)
        return bytes(data)


_CHUNK = 1 << 20
_OPS = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}
# Protocol 0 string lines: (kind of a Blob when too long to keep).
_TEXT_LINES = {"stringnl": "string", "unicodestringnl": "unicode"}
# Length-prefixed arguments: (prefix format, kind).
_SIZED = {
    "bytes1": ("<B", "bytes"),
    "bytes4": ("<I", "bytes"),
    "bytes8": ("<Q", "bytes"),
    "bytearray8": ("<Q", "bytes"),
    "string1": ("<B", "string"),
    "string4": ("<i", "string"),
    "unicodestring1": ("<B", "unicode"),
    "unicodestring4": ("<I", "unicode"),
    "unicodestring8": ("<Q", "unicode"),
    "long4": ("<i", "long"),
}
_PICKLE_ERRORS = (ValueError, struct.error, UnicodeDecodeError, EOFError, OverflowError)


def _read_arg(op: pickletools.OpcodeInfo, src: _Source, limits: Limits) -> Any:
    desc = op.arg
    if desc is None:
        return None
    if desc.name == "stringnl_noescape_pair":  # GLOBAL, INST: two raw UTF-8 lines
        return (_raw_line(src, op.name, "utf-8"), _raw_line(src, op.name, "utf-8"))
    if desc.name == "stringnl_noescape":  # PERSID: one raw ASCII line
        return _raw_line(src, op.name, "ascii")
    sized = _SIZED.get(desc.name)
    if sized is None:
        reader: Any = src
        text_kind = _TEXT_LINES.get(desc.name)
        if text_kind is not None:
            line, size = src.long_line(limits.max_arg_bytes + 1, limits.max_text_arg, op.name)
            if size > limits.max_arg_bytes:
                return Blob(text_kind, size, line[:64])
            reader = io.BytesIO(line)
        try:
            # Protocol 0 STRING: escape decoding warns about odd escapes in hostile data.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return desc.reader(cast(Any, reader))
        except _PICKLE_ERRORS as exc:
            raise PickleParseError(f"bad {op.name} argument at offset {src.pos}: {exc}") from exc
    fmt, kind = sized
    (length,) = struct.unpack(fmt, src.exact(struct.calcsize(fmt), f"{op.name} length"))
    if length < 0:
        raise PickleParseError(f"negative {op.name} length at offset {src.pos}")
    if length > limits.max_arg_bytes:
        head = src.exact(64, op.name)
        src.skip(length - 64, f"{op.name} argument")
        return Blob(kind, length, head)
    data = src.exact(length, f"{op.name} argument")
    if kind == "unicode":
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise PickleParseError(f"bad UTF-8 in {op.name} at offset {src.pos}") from exc
    if kind == "string":
        return data.decode("latin-1")
    if kind == "long":
        return int.from_bytes(data, "little", signed=True)
    return data


def _raw_line(src: _Source, opcode: str, encoding: str) -> str:
    """A text line read the way CPython's unpickler does (no escape processing:
    pickletools' own reader undoes escapes, which the real unpickler never does)."""
    line = src.readline()
    if len(line) < 2 and not (encoding == "ascii" and line == b"\n"):
        raise PickleParseError(f"{opcode}: truncated line at offset {src.pos}")
    if not line.endswith(b"\n"):
        raise PickleParseError(f"{opcode}: no newline at offset {src.pos}")
    try:
        return line[:-1].decode(encoding)
    except UnicodeDecodeError as exc:
        raise PickleParseError(f"{opcode}: undecodable name at offset {src.pos}") from exc


# -- rendering ---------------------------------------------------------------------


def render(value: Any, depth: int = 0, budget: int = 120) -> str:
    """Readable, bounded text for a symbolic value (argument previews in findings)."""
    text = _render(value, depth)
    return text if len(text) <= budget else text[: budget - 3] + "..."


def _render(value: Any, depth: int) -> str:
    if depth > 3:
        return "..."
    if isinstance(value, str):
        return repr(value if len(value) <= 100 else value[:100] + "...")
    if isinstance(value, bytes | bytearray):
        return repr(bytes(value[:60])) + ("..." if len(value) > 60 else "")
    if value is None or isinstance(value, bool | int | float | complex):
        return repr(value)
    if isinstance(value, Global):
        return value.dotted
    if isinstance(value, ModuleRef):
        return f"<module {value.module}>"
    if isinstance(value, Blob):
        return f"<{value.kind} of {value.size:,} bytes>"
    if isinstance(value, Persistent):
        return f"persistent_load({_render(value.pid, depth + 1)})"
    if isinstance(value, tuple):
        inner = ", ".join(_render(v, depth + 1) for v in value[:8])
        more = ", ..." if len(value) > 8 else ""
        return f"({inner}{more}{',' if len(value) == 1 else ''})"
    if isinstance(value, list):
        inner = ", ".join(_render(v, depth + 1) for v in value[:8])
        return f"[{inner}{', ...' if len(value) > 8 else ''}]"
    if isinstance(value, SymDict):
        inner = ", ".join(
            f"{_render(k, depth + 1)}: {_render(v, depth + 1)}" for k, v in value.pairs[:6]
        )
        return "{" + inner + (", ..." if len(value.pairs) > 6 else "") + "}"
    if isinstance(value, Obj):
        return f"{_callee_text(value.func, depth + 1)}({_args_text(value.args, depth + 1)})"
    if isinstance(value, _Attr):
        return f"{_render(value.obj, depth + 1)}.{value.name}"
    return f"<{type(value).__name__}>"


def _callee_text(func: Any, depth: int) -> str:
    if isinstance(func, Global):
        return func.dotted
    return _render(func, depth)


def _args_text(args: Any, depth: int) -> str:
    if isinstance(args, tuple):
        return ", ".join(_render(a, depth) for a in args[:8]) + (", ..." if len(args) > 8 else "")
    return "*" + _render(args, depth)


@dataclass(frozen=True)
class _Attr:
    """An attribute of a value that is not a module or global (unresolvable)."""

    obj: Any
    name: str


# -- the walker ---------------------------------------------------------------------

_RESOLVERS_GETATTR = frozenset({("builtins", "getattr"), ("__builtin__", "getattr")})
_RESOLVERS_IMPORT = frozenset(
    {
        ("importlib", "import_module"),
        ("importlib", "__import__"),
        ("builtins", "__import__"),
        ("__builtin__", "__import__"),
        ("importlib._bootstrap", "_gcd_import"),
    }
)
_RESOLVERS_NAME = frozenset({("pkgutil", "resolve_name"), ("pydoc", "locate")})
_ATTRGETTER = frozenset({("operator", "attrgetter"), ("_operator", "attrgetter")})
_METHODCALLER = frozenset({("operator", "methodcaller"), ("_operator", "methodcaller")})
_ITEMGETTER = frozenset({("operator", "getitem"), ("_operator", "getitem")})
_OPERATOR_CALL = frozenset({("operator", "call"), ("_operator", "call")})
_PARTIAL = frozenset({("functools", "partial"), ("_functools", "partial")})


class Walker:
    """Symbolically executes the pickles of one stream.

    One walker holds the analysis of a whole stream; :meth:`walk_pickle` walks one
    pickle (to its ``STOP``) and may be called again for the pickles that follow.
    """

    def __init__(self, stream: IO[bytes], *, base: int = 0, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.src = _Source(stream, base, self.limits)
        self.analysis = PickleAnalysis(end_offset=base)
        self._opcodes = 0
        self._pickles = 0
        #: Called after a ``BUILD`` with the built value: returns True when it consumed
        #: raw bytes that follow (joblib arrays).
        self.after_build: Any = None

    # -- public driving API --

    @property
    def opcodes(self) -> int:
        """Opcodes walked so far."""
        return self._opcodes

    def at_eof(self) -> bool:
        """True when the stream has no more bytes."""
        return self.src.at_eof()

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes, not consumed."""
        return self.src.peek(n)

    def skip(self, n: int, what: str) -> None:
        """Skip ``n`` raw bytes (array or storage data between pickles)."""
        self.src.skip(n, what)
        self.analysis.end_offset = self.src.pos

    def read(self, n: int, what: str) -> bytes:
        """Read exactly ``n`` raw bytes."""
        data = self.src.exact(n, what)
        self.analysis.end_offset = self.src.pos
        return data

    def walk_pickle(self) -> Any:
        """Walk one pickle to its STOP; return the symbolic value it produces.

        Raises :class:`PickleParseError` (or :class:`LimitExceededError`) when the
        stream breaks; the facts gathered so far stay in :attr:`analysis`.
        """
        self._pickles += 1
        if self._pickles > self.limits.max_pickles:
            raise LimitExceededError(f"more than {self.limits.max_pickles:,} pickles in one stream")
        state = _State()
        value = self._run(state)
        self.analysis.results.append(value)
        self.analysis.end_offset = self.src.pos
        return value

    # -- the opcode loop --

    def _run(self, st: _State) -> Any:
        src = self.src
        limits = self.limits
        max_opcodes = limits.max_opcodes
        max_stack = limits.max_stack
        dispatch = _DISPATCH
        while True:
            offset = src.pos
            code = src.read(1)
            if not code:
                raise PickleParseError(f"pickle ends without STOP at offset {offset}")
            entry = dispatch.get(code[0])
            if entry is None:
                raise PickleParseError(f"unknown opcode {code!r} at offset {offset}")
            op, handler = entry
            self._opcodes += 1
            if self._opcodes > max_opcodes:
                raise LimitExceededError(
                    f"more than {max_opcodes:,} pickle opcodes",
                    advice="the stream is unusually large or hostile",
                )
            arg = None if op.arg is None else _read_arg(op, src, limits)
            try:
                done = handler(self, st, arg, offset)
            except (IndexError, _StackError) as exc:
                raise PickleParseError(
                    f"malformed pickle: {op.name} at offset {offset} ({exc or 'stack underflow'})"
                ) from exc
            if done:
                return st.result
            if len(st.stack) + st.depth_items > max_stack:
                raise LimitExceededError(f"pickle stack deeper than {max_stack:,} items")

    # -- helpers used by handlers --

    def reference(self, module: Any, name: Any, offset: int, via: str) -> Any:
        """Record an import of ``module.name`` and return its symbolic value."""
        module_text = _text(module)
        name_text = _text(name)
        if module_text is None or name_text is None:
            call = Call(
                None,
                None,
                None,
                offset,
                via,
                note=f"imports a global whose name is computed: {render(module)}, {render(name)}",
            )
            self.analysis.dynamic_calls.append(call)
            return _Attr(module, _text(name) or "?")
        self.analysis.references.append(Reference(module_text, name_text, offset, via))
        return Global(module_text, name_text)

    def call(self, func: Any, args: Any, offset: int, opcode: str, kwargs: Any = None) -> Any:
        """Record a call and compute its symbolic result (resolving computing calls)."""
        if (
            isinstance(func, Persistent)
            and isinstance(func.pid, tuple)
            and len(func.pid) >= 2
            and func.pid[0] == "module"
            and isinstance(func.pid[1], Global)
        ):
            # Legacy torch.save replaces classes by ('module', cls, file, source); its
            # persistent_load returns cls.
            func = func.pid[1]
        if isinstance(func, Global):
            self.analysis.calls.append(Call(func, func, args, offset, opcode, kwargs))
            resolved = self._resolve_call(func, args, offset)
            if resolved is not None:
                return resolved
            return Obj(func, args, offset)
        if isinstance(func, Obj) and isinstance(func.func, Global):
            key = (func.func.module, func.func.name)
            targs = func.args if isinstance(func.args, tuple) else ()
            if key in _ATTRGETTER and targs and isinstance(args, tuple) and args:
                result = args[0]
                for name in targs[:1]:
                    if isinstance(name, str):
                        for part in name.split("."):
                            result = self._attr(result, part, offset, "operator.attrgetter")
                return result
            if key in _METHODCALLER and targs and isinstance(args, tuple) and args:
                method = self._attr(
                    args[0], _text(targs[0]) or "?", offset, "operator.methodcaller"
                )
                return self.call(method, tuple(targs[1:]), offset, opcode)
            if key in _PARTIAL and targs:
                inner_args = tuple(targs[1:]) + (args if isinstance(args, tuple) else ())
                return self.call(targs[0], inner_args, offset, opcode)
        self.analysis.dynamic_calls.append(Call(None, func, args, offset, opcode, kwargs))
        return Obj(func, args, offset)

    def _resolve_call(self, func: Global, args: Any, offset: int) -> Any:
        key = (func.module, func.name)
        if not isinstance(args, tuple):
            return None
        via = func.dotted
        if key in _RESOLVERS_GETATTR and len(args) >= 2 and _text(args[1]) is not None:
            return self._attr(args[0], _text(args[1]) or "", offset, via)
        if key in _RESOLVERS_IMPORT and args and _text(args[0]) is not None:
            return ModuleRef(_text(args[0]) or "")
        if key in _RESOLVERS_NAME and args and _text(args[0]) is not None:
            target = _text(args[0]) or ""
            if ":" in target:
                module, _, name = target.partition(":")
            elif "." in target:
                module, _, name = target.rpartition(".")
            else:
                return ModuleRef(target)
            return self.reference(module, name, offset, via)
        if key in _OPERATOR_CALL and args:
            # operator.call(f, *args) calls f: resolve it like a direct call.
            return self.call(args[0], tuple(args[1:]), offset, "operator.call")
        if key in _ITEMGETTER and len(args) >= 2:
            container, item = args[0], _text(args[1])
            if isinstance(container, Global) and container.dotted == "sys.modules" and item:
                return ModuleRef(item)
        return None

    def _attr(self, obj: Any, name: str, offset: int, via: str) -> Any:
        if isinstance(obj, ModuleRef):
            return self.reference(obj.module, name, offset, via)
        if isinstance(obj, Global):
            return self.reference(obj.module, f"{obj.name}.{name}", offset, via)
        if isinstance(obj, str):
            return self.reference("builtins", f"str.{name}", offset, via)
        if isinstance(obj, bytes):
            return self.reference("builtins", f"bytes.{name}", offset, via)
        return _Attr(obj, name)

    def build(self, obj: Any, state: Any, offset: int) -> None:
        """``BUILD``: ``obj.__setstate__(state)`` or an attribute update."""
        if isinstance(obj, Obj):
            obj.states.append(state)
            # A (dict_state, slot_state) pair: the second part goes through setattr.
            parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
            for part in parts:
                if not isinstance(part, SymDict):
                    continue
                for key, _value in part.pairs:
                    if isinstance(key, str) and key.startswith("__") and key.endswith("__"):
                        self.analysis.mutations.append(
                            Mutation(f"sets {key} on {render(obj)} through BUILD", offset, key)
                        )
        elif isinstance(obj, Global | ModuleRef | _Attr):
            self.analysis.mutations.append(
                Mutation(f"overwrites attributes of {render(obj)} with {render(state)}", offset)
            )


class _StackError(Exception):
    pass


class _State:
    """Stack, mark stack and memo of one pickle."""

    __slots__ = ("depth_items", "memo", "metastack", "result", "stack")

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.result: Any = None
        self.depth_items = 0

    def pop(self) -> Any:
        if not self.stack:
            raise _StackError("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise _StackError("empty stack")
        return self.stack[-1]

    def mark(self) -> None:
        self.metastack.append(self.stack)
        self.depth_items += len(self.stack)
        self.stack = []

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _StackError("no MARK on the stack")
        items = self.stack
        self.stack = self.metastack.pop()
        self.depth_items -= len(self.stack)
        return items


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None


def _memo_put(w: Walker, st: _State, index: int) -> None:
    if index < 0:
        raise _StackError("negative memo index")
    st.memo[index] = st.top()
    if len(st.memo) > w.limits.max_memo:
        raise LimitExceededError(f"pickle memo larger than {w.limits.max_memo:,} entries")


def _memo_get(st: _State, index: int) -> Any:
    try:
        return st.memo[index]
    except KeyError:
        raise _StackError(f"memo key {index} not found") from None


def _push(value: Any) -> Any:
    def handler(w: Walker, st: _State, arg: Any, offset: int) -> bool:
        st.stack.append(value)
        return False

    return handler


def _push_arg(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.stack.append(arg)
    return False


def _proto(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    if not 0 <= arg <= 5:
        raise PickleParseError(f"unsupported pickle protocol {arg} at offset {offset}")
    return False


def _nothing(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    return False


def _stop(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.result = st.pop()
    return True


def _mark(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.mark()
    return False


def _pop(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    if st.stack:
        st.stack.pop()
    else:
        st.pop_mark()
    return False


def _pop_mark(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.pop_mark()
    return False


def _dup(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.stack.append(st.top())
    return False


def _put(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    _memo_put(w, st, int(arg))
    return False


def _memoize(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    _memo_put(w, st, len(st.memo))
    return False


def _get(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.stack.append(_memo_get(st, int(arg)))
    return False


def _tuple_n(n: int) -> Any:
    def handler(w: Walker, st: _State, arg: Any, offset: int) -> bool:
        if len(st.stack) < n:
            raise _StackError("stack underflow")
        items = tuple(st.stack[len(st.stack) - n :]) if n else ()
        del st.stack[len(st.stack) - n :]
        st.stack.append(items)
        return False

    return handler


def _tuple(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = tuple(st.pop_mark())
    st.stack.append(items)
    return False


def _empty_list(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.stack.append([])
    return False


def _list(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = st.pop_mark()
    st.stack.append(items)
    return False


def _empty_dict(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.stack.append(SymDict())
    return False


def _dict(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = st.pop_mark()
    result = SymDict()
    result.pairs = list(zip(items[::2], items[1::2], strict=False))
    st.stack.append(result)
    return False


def _empty_set(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.stack.append(Obj(Global("builtins", "set"), (), offset))
    return False


def _frozenset(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = st.pop_mark()
    result = Obj(Global("builtins", "frozenset"), (), offset)
    result.items.extend(items)
    st.stack.append(result)
    return False


def _add_items(target: Any, items: list[Any]) -> None:
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, Obj):
        target.items.extend(items)


def _append(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    value = st.pop()
    _add_items(st.top(), [value])
    return False


def _appends(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = st.pop_mark()
    _add_items(st.top(), items)
    return False


def _additems(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = st.pop_mark()
    _add_items(st.top(), items)
    return False


def _set_pairs(target: Any, pairs: list[tuple[Any, Any]]) -> None:
    if isinstance(target, SymDict | Obj):
        target.pairs.extend(pairs)


def _setitem(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    value = st.pop()
    key = st.pop()
    _set_pairs(st.top(), [(key, value)])
    return False


def _setitems(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = st.pop_mark()
    _set_pairs(st.top(), list(zip(items[::2], items[1::2], strict=False)))
    return False


def _global(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    module, name = arg
    st.stack.append(w.reference(module, name, offset, "GLOBAL"))
    return False


def _stack_global(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    name = st.pop()
    module = st.pop()
    st.stack.append(w.reference(module, name, offset, "STACK_GLOBAL"))
    return False


def _ext(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.stack.append(w.reference("copyreg", f"_extension_registry[{arg}]", offset, "EXT"))
    return False


def _reduce(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    args = st.pop()
    func = st.pop()
    st.stack.append(w.call(func, args, offset, "REDUCE"))
    return False


def _newobj(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    args = st.pop()
    cls = st.pop()
    st.stack.append(w.call(cls, args, offset, "NEWOBJ"))
    return False


def _newobj_ex(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    kwargs = st.pop()
    args = st.pop()
    cls = st.pop()
    st.stack.append(w.call(cls, args, offset, "NEWOBJ_EX", kwargs))
    return False


def _obj(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = st.pop_mark()
    if not items:
        raise _StackError("OBJ without a class")
    st.stack.append(w.call(items[0], tuple(items[1:]), offset, "OBJ"))
    return False


def _inst(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    items = st.pop_mark()
    module, name = arg
    cls = w.reference(module, name, offset, "INST")
    st.stack.append(w.call(cls, tuple(items), offset, "INST"))
    return False


def _build(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    state = st.pop()
    obj = st.top()
    w.build(obj, state, offset)
    if w.after_build is not None:
        w.after_build(w, obj)
    return False


def _persid(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    w.analysis.persistent_ids.append(arg)
    st.stack.append(Persistent(arg))
    return False


def _binpersid(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    pid = st.pop()
    w.analysis.persistent_ids.append(pid)
    st.stack.append(Persistent(pid))
    return False


def _buffer(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.stack.append(Blob("out-of-band buffer", 0, b""))
    return False


def _readonly_buffer(w: Walker, st: _State, arg: Any, offset: int) -> bool:
    st.top()
    return False


_HANDLERS: dict[str, Any] = {
    "PROTO": _proto,
    "FRAME": _nothing,
    "STOP": _stop,
    "MARK": _mark,
    "POP": _pop,
    "POP_MARK": _pop_mark,
    "DUP": _dup,
    "PUT": _put,
    "BINPUT": _put,
    "LONG_BINPUT": _put,
    "MEMOIZE": _memoize,
    "GET": _get,
    "BINGET": _get,
    "LONG_BINGET": _get,
    "NONE": _push(None),
    "NEWTRUE": _push(True),
    "NEWFALSE": _push(False),
    "EMPTY_TUPLE": _tuple_n(0),
    "TUPLE1": _tuple_n(1),
    "TUPLE2": _tuple_n(2),
    "TUPLE3": _tuple_n(3),
    "TUPLE": _tuple,
    "EMPTY_LIST": _empty_list,
    "LIST": _list,
    "EMPTY_DICT": _empty_dict,
    "DICT": _dict,
    "EMPTY_SET": _empty_set,
    "FROZENSET": _frozenset,
    "APPEND": _append,
    "APPENDS": _appends,
    "ADDITEMS": _additems,
    "SETITEM": _setitem,
    "SETITEMS": _setitems,
    "GLOBAL": _global,
    "STACK_GLOBAL": _stack_global,
    "EXT1": _ext,
    "EXT2": _ext,
    "EXT4": _ext,
    "REDUCE": _reduce,
    "NEWOBJ": _newobj,
    "NEWOBJ_EX": _newobj_ex,
    "OBJ": _obj,
    "INST": _inst,
    "BUILD": _build,
    "PERSID": _persid,
    "BINPERSID": _binpersid,
    "NEXT_BUFFER": _buffer,
    "READONLY_BUFFER": _readonly_buffer,
}
for _name in (
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "FLOAT",
    "BINFLOAT",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "BINBYTES",
    "SHORT_BINBYTES",
    "BINBYTES8",
    "BYTEARRAY8",
    "UNICODE",
    "BINUNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
):
    _HANDLERS[_name] = _push_arg
_missing = {op.name for op in pickletools.opcodes} - set(_HANDLERS)
assert not _missing, _missing  # every opcode pickletools knows is simulated
_DISPATCH: dict[int, tuple[pickletools.OpcodeInfo, Any]] = {
    byte: (op, _HANDLERS[op.name]) for byte, op in _OPS.items()
}
