"""ONNX: external data that leaves the model directory, custom operator domains, nested graphs.

The model is read by field number with :mod:`modelseal.formats.protobuf` (the ``onnx``
package, which pulls in ``ml_dtypes`` and takes over a second to import, is not used),
and external data is never loaded, so a hostile ``location`` is only read as a string
here, never opened. Protobuf's merge rules are followed: a singular message field that
occurs several times (``graph``, an attribute's ``g``) is the merge of all occurrences,
and for scalars the last occurrence wins, as in every protobuf runtime.

Every graph is walked: the main graph, subgraphs held in node attributes (``If``
branches, ``Loop``/``Scan`` bodies, any ``GRAPH``/``GRAPHS`` attribute), model-local
functions and training-info graphs, to :data:`MAX_GRAPH_DEPTH` levels.

An ONNX protobuf is parsed in memory; files above :data:`MAX_ONNX_BYTES` (protobuf's own
2 GiB ceiling) are refused as a :class:`~modelseal.errors.LimitExceededError` — a valid
model that large keeps its weights in external data files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.formats.protobuf import Field, ProtobufError, WireType, message
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity

__all__ = [
    "MAX_GRAPH_DEPTH",
    "MAX_ONNX_BYTES",
    "STANDARD_DOMAINS",
    "OnnxRule",
]

#: Largest ONNX file parsed (protobuf cannot serialize a message of 2 GiB or more).
MAX_ONNX_BYTES = 2 * 1024**3 - 1
#: Deepest nesting of subgraphs walked.
MAX_GRAPH_DEPTH = 64
#: Operator domains implemented by ONNX itself and by ONNX Runtime's built-in contrib ops.
STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "com.microsoft"}
)

_DRIVE = re.compile(r"^[A-Za-z]:")
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

EXTERNAL_ESCAPE = RuleInfo(
    "MS-ONNX-EXTERNAL-DATA-ESCAPE",
    "External data outside the model directory",
    "A tensor's external_data location is absolute, climbs out of the model directory "
    "with '..', or is a symlink that resolves outside it: loading the model reads an "
    "arbitrary file on the machine into a tensor (and may leak it through outputs).",
    Severity.HIGH,
)
CUSTOM_OP = RuleInfo(
    "MS-ONNX-CUSTOM-OP",
    "Custom operator domain",
    "A node uses an operator domain that neither ONNX nor ONNX Runtime implements: "
    "running the model requires a custom operator library (native code, or Python ops "
    "from onnxruntime-extensions) supplied with the model.",
    Severity.MEDIUM,
)


class OnnxRule(Rule):
    """Checks external-data locations and operator domains in every graph of an ONNX model."""

    formats = frozenset({Format.ONNX})
    infos = (EXTERNAL_ESCAPE, CUSTOM_OP)

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Yield findings for external data escapes and custom operator domains."""
        try:
            yield from _check_model(_load(entry), _model_dir(entry))
        except ProtobufError as exc:
            raise FormatError(
                f"{entry.path}: not a readable ONNX model ({exc.message})",
                advice="the protobuf is damaged or truncated; it was not scanned",
            ) from exc


def _check_model(model: _Message, model_dir: Path | None) -> Iterator[Finding]:
    # ModelProto: graph=7, training_info=20, functions=25 (FunctionProto: name=1,
    # node=7, domain=10); TrainingInfoProto: initialization=1, algorithm=2.
    functions = model.each(25)
    local_functions = {(f.string(10), f.string(1)) for f in functions}
    walker = _Walker(model_dir, local_functions)
    yield from walker.graph(model.merged(7), "graph", 0)
    for function in functions:
        scope = f"function/{function.string(10)}.{function.string(1)}"
        yield from walker.nodes(function.each(7), scope, 1)
    for index, info in enumerate(model.each(20)):
        yield from walker.graph(info.merged(1), f"training_info[{index}]/init", 1)
        yield from walker.graph(info.merged(2), f"training_info[{index}]/algorithm", 1)


class _Message:
    """One protobuf message (the merge of every chunk it was written in), read lazily."""

    __slots__ = ("depth", "fields")

    def __init__(self, chunks: list[memoryview], depth: int) -> None:
        self.depth = depth
        self.fields: list[Field] = [f for chunk in chunks for f in message(chunk, depth)]

    def _payloads(self, number: int) -> list[memoryview]:
        return [
            f.data
            for f in self.fields
            if f.number == number and f.wire_type == WireType.LENGTH_DELIMITED
        ]

    def has(self, number: int) -> bool:
        """Whether a length-delimited field ``number`` is present."""
        return bool(self._payloads(number))

    def string(self, number: int) -> str:
        """A ``string`` field (the last occurrence wins; ``""`` when absent)."""
        payloads = self._payloads(number)
        return bytes(payloads[-1]).decode("utf-8", errors="replace") if payloads else ""

    def integer(self, number: int) -> int:
        """A varint field (the last occurrence wins; 0 when absent)."""
        values = [
            f.value for f in self.fields if f.number == number and f.wire_type == WireType.VARINT
        ]
        return int(values[-1]) if values else 0

    def merged(self, number: int) -> _Message:
        """A singular message field: all its occurrences merged (empty when absent)."""
        return _Message(self._payloads(number), self.depth + 1)

    def each(self, number: int) -> list[_Message]:
        """A repeated message field, one message per occurrence."""
        return [_Message([p], self.depth + 1) for p in self._payloads(number)]


