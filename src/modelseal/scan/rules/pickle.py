"""Pickle-based formats: plain pickles, PyTorch (zip members, legacy, legacy tar),
TorchScript pickle members, joblib (plain and compressed), NumPy object arrays.

Every global the stream would import is classified with
:func:`modelseal.scan.pickle.globals.classify` and reported with what would run
(``calls os.system('true')``). Nothing is unpickled.
"""

from __future__ import annotations

import io
import lzma
import re
from collections.abc import Iterator
from typing import Any

from modelseal.errors import FormatError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.formats.streams import decompressing
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity
from modelseal.scan.pickle.globals import DANGEROUS_ATTRIBUTES, DANGEROUS_RULE, classify
from modelseal.scan.pickle.streams import (
    StreamKind,
    StreamReport,
    analyse_stream,
    looks_like_pickle,
    read_npy_header,
)
from modelseal.scan.pickle.walker import Call, Global, Reference

__all__ = ["PickleRule"]

DANGEROUS = RuleInfo(
    DANGEROUS_RULE,
    "Pickle imports a dangerous global",
    "Loading this pickle imports (and usually calls) a function that runs code or "
    "commands, touches files or the network, or loads another pickle.",
    Severity.CRITICAL,
)
UNKNOWN = RuleInfo(
    "MS-PICKLE-UNKNOWN-GLOBAL",
    "Pickle imports a global outside the known-safe list",
    "Loading this pickle imports a class or function that is neither known-dangerous "
    "nor on the curated known-safe list; its code runs during loading. Listed so it "
    "can be reviewed, but kept out of the verdict by default (low); critical under "
    "--strict (deny by default).",
    Severity.LOW,
)
DYNAMIC = RuleInfo(
    "MS-PICKLE-DYNAMIC-CALL",
    "Pickle calls something computed at load time",
    "The pickle calls a value that is not a plain import (an attribute of an object, a "
    "call result): a common way to hide what runs. Critical under --strict.",
    Severity.HIGH,
)
TAMPERING = RuleInfo(
    "MS-PICKLE-STATE-TAMPERING",
    "Pickle overwrites attributes of an imported object",
    "BUILD is applied to a class, function or module, or its state sets an attribute "
    "that changes behaviour (__reduce__, __setstate__, __class__, a __dict__ swap, "
    "__code__, __globals__...): loading modifies the running program. Other "
    "dunder-shaped state keys are data and are not reported.",
    Severity.HIGH,
)
EXPANSION = RuleInfo(
    "MS-PICKLE-EXPANSION",
    "Pickle expands far beyond its size (billion laughs)",
    "Memo references (GET/DUP) repeat the same values so that the loaded object "
    "expands exponentially when it is traversed, printed or copied, or a call "
    "multiplies, raises to a power or materialises a value of billions of elements "
    "while loading: a denial of service. Estimated from the opcodes; nothing is built.",
    Severity.HIGH,
)
TRAILING = RuleInfo(
    "MS-PICKLE-TRAILING-DATA",
    "Data after the last pickle",
    "Bytes follow the last pickle that are not a pickle: pickle.load ignores them, "
    "but a custom loader may not. They were not analysed.",
    Severity.MEDIUM,
)
OBJECT_NPY = RuleInfo(
    "MS-PICKLE-OBJECT-NPY",
    "NumPy array of Python objects",
    "The .npy array has an object dtype: its data is a pickle, and loading it "
    "requires allow_pickle=True. The pickle was scanned.",
    Severity.LOW,
)

