"""TensorFlow SavedModel (``saved_model.pb``): graph ops that touch files, Python or the network.

The protobuf is read by field number with :mod:`modelseal.formats.protobuf` — TensorFlow
is neither needed nor imported. The walk covers ``SavedModel.meta_graphs[*]`` →
``MetaGraphDef.graph_def`` → ``GraphDef.node[*].op`` and every function of the graph's
``FunctionDefLibrary`` (``FunctionDef.node_def[*].op``), which is where TF2 models keep
almost all of their ops.

Ops are matched against :data:`DANGEROUS_OPS`, a typed table giving each op's rule,
severity and reason. The save/restore ops every SavedModel contains (``SaveV2``,
``RestoreV2``, ``MergeV2Checkpoints``...) and vocabulary-file initialisers
(``InitializeTableFromTextFileV2``) are not listed: they are in nearly every exported
model and read or write only paths the loader supplies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from modelseal.errors import LimitExceededError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry
from modelseal.formats.protobuf import Field, WireType, field_string, message
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity

__all__ = [
    "DANGEROUS_OPS",
    "MAX_SAVEDMODEL_BYTES",
    "GraphOp",
    "OpRisk",
    "SavedModelRule",
    "graph_ops",
]

#: ``saved_model.pb`` files larger than this are refused (protobufs are read in memory;
#: TensorFlow itself cannot parse a message above 2 GiB).
MAX_SAVEDMODEL_BYTES = 1024**3

PYTHON_OP = RuleInfo(
    "MS-TF-PYTHON-OP",
    "TensorFlow graph calls Python",
    "PyFunc-style ops call a Python function of the loading process when the graph "
    "runs: the graph is a vehicle for arbitrary code.",
    Severity.CRITICAL,
)
FILE_WRITE = RuleInfo(
    "MS-TF-FILE-WRITE",
    "TensorFlow graph writes files",
    "The graph writes files at paths it chooses when it runs (e.g. WriteFile): it can "
    "drop code or overwrite configuration on the serving machine.",
    Severity.CRITICAL,
)
FILE_READ = RuleInfo(
    "MS-TF-FILE-READ",
    "TensorFlow graph reads or lists files",
    "The graph reads or lists files on the serving machine when it runs (ReadFile, "
    "MatchingFiles, file readers and datasets): secrets can end up in its outputs.",
    Severity.HIGH,
)
NETWORK = RuleInfo(
    "MS-TF-NETWORK-OP",
    "TensorFlow graph talks to the network",
    "The graph makes RPC calls or streams debug data to a remote address when it runs.",
    Severity.HIGH,
)


@dataclass(frozen=True)
class OpRisk:
    """Why an op is dangerous: the rule it falls under, how bad, and a reason."""

    rule: RuleInfo
    severity: Severity
    reason: str


def _risks(rule: RuleInfo, severity: Severity, reason: str, *ops: str) -> dict[str, OpRisk]:
    return dict.fromkeys(ops, OpRisk(rule, severity, reason))


#: op name -> its risk. Every entry says why; ``test_savedmodel`` checks well-formedness.
DANGEROUS_OPS: Mapping[str, OpRisk] = MappingProxyType(
    {
        **_risks(
            PYTHON_OP,
            Severity.CRITICAL,
            "calls a Python function registered in the loading process",
            "PyFunc",
            "PyFuncStateless",
            "EagerPyFunc",
        ),
        **_risks(
            FILE_WRITE,
            Severity.CRITICAL,
            "writes a file at a path the graph computes",
            "WriteFile",
        ),
        **_risks(
            FILE_WRITE,
            Severity.MEDIUM,
            "writes summaries, datasets or snapshots to a directory the graph names",
            "CreateSummaryFileWriter",
            "CreateSummaryDbWriter",
            "SaveDataset",
            "SaveDatasetV2",
            "ExperimentalSaveDataset",
            "SnapshotDataset",
            "SnapshotDatasetV2",
        ),
        **_risks(
            FILE_READ,
            Severity.HIGH,
            "reads or lists arbitrary files",
            "ReadFile",
            "MatchingFiles",
            "ImmutableConst",
            "WholeFileReader",
            "WholeFileReaderV2",
            "MatchingFilesDataset",
            "ExperimentalMatchingFilesDataset",
        ),
        **_risks(
            FILE_READ,
            Severity.MEDIUM,
            "reads records from files named in the graph (input pipelines, rare in served models)",
            "TextLineReader",
            "TextLineReaderV2",
            "FixedLengthRecordReader",
            "FixedLengthRecordReaderV2",
            "TFRecordReader",
            "TFRecordReaderV2",
            "LMDBReader",
            "TextLineDataset",
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "ExperimentalLMDBDataset",
            "LMDBDataset",
            "LoadDataset",
        ),
        **_risks(
            NETWORK,
            Severity.HIGH,
            "makes remote procedure calls",
            "Rpc",
            "TryRpc",
            "RpcCall",
            "RpcClient",
            "RpcServer",
            "RpcServerStart",
            "RpcServerRegister",
        ),
        **_risks(
            NETWORK,
            Severity.MEDIUM,
            "streams tensors to debug URLs (file:// or grpc://)",
            "DebugIdentity",
            "DebugIdentityV2",
            "DebugIdentityV3",
            "DebugNanCount",
            "DebugNumericSummary",
            "DebugNumericSummaryV2",
        ),
    }
)


@dataclass(frozen=True)
class GraphOp:
    """One node of a SavedModel graph or of a function in its library."""

    op: str
    node: str
    #: ``meta_graphs[i]/graph`` or ``meta_graphs[i]/function/<name>``.
    scope: str


class SavedModelRule(Rule):
    """Flags file, Python and network ops in ``saved_model.pb`` graphs."""

    formats = frozenset({Format.TF_SAVEDMODEL})
    infos = (PYTHON_OP, FILE_WRITE, FILE_READ, NETWORK)

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Yield one finding per dangerous op, naming the node and the graph or function."""
        if entry.size > MAX_SAVEDMODEL_BYTES:
            raise LimitExceededError(
                f"{entry.path}: {entry.size:,}-byte saved_model.pb exceeds the "
                f"{MAX_SAVEDMODEL_BYTES:,}-byte limit",
                advice="a real SavedModel keeps weights in variables/, not in the graph",
            )
        with entry.open() as stream:
            data = stream.read(MAX_SAVEDMODEL_BYTES + 1)
        if len(data) > MAX_SAVEDMODEL_BYTES:
            raise LimitExceededError(f"{entry.path}: saved_model.pb exceeds the size limit")
        for use in graph_ops(data):
            risk = DANGEROUS_OPS.get(use.op)
            if risk is None:
                continue
            yield Finding(
                risk.rule.id,
                risk.severity,
                f"op {use.op} ({risk.reason}) in node {use.node!r}",
                f"{use.scope}/node/{use.node}",
            )