def _load(entry: Entry) -> _Message:
    if entry.size > MAX_ONNX_BYTES:
        raise LimitExceededError(
            f"{entry.path}: {entry.size:,}-byte ONNX file exceeds the {MAX_ONNX_BYTES:,}-byte "
            "protobuf limit",
            advice="store large weights as ONNX external data",
        )
    try:
        with entry.open() as stream:
            data = stream.read(MAX_ONNX_BYTES + 1)
    except OSError as exc:
        raise FormatError(f"{entry.path}: not a readable ONNX model ({exc})") from exc
    if len(data) > MAX_ONNX_BYTES:
        raise LimitExceededError(f"{entry.path}: ONNX file exceeds the size limit")
    return _Message([memoryview(data)], 0)


def _model_dir(entry: Entry) -> Path | None:
    """The directory external data is resolved against (None inside archives)."""
    if entry.depth == 0 and entry.fs_path is not None:
        # The model's own directory as the user names it (links in it are checked).
        return Path(entry.path).parent
    return None


class _Walker:
    """Walks graphs, nodes and tensors, remembering which functions are model-local."""

    def __init__(self, model_dir: Path | None, local_functions: set[tuple[str, str]]) -> None:
        self._model_dir = model_dir
        self._local = local_functions

    def graph(self, graph: _Message, scope: str, depth: int) -> Iterator[Finding]:
        # GraphProto: node=1, initializer=5, sparse_initializer=15 (SparseTensorProto:
        # values=1, indices=2).
        if depth > MAX_GRAPH_DEPTH:
            raise FormatError(f"subgraphs nested deeper than {MAX_GRAPH_DEPTH} levels at {scope}")
        for tensor in graph.each(5):
            yield from self.tensor(tensor, f"{scope}/initializer/{tensor.string(8)}")
        for sparse in graph.each(15):
            values = sparse.merged(1)
            name = values.string(8)
            yield from self.tensor(values, f"{scope}/sparse_initializer/{name}")
            indices = sparse.merged(2)
            yield from self.tensor(indices, f"{scope}/sparse_initializer/{name}/indices")
        yield from self.nodes(graph.each(1), scope, depth)

    def nodes(self, nodes: list[_Message], scope: str, depth: int) -> Iterator[Finding]:
        # NodeProto: name=3, op_type=4, attribute=5, domain=7.
        for index, node in enumerate(nodes):
            name, op_type, domain = node.string(3), node.string(4), node.string(7)
            where = f"{scope}/node[{index}]({name or op_type})"
            if domain not in STANDARD_DOMAINS and (domain, op_type) not in self._local:
                yield Finding(
                    CUSTOM_OP.id,
                    CUSTOM_OP.default_severity,
                    f"node {name or index!r} runs custom op {op_type!r} from domain "
                    f"{domain!r}: needs a custom operator library to run",
                    where,
                )
            for attribute in node.each(5):
                yield from self.attribute(attribute, f"{where}/{attribute.string(1)}", depth)

    def attribute(self, attribute: _Message, scope: str, depth: int) -> Iterator[Finding]:
        # AttributeProto: name=1, t=5, g=6, tensors=10, graphs=11, sparse_tensor=22,
        # sparse_tensors=23.
        if attribute.has(5):
            yield from self.tensor(attribute.merged(5), scope)
        for index, tensor in enumerate(attribute.each(10)):
            yield from self.tensor(tensor, f"{scope}[{index}]")
        if attribute.has(22):
            yield from self.tensor(attribute.merged(22).merged(1), scope)
        for index, sparse in enumerate(attribute.each(23)):
            yield from self.tensor(sparse.merged(1), f"{scope}[{index}]")
        if attribute.has(6):
            yield from self.graph(attribute.merged(6), scope, depth + 1)
        for index, graph in enumerate(attribute.each(11)):
            yield from self.graph(graph, f"{scope}[{index}]", depth + 1)

    def tensor(self, tensor: _Message, scope: str) -> Iterator[Finding]:
        # TensorProto: name=8, external_data=13 (StringStringEntryProto: key=1,
        # value=2), data_location=14.
        external = tensor.each(13)
        if tensor.integer(14) != _EXTERNAL and not external:
            return
        location = next((e.string(2) for e in external if e.string(1) == "location"), None)
        if location is None:
            return
        problem = _location_problem(location, self._model_dir)
        if problem is not None:
            yield Finding(
                EXTERNAL_ESCAPE.id,
                EXTERNAL_ESCAPE.default_severity,
                f"tensor {tensor.string(8)!r} loads external data from {location!r}: {problem}",
                scope,
            )


def _location_problem(location: str, model_dir: Path | None) -> str | None:
    normal = location.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal):
        return "absolute path"
    depth = 0
    for part in PurePosixPath(normal).parts:
        depth = depth - 1 if part == ".." else depth + (part not in ("", "."))
        if depth < 0:
            return "climbs out of the model directory"
    if model_dir is None:
        return None
    candidate = model_dir / normal
    try:
        root = model_dir.resolve(strict=True)
        target = Path(os.path.realpath(candidate))
    except (OSError, RuntimeError):
        return None
    if (candidate.exists() or candidate.is_symlink()) and not target.is_relative_to(root):
        return f"resolves through a symlink to {target}"
    return None
