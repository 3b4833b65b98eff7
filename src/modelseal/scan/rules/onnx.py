"""ONNX: external data that leaves the model directory, custom operator domains, nested graphs.

The model is parsed with the ``onnx`` package (imported lazily) **without** loading
external data, so a hostile ``location`` is only read as a string here, never opened.
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
from typing import Any

from modelseal.errors import FormatError, LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
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
        model = _load(entry)
        model_dir = _model_dir(entry)
        local_functions = {(f.domain, f.name) for f in model.functions}
        walker = _Walker(model_dir, local_functions)
        yield from walker.graph(model.graph, "graph", 0)
        for function in model.functions:
            scope = f"function/{function.domain}.{function.name}"
            yield from walker.nodes(function.node, scope, 1)
        for index, info in enumerate(model.training_info):
            yield from walker.graph(info.initialization, f"training_info[{index}]/init", 1)
            yield from walker.graph(info.algorithm, f"training_info[{index}]/algorithm", 1)


def _load(entry: Entry) -> Any:
    import onnx  # heavy: imported only when an ONNX file is scanned
    from google.protobuf.message import DecodeError

    if entry.size > MAX_ONNX_BYTES:
        raise LimitExceededError(
            f"{entry.path}: {entry.size:,}-byte ONNX file exceeds the {MAX_ONNX_BYTES:,}-byte "
            "protobuf limit",
            advice="store large weights as ONNX external data",
        )
    try:
        with entry.open() as stream:
            data = stream.read(MAX_ONNX_BYTES + 1)
        if len(data) > MAX_ONNX_BYTES:
            raise LimitExceededError(f"{entry.path}: ONNX file exceeds the size limit")
        # Bytes, not a path: onnx.load would guess a text format from the extension.
        return onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise FormatError(
            f"{entry.path}: not a readable ONNX model ({exc})",
            advice="the protobuf is damaged or truncated; it was not scanned",
        ) from exc


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

    def graph(self, graph: Any, scope: str, depth: int) -> Iterator[Finding]:
        if depth > MAX_GRAPH_DEPTH:
            raise FormatError(f"subgraphs nested deeper than {MAX_GRAPH_DEPTH} levels at {scope}")
        for tensor in graph.initializer:
            yield from self.tensor(tensor, f"{scope}/initializer/{tensor.name}")
        for sparse in graph.sparse_initializer:
            name = sparse.values.name
            yield from self.tensor(sparse.values, f"{scope}/sparse_initializer/{name}")
            yield from self.tensor(sparse.indices, f"{scope}/sparse_initializer/{name}/indices")
        yield from self.nodes(graph.node, scope, depth)

    def nodes(self, nodes: Any, scope: str, depth: int) -> Iterator[Finding]:
        for index, node in enumerate(nodes):
            where = f"{scope}/node[{index}]({node.name or node.op_type})"
            if node.domain not in STANDARD_DOMAINS and (node.domain, node.op_type) not in (
                self._local
            ):
                yield Finding(
                    CUSTOM_OP.id,
                    CUSTOM_OP.default_severity,
                    f"node {node.name or index!r} runs custom op {node.op_type!r} from domain "
                    f"{node.domain!r}: needs a custom operator library to run",
                    where,
                )
            for attribute in node.attribute:
                yield from self.attribute(attribute, f"{where}/{attribute.name}", depth)

    def attribute(self, attribute: Any, scope: str, depth: int) -> Iterator[Finding]:
        if attribute.HasField("t"):
            yield from self.tensor(attribute.t, scope)
        for index, tensor in enumerate(attribute.tensors):
            yield from self.tensor(tensor, f"{scope}[{index}]")
        if attribute.HasField("sparse_tensor"):
            yield from self.tensor(attribute.sparse_tensor.values, scope)
        for index, sparse in enumerate(attribute.sparse_tensors):
            yield from self.tensor(sparse.values, f"{scope}[{index}]")
        if attribute.HasField("g"):
            yield from self.graph(attribute.g, scope, depth + 1)
        for index, graph in enumerate(attribute.graphs):
            yield from self.graph(graph, f"{scope}[{index}]", depth + 1)

    def tensor(self, tensor: Any, scope: str) -> Iterator[Finding]:
        if tensor.data_location != _EXTERNAL and not len(tensor.external_data):
            return
        location = next((e.value for e in tensor.external_data if e.key == "location"), None)
        if location is None:
            return
        problem = _location_problem(location, self._model_dir)
        if problem is not None:
            yield Finding(
                EXTERNAL_ESCAPE.id,
                EXTERNAL_ESCAPE.default_severity,
                f"tensor {tensor.name!r} loads external data from {location!r}: {problem}",
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