_FORMATS = frozenset(
    {Format.PICKLE, Format.PYTORCH_LEGACY, Format.JOBLIB, Format.NUMPY, Format.UNKNOWN}
)
# Formats whose bytes may still be a pickle that format sniffing did not recognise.
_HEADLESS = frozenset({Format.UNKNOWN, Format.TEXT})
_TORCH_ARCHIVES = frozenset({Format.PYTORCH_ZIP, Format.TORCHSCRIPT})
# ``.lzma`` files (joblib ``compress='lzma'``) are LZMA "alone" streams: properties
# byte 0x5d then a little-endian dictionary size.
_LZMA_ALONE = b"\x5d\x00\x00"
_BUFFER = 256 * 1024
# Findings listed per kind; a hostile stream may name a million globals.
_MAX_PER_KIND = 50
_TORCH_STORAGE = re.compile(r"^[^/]+/data/\d+$")


class PickleRule(Rule):
    """Finds what would run when a pickle-based file is loaded."""

    formats = _FORMATS
    infos = (DANGEROUS, UNKNOWN, DYNAMIC, TAMPERING, EXPANSION, TRAILING, OBJECT_NPY)

    def applies_to(self, entry: Entry, options: ScanOptions) -> bool:
        """Pickle formats, plus unknown or text files that are LZMA-alone compressed
        streams or pickles without a ``PROTO`` header (``pickle.loads`` needs none, and
        a protocol 0 pickle is text)."""
        if entry.format not in _HEADLESS:
            return entry.format in _FORMATS
        if entry.problem is not None or (
            entry.container_format in _TORCH_ARCHIVES and _TORCH_STORAGE.match(entry.inner_path)
        ):
            return False
        try:
            head = entry.head()
        except (OSError, FormatError):
            return False
        if head[:3] == _LZMA_ALONE:
            return _lzma_pickle(head)
        return looks_like_pickle(head, truncated=len(head) < entry.size)

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Walk every pickle of ``entry``; raise FormatError (after findings) if it breaks."""
        if entry.problem is not None:
            return
        kind = _stream_kind(entry)
        with entry.open() as raw:
            stream: Any = raw
            if entry.format in _HEADLESS and entry.head(3) == _LZMA_ALONE:
                stream = decompressing(raw, "xz", options.limits.max_member_bytes, entry.path)
            buffered = io.BufferedReader(stream, _BUFFER)
            base = 0
            if entry.format is Format.NUMPY:
                header = read_npy_header(buffered)
                if not header.has_object:
                    return
                yield Finding(
                    OBJECT_NPY.id,
                    OBJECT_NPY.default_severity,
                    f"object array (dtype {header.descr!r}, shape {header.shape}): loading "
                    "needs allow_pickle=True",
                    entry.path,
                )
                base = header.data_offset
            report = analyse_stream(buffered, kind, base=base)
        yield from _findings(entry, report, options)
        if report.analysis.error is not None:
            raise FormatError(f"{entry.path}: pickle stream broken: {report.analysis.error}")


def _lzma_pickle(head: bytes) -> bool:
    """Whether ``head`` starts an LZMA-alone stream that decompresses to a pickle."""
    try:
        out = lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(head, max_length=4096)
    except lzma.LZMAError:
        return False
    return out[:1] == b"\x80" or looks_like_pickle(out, truncated=True)


def _stream_kind(entry: Entry) -> StreamKind:
    if entry.container_format is Format.PYTORCH_LEGACY_TAR:
        name = entry.inner_path.strip("./")
        if name == "storages":
            return StreamKind.TORCH_TAR_STORAGES
        if name == "tensors":
            return StreamKind.TORCH_TAR_TENSORS
    return StreamKind.PICKLES


def _findings(entry: Entry, report: StreamReport, options: ScanOptions) -> Iterator[Finding]:
    analysis = report.analysis
    settings = options.settings
    torchscript = entry.container_format is Format.TORCHSCRIPT
    calls: dict[tuple[str, str], list[Call]] = {}
    for call in analysis.calls:
        if call.target is not None:
            calls.setdefault((call.target.module, call.target.name), []).append(call)
    seen: dict[tuple[str, str], list[Reference]] = {}
    for ref in analysis.references:
        seen.setdefault((ref.module, ref.name), []).append(ref)
    shown: dict[str, int] = {}
    for (module, name), refs in seen.items():
        verdict = classify(
            module,
            name,
            user_dangerous=settings.dangerous_globals,
            user_safe=settings.safe_globals,
            torchscript=torchscript,
        )
        made = calls.get((module, name), [])
        called = [c for c in made if c.opcode in _RUNS_INIT]
        if verdict.kind == "safe" and not (verdict.instantiate_only and called):
            continue
        kind = "dangerous" if verdict.kind == "dangerous" else "unknown"
        shown[kind] = shown.get(kind, 0) + 1
        if shown[kind] > _MAX_PER_KIND:
            continue
        first = refs[0]
        what = _what_runs(Global(module, name), made, refs)
        where = f"offset {first.offset}"
        if kind == "dangerous":
            yield Finding(
                verdict.rule or DANGEROUS.id,
                Severity.CRITICAL,
                f"{what} — {verdict.reason}",
                where,
            )
        else:
            why = (
                "known-safe only when rebuilt by pickle; called with arguments, its __init__ runs"
                if verdict.kind == "safe"
                else "not a known-safe global"
            )
            yield Finding(
                UNKNOWN.id,
                Severity.CRITICAL if options.strict else UNKNOWN.default_severity,
                f"{what} — {why}" + (" (deny by default: --strict)" if options.strict else ""),
                where,
            )
    for kind, count in shown.items():
        if count > _MAX_PER_KIND:
            info = DANGEROUS if kind == "dangerous" else UNKNOWN
            severity = (
                Severity.CRITICAL
                if kind == "dangerous" or options.strict
                else info.default_severity
            )
            yield Finding(
                info.id,
                severity,
                f"... and {count - _MAX_PER_KIND:,} more {kind} globals (not listed)",
                "",
            )
    for call in analysis.dynamic_calls[:_MAX_PER_KIND]:
        yield Finding(
            DYNAMIC.id,
            Severity.CRITICAL if options.strict else DYNAMIC.default_severity,
            f"calls {call.text}",
            f"offset {call.offset}",
        )
    tampering = [
        m for m in analysis.mutations if m.attribute is None or m.attribute in DANGEROUS_ATTRIBUTES
    ]
    for mutation in tampering[:_MAX_PER_KIND]:
        effect = DANGEROUS_ATTRIBUTES.get(mutation.attribute or "")
        yield Finding(
            TAMPERING.id,
            TAMPERING.default_severity,
            mutation.text + (f": {effect}" if effect else ""),
            f"offset {mutation.offset}",
        )
    for expansion in report.expansions[:_MAX_PER_KIND]:
        size = _size_text(expansion.size)
        if expansion.kind == "allocation":
            text = f"builds a value of ~{size} elements or bytes while loading: {expansion.text}"
        else:
            text = (
                f"the loaded object expands to ~{size} elements when traversed: memo "
                f"references repeat the same values ({expansion.text})"
            )
        yield Finding(EXPANSION.id, EXPANSION.default_severity, text, f"offset {expansion.offset}")
    if report.trailing_offset is not None:
        yield Finding(
            TRAILING.id,
            TRAILING.default_severity,
            f"non-pickle data follows the last pickle ({report.pickles} pickle(s) read)",
            f"offset {report.trailing_offset}",
        )


def _size_text(size: int) -> str:
    return f"{size:,}" if size < 10**15 else f"2^{size.bit_length() - 1}"


def _what_runs(target: Global, calls: list[Call], refs: list[Reference]) -> str:
    via = next((r.via for r in refs if r.via not in _OPCODES), None)
    suffix = f" (resolved through {via})" if via else ""
    if calls:
        more = f" and {len(calls) - 1} more call(s)" if len(calls) > 1 else ""
        return f"calls {calls[0].text}{more}{suffix}"
    return f"imports {target.dotted}{suffix}"


_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "EXT"})
# Calls that run a class's __init__ (NEWOBJ and the copyreg reconstructors do not).
_RUNS_INIT = frozenset({"REDUCE", "OBJ", "INST", "operator.call"})
