"""Pickle expansion ("billion laughs"): values that grow far beyond the stream.

Two shapes, both estimated from the symbolic values the walker built, never by
materialising anything:

* **shared references**: ``GET``/``DUP`` push the *same* value again, so a few bytes
  of opcodes make a list of lists of lists... whose expanded size doubles (or more)
  per level. Unpickling itself stays small, but whatever walks the result (``repr``,
  ``json.dumps``, ``copy.deepcopy`` of a tree, a config printer, a model summary)
  visits every path: 2^40 of them for a 200-byte stream.
* **load-time allocation**: ``REDUCE`` calls that multiply a sequence by a large
  integer (``operator.mul('a', 10**12)``, ``str.__mul__``), raise to a huge power
  (``pow(10, 10**10)``), shift (``1 << 10**11``), or materialise a huge range
  (``bytes(range(...))``, ``bytearray(10**12)``): the unpickler itself exhausts
  memory.

The expanded size of a value counts one unit per container and scalar, and one
unit per byte or character of strings and blobs. Shared references are reported
when the expanded size passes :data:`MIN_EXPANSION` units *and* is more than
:data:`MIN_RATIO` times the bytes of the stream (legitimate sharing -- one dtype
object referenced by every array -- stays within a small factor); allocations when
they pass :data:`MIN_ALLOCATION`. Cycles (a list that contains itself) are counted
once, as ``pickle`` builds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeGuard

from modelseal.scan.pickle.walker import Blob, Call, Global, Obj, PickleAnalysis, SymDict

__all__ = ["MIN_ALLOCATION", "MIN_EXPANSION", "MIN_RATIO", "Expansion", "find_expansions"]

#: Expanded size (units) from which shared references are reported.
MIN_EXPANSION = 1 << 26
#: ... and only when it is this many times larger than the stream.
MIN_RATIO = 1000
#: Size (units) of a value built by one call from which it is reported.
MIN_ALLOCATION = 1 << 28
# Sizes saturate here (exponential structures would otherwise make huge integers).
_CAP = 1 << 80
# Nodes visited per stream, across every estimate (bounds the time on hostile input).
_VISIT_FACTOR = 4

_REPEAT = frozenset({"mul", "imul", "__mul__", "__imul__", "__rmul__"})
_POWER = frozenset({"pow", "ipow", "__pow__", "__ipow__"})
_SHIFT = frozenset({"lshift", "ilshift", "__lshift__", "__ilshift__"})
_MATERIALISE = frozenset({"list", "tuple", "set", "frozenset", "bytes", "bytearray", "sorted"})
_SIZED_BY_INT = frozenset({"bytes", "bytearray"})


@dataclass(frozen=True)
class Expansion:
    """One value that grows far beyond the bytes that describe it."""

    #: ``shared-references`` or ``allocation``.
    kind: str
    #: Estimated size in units (elements plus string bytes), saturated at 2**80.
    size: int
    offset: int
    #: What builds it (the call, or the opcode count of the pickle).
    text: str


def find_expansions(analysis: PickleAnalysis, stream_bytes: int) -> list[Expansion]:
    """Every expansion in ``analysis`` (a stream of ``stream_bytes`` bytes)."""
    budget = [_VISIT_FACTOR * (len(analysis.calls) + stream_bytes) + 1024]
    found: list[Expansion] = []
    for call in analysis.calls:
        if call.target is None:
            continue
        size = _allocation(call, budget)
        if size is not None and size >= MIN_ALLOCATION:
            found.append(Expansion("allocation", size, call.offset, call.text))
    for value in analysis.results:
        size = expanded_size(value, budget)
        if size is None:
            break
        if size >= MIN_EXPANSION and size > MIN_RATIO * max(stream_bytes, 1):
            found.append(
                Expansion(
                    "shared-references",
                    size,
                    analysis.end_offset,
                    f"a {stream_bytes:,}-byte stream",
                )
            )
    return found


def _allocation(call: Call, budget: list[int]) -> int | None:
    """The size of what ``call`` builds, when it is a known growing operation."""
    target = call.target
    args = call.args if isinstance(call.args, tuple) else ()
    if target is None or len(args) not in (1, 2):
        return None
    module, name = target.module, target.name
    method = name.rpartition(".")[2]
    if len(args) == 2 and method in _REPEAT | _POWER | _SHIFT and _is_growth_module(module, name):
        left, right = args
        if method in _REPEAT:
            if _is_int(right) and not _is_int(left):
                return _times(expanded_size(left, budget), right)
            if _is_int(left) and not _is_int(right):
                return _times(expanded_size(right, budget), left)
            return None
        if not (_is_int(left) and _is_int(right)) or right <= 0:
            return None
        if method in _SHIFT:
            return min(right // 8, _CAP)
        if abs(left) < 2:
            return None
        return min(right * (abs(left).bit_length() - 1) // 8, _CAP)
    if module in ("builtins", "__builtin__") and len(args) == 1:
        (arg,) = args
        if name in _SIZED_BY_INT and _is_int(arg):
            return max(arg, 0)
        if name in _MATERIALISE:
            return _lazy_length(arg)
    return None


def _is_growth_module(module: str, name: str) -> bool:
    if module in ("operator", "_operator", "math"):
        return "." not in name
    if module in ("builtins", "__builtin__"):
        return name == "pow" or name.split(".")[0] in ("str", "bytes", "list", "tuple", "int")
    return False


def _lazy_length(value: Any) -> int | None:
    """Length of a lazy iterable a call would materialise (``range``,
    ``itertools.repeat``)."""
    if not isinstance(value, Obj) or not isinstance(value.func, Global):
        return None
    func, args = value.func, value.args if isinstance(value.args, tuple) else ()
    if (func.module, func.name) in (("builtins", "range"), ("__builtin__", "xrange")):
        ints = [a for a in args if _is_int(a)]
        if len(ints) != len(args) or not 1 <= len(ints) <= 3:
            return None
        try:
            return min(len(range(*ints)), _CAP)
        except (ValueError, OverflowError):
            return _CAP
    if (func.module, func.name) == ("itertools", "repeat") and len(args) == 2:
        return max(args[1], 0) if _is_int(args[1]) else None
    return None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _times(size: int | None, count: int) -> int | None:
    if size is None or count <= 0:
        return None
    return min(size * count, _CAP)


def _weight(value: Any) -> int:
    if isinstance(value, str | bytes | bytearray):
        return max(len(value), 1)
    if isinstance(value, Blob):
        return max(value.size, 1)
    return 1


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, tuple | list):
        yield from value
    elif isinstance(value, SymDict):
        for key, item in value.pairs:
            yield key
            yield item
    elif isinstance(value, Obj):
        if isinstance(value.args, tuple):
            yield from value.args
        yield from value.items
        for key, item in value.pairs:
            yield key
            yield item
        yield from value.states


def _is_container(value: Any) -> bool:
    return isinstance(value, tuple | list | SymDict | Obj)


_DONE = object()


def expanded_size(root: Any, budget: list[int]) -> int | None:
    """Units ``root`` expands to when every shared reference is followed (iterative,
    each distinct node visited once); None when ``budget`` (nodes left to visit,
    decremented in place) runs out."""
    if not _is_container(root):
        return _weight(root)
    sizes: dict[int, int] = {}
    on_path = {id(root)}
    frames: list[list[Any]] = [[root, _children(root), 1]]
    while frames:
        frame = frames[-1]
        child = next(frame[1], _DONE)
        if child is _DONE:
            frames.pop()
            on_path.discard(id(frame[0]))
            size = min(frame[2], _CAP)
            sizes[id(frame[0])] = size
            if frames:
                frames[-1][2] += size
            continue
        if not _is_container(child):
            frame[2] += _weight(child)
            continue
        key = id(child)
        if key in sizes:
            frame[2] += sizes[key]
            continue
        if key in on_path:  # a cycle: pickle builds it once
            continue
        budget[0] -= 1
        if budget[0] < 0:
            return None
        on_path.add(key)
        frames.append([child, _children(child), 1])
    return sizes[id(root)]