def graph_ops(data: bytes | memoryview) -> Iterator[GraphOp]:
    """Every node's op in a serialized ``SavedModel`` (raises ``ProtobufError`` if malformed)."""
    meta_index = 0
    for field in message(data, 0):
        if field.number == 2 and field.wire_type == WireType.LENGTH_DELIMITED:
            yield from _meta_graph_ops(field, f"meta_graphs[{meta_index}]")
            meta_index += 1


def _meta_graph_ops(meta: Field, scope: str) -> Iterator[GraphOp]:
    for field in message(meta.data, 1):
        if field.number == 2 and field.wire_type == WireType.LENGTH_DELIMITED:  # graph_def
            for item in message(field.data, 2):
                if item.wire_type != WireType.LENGTH_DELIMITED:
                    continue
                if item.number == 1:  # node
                    yield _node_op(item, f"{scope}/graph", 3)
                elif item.number == 2:  # library
                    yield from _library_ops(item, scope)


def _library_ops(library: Field, scope: str) -> Iterator[GraphOp]:
    for function in message(library.data, 3):
        if function.number != 1 or function.wire_type != WireType.LENGTH_DELIMITED:
            continue
        name = "?"
        nodes: list[Field] = []
        for item in message(function.data, 4):
            if item.wire_type != WireType.LENGTH_DELIMITED:
                continue
            if item.number == 1:  # signature: OpDef, whose field 1 is the name
                for sig in message(item.data, 5):
                    if sig.number == 1 and sig.wire_type == WireType.LENGTH_DELIMITED:
                        name = field_string(sig)
            elif item.number == 3:  # node_def
                nodes.append(item)
        for node in nodes:
            yield _node_op(node, f"{scope}/function/{name}", 5)


def _node_op(node: Field, scope: str, depth: int) -> GraphOp:
    name = op = ""
    for field in message(node.data, depth):
        if field.wire_type != WireType.LENGTH_DELIMITED:
            continue
        if field.number == 1:
            name = field_string(field)
        elif field.number == 2:
            op = field_string(field, limit=256)
    return GraphOp(op, name, scope)
