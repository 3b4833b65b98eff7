"""Builders for TensorFlow SavedModel samples, written as protobuf bytes by field number.

TensorFlow is not installable here; the field numbers follow
``tensorflow/core/protobuf/saved_model.proto``, ``meta_graph.proto`` and
``framework/{graph,node_def,function,op_def}.proto``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BENIGN_OPS",
    "encode_field",
    "encode_varint",
    "function_def",
    "node_def",
    "saved_model",
    "write_saved_model",
]

#: Ops of an ordinary exported Keras Dense model, including its saver.
BENIGN_OPS = (
    ("serving_default_input", "Placeholder"),
    ("dense/kernel", "VarHandleOp"),
    ("dense/MatMul/ReadVariableOp", "ReadVariableOp"),
    ("dense/MatMul", "MatMul"),
    ("dense/BiasAdd", "BiasAdd"),
    ("dense/Relu", "Relu"),
    ("StatefulPartitionedCall", "StatefulPartitionedCall"),
    ("saver_filename", "Placeholder"),
    ("ShardedFilename", "ShardedFilename"),
    ("SaveV2", "SaveV2"),
    ("RestoreV2", "RestoreV2"),
    ("MergeV2Checkpoints", "MergeV2Checkpoints"),
    ("ReadFile", "Identity"),  # a node merely *named* like a dangerous op
)


def encode_varint(value: int) -> bytes:
    """Protobuf base-128 varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value: int | str | bytes) -> bytes:
    """One field: ints as varints, str/bytes length-delimited."""
    if isinstance(value, int):
        return encode_varint(number << 3) + encode_varint(value)
    data = value.encode() if isinstance(value, str) else value
    return encode_varint(number << 3 | 2) + encode_varint(len(data)) + data


def node_def(name: str, op: str, inputs: Sequence[str] = ()) -> bytes:
    """A NodeDef: name=1, op=2, input=3, device=4."""
    body = encode_field(1, name) + encode_field(2, op)
    for item in inputs:
        body += encode_field(3, item)
    return body + encode_field(4, "/device:CPU:0")


def function_def(name: str, nodes: Sequence[tuple[str, str]]) -> bytes:
    """A FunctionDef: signature (OpDef name=1) = 1, node_def = 3."""
    body = encode_field(1, encode_field(1, name))
    for node_name, op in nodes:
        body += encode_field(3, node_def(node_name, op))
    return body


def saved_model(
    nodes: Sequence[tuple[str, str]] = BENIGN_OPS,
    functions: Sequence[tuple[str, Sequence[tuple[str, str]]]] = (),
    *,
    meta_graphs: int = 1,
    object_graph: bytes = b"",
) -> bytes:
    """A SavedModel: schema_version=1, meta_graphs=2 (MetaGraphDef: meta_info_def=1 with
    tags=4, graph_def=2 (GraphDef: node=1, library=2 (function=1), versions=4))."""
    graph = b"".join(encode_field(1, node_def(n, op)) for n, op in nodes)
    library = b"".join(encode_field(1, function_def(n, f)) for n, f in functions)
    if library:
        graph += encode_field(2, library)
    graph += encode_field(4, encode_field(1, 1882))
    meta = encode_field(1, encode_field(4, "serve")) + encode_field(2, graph)
    if object_graph:
        meta += encode_field(7, object_graph)  # MetaGraphDef.object_graph_def
    return encode_field(1, 1) + encode_field(2, meta) * meta_graphs


def write_saved_model(directory: Path, data: bytes) -> Path:
    """Write ``directory/saved_model.pb`` (plus an empty variables/ dir) and return the .pb."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "variables").mkdir(exist_ok=True)
    path = directory / "saved_model.pb"
    path.write_bytes(data)
    return path


def keras_metadata(nodes: Sequence[tuple[str, str, dict[str, object]]]) -> bytes:
    """A ``keras_metadata.pb``: SavedMetadata.nodes=1 of SavedObject (node_id=2,
    node_path=3, identifier=4, metadata=5 (JSON), version=6 (VersionDef producer=1))."""
    import json

    out = b""
    for node_id, (path, identifier, metadata) in enumerate(nodes):
        body = (
            encode_field(2, node_id)
            + encode_field(3, path)
            + encode_field(4, identifier)
            + encode_field(5, json.dumps(metadata))
            + encode_field(6, encode_field(1, 2) + encode_field(2, 1))
        )
        out += encode_field(1, body)
    return out


def keras_saved_model_nodes(
    model: dict[str, object],
) -> list[tuple[str, str, dict[str, object]]]:
    """The nodes tf.keras writes for a Sequential ``model`` config: the root (which
    repeats the architecture as ``model_config``) then one node per layer."""
    config = model["config"]
    assert isinstance(config, dict)
    root = {
        "name": config["name"],
        "trainable": True,
        "expects_training_arg": True,
        "dtype": "float32",
        "batch_input_shape": None,
        "class_name": model["class_name"],
        "config": config,
        "shared_object_id": 0,
        "build_input_shape": {"class_name": "TensorShape", "items": [None, 4]},
        "is_graph_network": True,
        "save_spec": {"class_name": "TypeSpec", "type_spec": "tf.TensorSpec"},
        "keras_version": "2.15.0",
        "backend": "tensorflow",
        "model_config": model,
    }
    nodes: list[tuple[str, str, dict[str, object]]] = [("root", "_tf_keras_sequential", root)]
    for index, layer in enumerate(config["layers"]):
        layer_config = layer["config"]
        metadata = {
            "name": layer_config["name"],
            "trainable": True,
            "dtype": "float32",
            "class_name": layer["class_name"],
            "config": layer_config,
            "input_spec": {"class_name": "InputSpec", "config": {"min_ndim": 2}},
        }
        identifier = "_tf_keras_input_layer" if index == 0 else "_tf_keras_layer"
        nodes.append((f"root.layer-{index}", identifier, metadata))
    return nodes


def keras_object_graph(nodes: Sequence[tuple[str, str, dict[str, object]]]) -> bytes:
    """A SavedObjectGraph as TF 2.0-2.4 wrote it for Keras models: nodes=1 of SavedObject
    with user_object=4 (SavedUserObject: identifier=1, version=2, metadata=3 (JSON))."""
    import json

    out = b""
    for _path, identifier, metadata in nodes:
        user = (
            encode_field(1, identifier)
            + encode_field(2, encode_field(1, 1))
            + encode_field(3, json.dumps(metadata))
        )
        out += encode_field(1, encode_field(4, user))
    # A non-Keras user object (empty metadata) and a variable node are left alone.
    out += encode_field(1, encode_field(4, encode_field(1, "trackable_list_wrapper")))
    out += encode_field(1, encode_field(7, encode_field(6, "dense/kernel")))
    return out
