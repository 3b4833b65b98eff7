"""Gather what a model is made of, offline, from its files alone.

:func:`collect` walks the inventory once and returns one :class:`ModelFacts` tree:
every file with its hashes and role, the model card's front matter, the
``config.json`` facts, tokenizer and generation settings, tensor counts and
dtypes read from headers, format metadata (safetensors ``__metadata__``, GGUF
``general.*``, ONNX producer/opset, Keras config), base models, datasets,
evaluation metrics and the Python packages the model needs.

Nothing here executes or unpickles input. A file that cannot be read, a card
whose front matter is malformed, a license that is not known, a config.json that
is too large: each becomes a warning in :attr:`ModelFacts.warnings` and the rest
is still collected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from modelseal.errors import FormatError, ModelsealError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, Limits, expand, walk_files
from modelseal.sbom.licenses import LicenseInfo, normalize_license

__all__ = [
    "BaseModelRef",
    "CardFacts",
    "DatasetRef",
    "FileFacts",
    "MetricFacts",
    "ModelFacts",
    "PackageRef",
    "TokenizerFacts",
    "collect",
]

#: config.json-like files larger than this are not parsed (a warning says so).
MAX_JSON_BYTES = 16 * 1024**2
#: tokenizer.json files can be large (big vocabularies); this is their own limit.
MAX_TOKENIZER_BYTES = 64 * 1024**2
#: The model card front matter read at most (the README itself may be longer).
MAX_FRONT_MATTER_BYTES = 256 * 1024
#: How much of a README is read to find the front matter and card sections.
MAX_README_BYTES = 1024**2
_MAX_SECTION_CHARS = 2000
#: Tensor names recorded per weight file (a full list for all but the largest models).
MAX_TENSOR_NAMES = 4096
_CHUNK = 1024 * 1024

_WEIGHT_FORMATS = frozenset(
    {
        Format.SAFETENSORS,
        Format.GGUF,
        Format.ONNX,
        Format.PYTORCH_ZIP,
        Format.PYTORCH_LEGACY,
        Format.PYTORCH_LEGACY_TAR,
        Format.TORCHSCRIPT,
        Format.PICKLE,
        Format.JOBLIB,
        Format.NUMPY,
        Format.NUMPY_NPZ,
        Format.KERAS,
        Format.HDF5,
        Format.TF_SAVEDMODEL,
    }
)
_WEIGHT_SUFFIXES = frozenset(
    {".onnx", ".safetensors", ".gguf", ".pt", ".pth", ".ckpt", ".h5", ".keras", ".pb", ".pkl"}
)
_TOKENIZER_NAMES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "tokenizer.model",
        "spiece.model",
        "sentencepiece.bpe.model",
    }
)
_REQUIREMENTS = re.compile(r"^requirements([-_.][\w.-]*)?\.(txt|in)$", re.IGNORECASE)
_HF_CACHE = re.compile(r"(?:^|/)models--([^/]+)--([^/]+)/snapshots/([0-9a-f]{6,64})(?:/|$)")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_GENERATION_KEYS = (
    "max_length",
    "max_new_tokens",
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "num_beams",
    "repetition_penalty",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)
_HYPERPARAMETER_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "max_position_embeddings",
    "vocab_size",
    "hidden_act",
    "rope_theta",
    "sliding_window",
    "num_local_experts",
    "num_experts_per_tok",
)
# Card section headings -> CycloneDX considerations field.
_SECTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"intended\s+use|use\s+cases?|uses\b", re.I), "use_cases"),
    (re.compile(r"limitation", re.I), "limitations"),
    (re.compile(r"bias|risk|ethic|fairness", re.I), "ethical"),
    (re.compile(r"training\s+(data|procedure)|background|fine-?tuning", re.I), "training"),
)


@dataclass(frozen=True)
class FileFacts:
    """One file of the model."""

    #: Path relative to the model root, POSIX separators (the file name for a single file).
    path: str
    #: The display path of the inventory entry (matches scan results).
    display: str
    format: str
    size: int
    #: weights | config | tokenizer | code | requirements | card | other
    role: str
    sha256: str | None = None
    sha512: str | None = None
    tensor_count: int | None = None
    parameter_count: int | None = None
    dtypes: tuple[str, ...] = ()
    #: Tensor names in file order (at most ``MAX_TENSOR_NAMES``).
    tensor_names: tuple[str, ...] = ()
    #: Format metadata: safetensors ``__metadata__``, ONNX producer, GGUF keys...
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetRef:
    """A dataset the model was trained or evaluated on."""

    name: str
    #: training | evaluation | training,evaluation
    usage: str = "training"
    #: card | model-index | gguf
    source: str = "card"


@dataclass(frozen=True)
class BaseModelRef:
    """A model this one was derived from."""

    name: str
    #: finetune | adapter | quantized | merge | unknown
    relation: str = "unknown"
    #: Where the reference was found (``card base_model``, ``gguf``, ``config.json``).
    source: str = "card"


@dataclass(frozen=True)
class MetricFacts:
    """One evaluation result from the card's ``model-index``."""

    type: str
    value: str
    name: str | None = None
    task: str | None = None
    dataset: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class PackageRef:
    """A Python package the model needs to load or run."""

    name: str
    version: str | None = None
    #: The version constraint as written (``>=4.30``), when not an exact pin.
    specifier: str | None = None
    #: Where the requirement was found.
    source: str = ""

    @property
    def purl(self) -> str:
        """The package URL (``pkg:pypi/name@version``)."""
        name = re.sub(r"[-_.]+", "-", self.name).lower()
        return f"pkg:pypi/{name}@{self.version}" if self.version else f"pkg:pypi/{name}"


@dataclass(frozen=True)
class CardFacts:
    """What the model card (README.md) says."""

    present: bool = False
    title: str | None = None
    languages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library_name: str | None = None
    use_cases: tuple[str, ...] = ()
    limitations: tuple[str, ...] = ()
    ethical: tuple[str, ...] = ()
    training: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenizerFacts:
    """The tokenizer shipped with the model."""

    files: tuple[str, ...] = ()
    tokenizer_class: str | None = None
    #: The tokenizer.json model type (BPE, WordPiece, Unigram...).
    model_type: str | None = None
    model_max_length: int | None = None
    has_chat_template: bool = False


@dataclass(frozen=True)
class ModelFacts:
    """Everything collected about one model (a directory or a single file)."""

    name: str
    root: str
    files: tuple[FileFacts, ...]
    #: Hugging Face repo id (``org/name``) when known; ``revision`` is the commit.
    repo_id: str | None = None
    revision: str | None = None
    card: CardFacts = CardFacts()
    licenses: tuple[LicenseInfo, ...] = ()
    architectures: tuple[str, ...] = ()
    model_type: str | None = None
    torch_dtype: str | None = None
    transformers_version: str | None = None
    auto_map: Mapping[str, str] = field(default_factory=dict)
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    generation: Mapping[str, str] = field(default_factory=dict)
    tokenizer: TokenizerFacts = TokenizerFacts()
    parameter_count: int | None = None
    dtypes: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    gguf: Mapping[str, str] = field(default_factory=dict)
    onnx: Mapping[str, str] = field(default_factory=dict)
    keras: Mapping[str, str] = field(default_factory=dict)
    datasets: tuple[DatasetRef, ...] = ()
    base_models: tuple[BaseModelRef, ...] = ()
    metrics: tuple[MetricFacts, ...] = ()
    packages: tuple[PackageRef, ...] = ()
    custom_code: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def task(self) -> str | None:
        """The task (pipeline tag, else the first model-index task)."""
        if self.card.pipeline_tag:
            return self.card.pipeline_tag
        return next((m.task for m in self.metrics if m.task), None)

    @property
    def purl(self) -> str | None:
        """``pkg:huggingface/org/name@revision`` when the repo id is known."""
        if not self.repo_id:
            return None
        org, _, name = self.repo_id.partition("/")
        purl = f"pkg:huggingface/{org}/{name}"
        return f"{purl}@{self.revision}" if self.revision else purl


#: Called after each file with (files done, files in total, path).
ProgressCallback = Callable[[int, int, str], None]


class _Collector:
    """Mutable state of one collection (the result is frozen at the end)."""

    def __init__(self, root: Path, sha512: bool, known_sha256: Mapping[str, str]) -> None:
        self.root = root
        self.sha512 = sha512
        self.known_sha256 = known_sha256
        self.warnings: list[str] = []
        self.files: list[FileFacts] = []
        self.card = CardFacts()
        self.card_yaml: dict[str, Any] = {}
        self.config: dict[str, Any] = {}
        self.generation: dict[str, str] = {}
        self.tokenizer: dict[str, Any] = {"files": []}
        self.gguf: dict[str, str] = {}
        self.onnx: dict[str, str] = {}
        self.keras: dict[str, str] = {}
        self.packages: list[PackageRef] = []
        self.custom_code: list[str] = []
        self.st_versions: dict[str, str] = {}
        self.adapter_base: str | None = None

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def collect(
    path: str | os.PathLike[str],
    *,
    sha512: bool = False,
    repo_id: str | None = None,
    progress: ProgressCallback | None = None,
    known_sha256: Mapping[str, str] | None = None,
) -> ModelFacts:
    """Collect the facts of the model at ``path`` (a directory or one file).

    ``repo_id`` names the Hugging Face repository when it cannot be read from the
    path (a Hugging Face cache snapshot path names it). ``known_sha256`` maps
    relative paths to digests the caller has already verified (the registry has),
    so those files are not hashed again. Raises
    :class:`~modelseal.errors.UsageError` only when ``path`` does not exist.
    """
    root = Path(path)
    state = _Collector(root, sha512, known_sha256 or {})
    entries = list(walk_files(root))
    for done, entry in enumerate(entries, start=1):
        state.files.append(_file_facts(entry, state))
        if progress is not None:
            progress(done, len(entries), entry.path)
    return _finish(state, repo_id)


def _relative(entry: Entry, root: Path) -> str:
    if root.is_dir() and entry.fs_path is not None:
        try:
            return Path(entry.path).relative_to(root).as_posix()
        except ValueError:
            pass
    return PurePosixPath(entry.path.replace("\\", "/")).name


def _file_facts(entry: Entry, state: _Collector) -> FileFacts:
    rel = _relative(entry, state.root)
    name = entry.name
    lowered = name.lower()
    sha256 = sha512 = None
    if entry.problem:
        state.warn(f"{rel}: {entry.problem}")
    else:
        try:
            known = state.known_sha256.get(rel)
            sha256, sha512 = (
                (known, None) if known and not state.sha512 else _hash(entry, state.sha512)
            )
        except (OSError, ModelsealError) as exc:
            state.warn(f"{rel}: cannot hash ({exc})")
    role = "other"
    suffix = PurePosixPath(lowered).suffix
    if entry.format is Format.UNKNOWN and suffix in _WEIGHT_SUFFIXES and not entry.problem:
        state.warn(f"{rel}: named like a {suffix} weight file but its content is not recognised")
    tensor_count = parameter_count = None
    dtypes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    metadata: dict[str, str] = {}
    if entry.format in _WEIGHT_FORMATS:
        role = "weights"
        tensor_count, parameter_count, dtypes, names = _tensors(entry, rel, state)
        metadata = _format_metadata(entry, rel, state)
    elif lowered == "readme.md":
        role = "card"
        _read_card(entry, rel, state)
    elif lowered in _TOKENIZER_NAMES:
        role = "tokenizer"
        _read_tokenizer(entry, rel, state)
    elif _REQUIREMENTS.match(name):
        role = "requirements"
        _read_requirements(entry, rel, state)
    elif entry.format is Format.PYTHON or lowered.endswith(".py"):
        role = "code"
        state.custom_code.append(rel)
    elif lowered.endswith(".json") or entry.format is Format.JSON:
        role = "config"
        _read_json_config(entry, rel, state)
    return FileFacts(
        path=rel,
        display=entry.path,
        format=entry.format.value,
        size=entry.size,
        role=role,
        sha256=sha256,
        sha512=sha512,
        tensor_count=tensor_count,
        parameter_count=parameter_count,
        dtypes=dtypes,
        tensor_names=names,
        metadata=metadata,
    )


def _hash(entry: Entry, with_sha512: bool) -> tuple[str, str | None]:
    h256 = hashlib.sha256()
    h512 = hashlib.sha512() if with_sha512 else None
    with entry.open() as stream:
        while chunk := stream.read(_CHUNK):
            h256.update(chunk)
            if h512 is not None:
                h512.update(chunk)
    return h256.hexdigest(), h512.hexdigest() if h512 is not None else None


def _tensors(
    entry: Entry, rel: str, state: _Collector
) -> tuple[int | None, int | None, tuple[str, ...], tuple[str, ...]]:
    from modelseal.formats.readers import reader_for

    try:
        if reader_for(entry.format) is None:
            return None, None, (), ()
    except ImportError:
        state.warn(f"{rel}: parameter count unknown (no {entry.format.value} tensor reader)")
        return None, None, (), ()
    from modelseal.formats.tensors import describe_tensors

    try:
        tensors = describe_tensors(entry)
    except ModelsealError as exc:
        state.warn(f"{rel}: tensor headers unreadable ({exc.message})")
        return None, None, (), ()
    except Exception as exc:  # a reader bug on hostile input must not stop the SBOM
        state.warn(f"{rel}: tensor headers unreadable ({exc!r})")
        return None, None, (), ()
    dtypes = tuple(sorted({t.dtype for t in tensors}))
    names = tuple(t.name for t in tensors[:MAX_TENSOR_NAMES])
    return len(tensors), sum(t.numel for t in tensors), dtypes, names


def _format_metadata(entry: Entry, rel: str, state: _Collector) -> dict[str, str]:
    try:
        if entry.format is Format.SAFETENSORS:
            from modelseal.formats.safetensors import read_header

            return dict(read_header(entry).metadata)
        if entry.format is Format.GGUF:
            return _gguf_metadata(entry, rel, state)
        if entry.format is Format.ONNX:
            return _onnx_metadata(entry, rel, state)
        if entry.format in (Format.KERAS, Format.HDF5):
            return _keras_metadata(entry, rel, state)
    except ModelsealError as exc:
        state.warn(f"{rel}: metadata unreadable ({exc.message})")
    except Exception as exc:  # third-party parsers on hostile input
        state.warn(f"{rel}: metadata unreadable ({exc!r})")
    return {}


def _scalar(value: Any, limit: int = 512) -> str:
    if isinstance(value, (list, tuple)):
        text = ", ".join(_scalar(v, 64) for v in value[:32])
        if len(value) > 32:
            text += f", ... ({len(value)} items)"
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _gguf_metadata(entry: Entry, rel: str, state: _Collector) -> dict[str, str]:
    try:
        from modelseal.formats.gguf import read_gguf
    except ImportError:
        state.warn(f"{rel}: GGUF metadata not read (modelseal.formats.gguf is not available)")
        return {}
    header = read_gguf(entry)
    values = {
        str(k): _scalar(v)
        for k, v in header.metadata.items()
        if str(k).startswith("general.") and str(k) != "general.alignment"
    }
    file_type = header.metadata.get("general.file_type")
    if isinstance(file_type, int) and not isinstance(file_type, bool):
        values["general.file_type.name"] = _gguf_file_type(file_type)
    quantized = sorted({t.dtype for t in _safe_tensors(entry)} - _PLAIN_DTYPES)
    if quantized:
        values["quantization"] = ", ".join(quantized)
    values["version"] = str(header.version)
    state.gguf.update(values)
    return values


_PLAIN_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64", "int8", "int16", "int32"})


def _safe_tensors(entry: Entry) -> list[Any]:
    from modelseal.formats.tensors import describe_tensors

    try:
        return list(describe_tensors(entry))
    except (ModelsealError, ImportError):
        return []


def _gguf_file_type(value: int) -> str:
    try:
        from gguf import LlamaFileType

        return str(LlamaFileType(value).name).removeprefix("MOSTLY_")
    except (ImportError, ValueError):
        return str(value)


def _onnx_metadata(entry: Entry, rel: str, state: _Collector) -> dict[str, str]:
    """ModelProto's top-level fields, read with our protobuf walker: the graph (nearly all
    of the file) is skipped as one length-delimited field, nothing is loaded into memory
    and ``onnx`` is not imported (``onnx.load`` would parse the whole graph, unbounded)."""
    if entry.fs_path is None:
        return {}
    from modelseal.formats.protobuf import ProtobufError, WireType, field_string, iter_fields

    strings = {2: "producer_name", 3: "producer_version", 4: "domain"}
    ints = {1: "ir_version", 5: "model_version"}
    values: dict[str, str] = {}
    opsets: list[str] = []
    props: list[tuple[str, str]] = []
    with open(entry.fs_path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise FormatError("empty ONNX file")
        while handle.tell() < size:
            number, wire = divmod(_file_varint(handle), 8)
            if wire == WireType.VARINT:
                number_value = _file_varint(handle)
                if number in ints:
                    values[ints[number]] = str(number_value) if number_value else ""
                continue
            if wire != WireType.LENGTH_DELIMITED:
                raise ProtobufError(f"unexpected wire type {wire} at the top of an ONNX model")
            length = _file_varint(handle)
            if length > size - handle.tell():
                raise ProtobufError(f"field {number} runs past the end of the file")
            if number not in (*strings, 8, 14) or length > _MAX_ONNX_FIELD:
                handle.seek(length, os.SEEK_CUR)  # the graph, doc strings, functions...
                continue
            payload = handle.read(length)
            if number in strings:
                values[strings[number]] = payload[:2048].decode("utf-8", "replace")[:512]
            elif number == 8 and len(opsets) < 64:  # opset_import
                domain, opset_version = "", 0
                for inner in iter_fields(payload):
                    if inner.number == 1 and inner.wire_type == WireType.LENGTH_DELIMITED:
                        domain = field_string(inner, limit=128)
                    elif inner.number == 2 and inner.wire_type == WireType.VARINT:
                        opset_version = int(inner.value)
                opsets.append(f"{domain or 'ai.onnx'}:{opset_version}")
            elif number == 14 and len(props) < 64:  # metadata_props
                key = value = ""
                for inner in iter_fields(payload):
                    if inner.wire_type == WireType.LENGTH_DELIMITED and inner.number == 1:
                        key = field_string(inner, limit=128)
                    elif inner.wire_type == WireType.LENGTH_DELIMITED and inner.number == 2:
                        value = field_string(inner, limit=512)
                props.append((key, value))
    values["opset"] = ", ".join(opsets)
    for key, value in props:
        values[f"metadata.{key}"] = _scalar(value)
    values = {k: v for k, v in values.items() if v}
    state.onnx.update(values)
    producer_name = values.get("producer_name", "")
    if producer_name:
        producer = {"pytorch": "torch", "tf2onnx": "tf2onnx", "skl2onnx": "skl2onnx"}.get(
            producer_name.lower()
        )
        if producer:
            version = values.get("producer_version") or None
            state.packages.append(PackageRef(producer, version, source=f"{rel} producer"))
    return values


#: Top-level ONNX fields we read (names, opsets, metadata) are small; larger ones are skipped.
_MAX_ONNX_FIELD = 1 << 20


def _file_varint(handle: BinaryIO) -> int:
    """A protobuf varint read from a file (raises ProtobufError when truncated)."""
    from modelseal.formats.protobuf import ProtobufError

    value = 0
    for shift in range(0, 70, 7):
        byte = handle.read(1)
        if not byte:
            raise ProtobufError("truncated varint")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
    raise ProtobufError("varint longer than 10 bytes")


def _keras_metadata(entry: Entry, rel: str, state: _Collector) -> dict[str, str]:
    values: dict[str, str] = {}
    if entry.format is Format.KERAS:
        for member in expand(entry, Limits(max_depth=1)):
            if member.name in ("config.json", "metadata.json") and member.depth == 1:
                data = _load_json(member, f"{rel}!{member.name}", state, MAX_JSON_BYTES)
                if not isinstance(data, dict):
                    continue
                if member.name == "metadata.json":
                    for key in ("keras_version", "date_saved"):
                        if key in data:
                            values[key] = _scalar(data[key])
                else:
                    values["class_name"] = _scalar(data.get("class_name", ""))
                    inner = data.get("config")
                    if isinstance(inner, dict) and "name" in inner:
                        values["name"] = _scalar(inner["name"])
    elif entry.fs_path is not None:
        import h5py

        with h5py.File(entry.fs_path, "r") as handle:
            for key in ("keras_version", "backend"):
                if key in handle.attrs:
                    values[key] = _scalar(handle.attrs[key])
            if "model_config" in handle.attrs:
                raw = handle.attrs["model_config"]
                raw = raw.decode() if isinstance(raw, bytes) else str(raw)
                try:
                    config = json.loads(raw[:MAX_JSON_BYTES])
                except (ValueError, RecursionError):
                    config = None
                if isinstance(config, dict):
                    values["class_name"] = _scalar(config.get("class_name", ""))
    values = {k: v for k, v in values.items() if v}
    state.keras.update(values)
    if "keras_version" in values:
        state.packages.append(PackageRef("keras", values["keras_version"], source=rel))
    return values


def _read_bounded(entry: Entry, limit: int) -> bytes | None:
    with entry.open() as stream:
        data = stream.read(limit + 1)
    return None if len(data) > limit else data


def _load_json(entry: Entry, rel: str, state: _Collector, limit: int) -> Any:
    """Parse a JSON file; None (and a warning) if it is too large or invalid."""
    if entry.size > limit:
        state.warn(f"{rel}: {entry.size:,} bytes is over the {limit:,}-byte limit; not parsed")
        return None
    try:
        data = _read_bounded(entry, limit)
        if data is None:
            state.warn(f"{rel}: over the {limit:,}-byte limit; not parsed")
            return None
        return json.loads(data.decode("utf-8"))
    except (OSError, FormatError) as exc:
        state.warn(f"{rel}: cannot read ({exc})")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        state.warn(f"{rel}: invalid JSON ({exc.__class__.__name__}: {str(exc)[:120]})")
    return None


def _read_json_config(entry: Entry, rel: str, state: _Collector) -> None:
    name = entry.name.lower()
    if name not in (
        "config.json",
        "generation_config.json",
        "config_sentence_transformers.json",
        "adapter_config.json",
    ):
        return
    data = _load_json(entry, rel, state, MAX_JSON_BYTES)
    if data is None:
        return
    if not isinstance(data, dict):
        state.warn(f"{rel}: expected a JSON object, found {type(data).__name__}")
        return
    depth = rel.count("/")
    if name == "config.json" and (depth == 0 or not state.config):
        if depth == 0 or "architectures" in data or "model_type" in data:
            state.config = data
    elif name == "generation_config.json":
        state.generation = {
            k: _scalar(data[k]) for k in _GENERATION_KEYS if k in data and data[k] is not None
        }
    elif name == "config_sentence_transformers.json":
        versions = data.get("__version__")
        if isinstance(versions, dict):
            state.st_versions = {str(k): _scalar(v, 64) for k, v in versions.items()}
    elif name == "adapter_config.json":
        base = data.get("base_model_name_or_path")
        if isinstance(base, str) and base:
            state.adapter_base = base
        peft = data.get("peft_type")
        if isinstance(peft, str):
            state.packages.append(PackageRef("peft", None, source=f"{rel} ({peft})"))


def _read_tokenizer(entry: Entry, rel: str, state: _Collector) -> None:
    state.tokenizer["files"].append(rel)
    name = entry.name.lower()
    if name == "tokenizer_config.json":
        data = _load_json(entry, rel, state, MAX_JSON_BYTES)
        if isinstance(data, dict):
            if isinstance(data.get("tokenizer_class"), str):
                state.tokenizer["tokenizer_class"] = data["tokenizer_class"]
            if isinstance(data.get("model_max_length"), int) and data["model_max_length"] < 2**40:
                state.tokenizer["model_max_length"] = data["model_max_length"]
            if data.get("chat_template"):
                state.tokenizer["has_chat_template"] = True
    elif name == "tokenizer.json":
        data = _load_json(entry, rel, state, MAX_TOKENIZER_BYTES)
        if isinstance(data, dict) and isinstance(data.get("model"), dict):
            kind = data["model"].get("type")
            if isinstance(kind, str):
                state.tokenizer["model_type"] = kind


def _read_requirements(entry: Entry, rel: str, state: _Collector) -> None:
    from packaging.requirements import InvalidRequirement, Requirement

    data = _read_bounded(entry, MAX_JSON_BYTES) if entry.size <= MAX_JSON_BYTES else None
    if data is None:
        state.warn(f"{rel}: requirements file too large; not parsed")
        return
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement:
            state.warn(f"{rel}:{number}: not a requirement: {text[:80]!r}")
            continue
        pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
        version = pins[0] if len(pins) == 1 and "*" not in pins[0] else None
        specifier = str(req.specifier) or None
        state.packages.append(
            PackageRef(req.name, version, None if version else specifier, source=rel)
        )


# --- model card -------------------------------------------------------------------------


def _no_alias_loader() -> Any:
    """A yaml SafeLoader subclass that refuses anchors/aliases (no expansion bombs)."""
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "aliases are not allowed in a model card", event.start_mark
                )
            return super().compose_node(parent, index)

    return Loader


def _read_card(entry: Entry, rel: str, state: _Collector) -> None:
    if state.card.present and rel.count("/") > 0:
        return  # a README in a sub-folder does not override the root card
    try:
        with entry.open() as stream:
            raw = stream.read(MAX_README_BYTES)
    except (OSError, FormatError) as exc:
        state.warn(f"{rel}: cannot read ({exc})")
        return
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    front, body = _split_front_matter(text, rel, state)
    card = front if isinstance(front, dict) else {}
    if front is not None and not isinstance(front, dict):
        state.warn(f"{rel}: front matter is not a mapping; ignored")
    state.card_yaml.update(card)
    sections = _card_sections(body)
    title_match = re.search(r"^#\s+(.+?)\s*#*\s*$", body, re.M)
    state.card = CardFacts(
        present=True,
        title=title_match.group(1).strip()[:200] if title_match else None,
        languages=_card_strings(card, "language", state),
        tags=_card_strings(card, "tags", state),
        pipeline_tag=_string(card.get("pipeline_tag")),
        library_name=_string(card.get("library_name")),
        use_cases=tuple(sections.get("use_cases", ())),
        limitations=tuple(sections.get("limitations", ())),
        ethical=tuple(sections.get("ethical", ())),
        training=tuple(sections.get("training", ())),
    )


def _split_front_matter(text: str, rel: str, state: _Collector) -> tuple[Any, str]:
    if not text.startswith("---"):
        return None, text
    end = re.search(r"^(---|\.\.\.)\s*$", text[3:], re.M)
    if end is None:
        state.warn(f"{rel}: front matter is not closed with '---'; ignored")
        return None, text
    block = text[3 : 3 + end.start()]
    body = text[3 + end.end() :]
    if len(block.encode()) > MAX_FRONT_MATTER_BYTES:
        state.warn(f"{rel}: front matter over {MAX_FRONT_MATTER_BYTES:,} bytes; ignored")
        return None, body
    import yaml

    try:
        return yaml.load(block, Loader=_no_alias_loader()), body  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        state.warn(f"{rel}: malformed front matter ({str(exc).splitlines()[0][:120]}); ignored")
        return None, body
    except RecursionError:
        state.warn(f"{rel}: front matter nested too deeply; ignored")
        return None, body


def _card_sections(body: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    parts = re.split(r"^(#{1,4})\s+(.+)$", body, flags=re.M)
    # parts: [before, hashes, heading, text, hashes, heading, text, ...]
    for index in range(1, len(parts) - 2, 3):
        heading, content = parts[index + 1], parts[index + 2]
        for pattern, key in _SECTIONS:
            if pattern.search(heading):
                paragraph = _first_paragraph(content)
                if paragraph and len(found.get(key, [])) < 4:
                    found.setdefault(key, []).append(paragraph)
                break
    return found


def _first_paragraph(content: str) -> str:
    text = re.sub(r"```.*?```", "", content, flags=re.S)
    for block in re.split(r"\n\s*\n", text):
        cleaned = " ".join(block.split())
        if cleaned and not cleaned.startswith(("|", "<")):
            return cleaned[:_MAX_SECTION_CHARS]
    return ""


def _string(value: Any) -> str | None:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value).strip()
        return text[:512] or None
    return None


def _card_strings(card: Mapping[str, Any], key: str, state: _Collector) -> tuple[str, ...]:
    """A card field that should be a string or a list of strings (warn about the rest)."""
    value = card.get(key)
    found = _strings(value)
    items = value if isinstance(value, list) else [] if value is None else [value]
    if len(found) < min(len(items), 256):
        state.warn(f"model card {key}: {len(items) - len(found)} value(s) are not strings; ignored")
    return found


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(s for s in (_string(v) for v in items[:256]) if s)


# --- finishing ---------------------------------------------------------------------------


def _finish(state: _Collector, repo_id: str | None) -> ModelFacts:
    card = state.card_yaml
    config = state.config
    if not state.card.present:
        state.warn("no README.md model card: license, datasets and base model may be missing")
    licenses = _licenses(card, state)
    datasets = [
        DatasetRef(name, "training", "card")
        for name in dict.fromkeys(_card_strings(card, "datasets", state))
    ]
    metrics, eval_datasets, index_name = _model_index(card.get("model-index"), state)
    for name in eval_datasets:
        known = next((i for i, d in enumerate(datasets) if d.name == name), None)
        if known is None:
            datasets.append(DatasetRef(name, "evaluation", "model-index"))
        elif "evaluation" not in datasets[known].usage:
            datasets[known] = DatasetRef(name, "training,evaluation", datasets[known].source)
    base_models = _base_models(card, config, state)

    revision = None
    if repo_id is None:
        match = _HF_CACHE.search(Path(state.root).resolve().as_posix() + "/")
        if match:
            repo_id, revision = f"{match.group(1)}/{match.group(2)}", match.group(3)
    if repo_id is not None and not _REPO_ID.match(repo_id):
        state.warn(f"repo id {repo_id!r} is not of the form org/name; not used")
        repo_id = None
    root_name = state.root.resolve().name or str(state.root)
    name = repo_id or index_name or state.gguf.get("general.name") or state.card.title or root_name

    weights = [f for f in state.files if f.role == "weights"]
    counts = [f.parameter_count for f in weights if f.parameter_count is not None]
    dtypes = tuple(sorted({d for f in weights for d in f.dtypes}))
    architectures = _strings(config.get("architectures"))
    if not architectures and state.gguf.get("general.architecture"):
        architectures = (state.gguf["general.architecture"],)
    auto_map = config.get("auto_map")
    auto_map_facts = (
        {str(k): _scalar(v, 200) for k, v in auto_map.items()} if isinstance(auto_map, dict) else {}
    )
    if auto_map_facts:
        state.warn(
            "config.json auto_map names custom code: loading needs trust_remote_code=True "
            f"({', '.join(sorted(set(auto_map_facts.values()))[:5])})"
        )
    packages = _packages(state, config)
    return ModelFacts(
        name=name,
        root=str(state.root),
        files=tuple(state.files),
        repo_id=repo_id,
        revision=revision,
        card=state.card,
        licenses=licenses,
        architectures=architectures,
        model_type=_string(config.get("model_type")),
        torch_dtype=_string(config.get("torch_dtype") or config.get("dtype")),
        transformers_version=_string(config.get("transformers_version")),
        auto_map=auto_map_facts,
        hyperparameters={
            k: _scalar(config[k], 64)
            for k in _HYPERPARAMETER_KEYS
            if k in config and config[k] is not None
        },
        generation=state.generation,
        tokenizer=TokenizerFacts(
            files=tuple(state.tokenizer["files"]),
            tokenizer_class=state.tokenizer.get("tokenizer_class"),
            model_type=state.tokenizer.get("model_type"),
            model_max_length=state.tokenizer.get("model_max_length"),
            has_chat_template=bool(state.tokenizer.get("has_chat_template")),
        ),
        parameter_count=sum(counts) if counts else None,
        dtypes=dtypes,
        formats=tuple(sorted({f.format for f in weights})),
        gguf=state.gguf,
        onnx=state.onnx,
        keras=state.keras,
        datasets=tuple(datasets),
        base_models=base_models,
        metrics=metrics,
        packages=packages,
        custom_code=tuple(state.custom_code),
        warnings=tuple(state.warnings),
    )


def _licenses(card: Mapping[str, Any], state: _Collector) -> tuple[LicenseInfo, ...]:
    found: list[LicenseInfo] = []
    name, link = _string(card.get("license_name")), _string(card.get("license_link"))
    for raw in _card_strings(card, "license", state):
        found.append(normalize_license(raw, name=name, url=link))
    gguf_license = state.gguf.get("general.license")
    if gguf_license and all(info.raw.lower() != gguf_license.lower() for info in found):
        found.append(normalize_license(gguf_license, url=state.gguf.get("general.license.link")))
    if not found and name:
        found.append(normalize_license("other", name=name, url=link))
    for info in found:
        if not info.known:
            state.warn(f"license {info.raw!r} is not an SPDX id nor a known model license")
    return tuple(found)


def _model_index(
    value: Any, state: _Collector
) -> tuple[tuple[MetricFacts, ...], list[str], str | None]:
    if value is None:
        return (), [], None
    if not isinstance(value, list):
        state.warn("model card model-index is not a list; ignored")
        return (), [], None
    metrics: list[MetricFacts] = []
    datasets: list[str] = []
    name = None
    for model in value[:16]:
        if not isinstance(model, dict):
            continue
        name = name or _string(model.get("name"))
        results = model.get("results")
        for result in results[:256] if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            task: dict[str, Any] = result["task"] if isinstance(result.get("task"), dict) else {}
            dataset: dict[str, Any] = (
                result["dataset"] if isinstance(result.get("dataset"), dict) else {}
            )
            dataset_name = _string(dataset.get("type")) or _string(dataset.get("name"))
            if dataset_name and dataset_name not in datasets:
                datasets.append(dataset_name)
            raw_metrics = result.get("metrics")
            for metric in raw_metrics[:256] if isinstance(raw_metrics, list) else []:
                if not isinstance(metric, dict) or _string(metric.get("type")) is None:
                    continue
                metrics.append(
                    MetricFacts(
                        type=str(_string(metric.get("type"))),
                        value=_scalar(metric.get("value"), 64),
                        name=_string(metric.get("name")),
                        task=_string(task.get("type")),
                        dataset=dataset_name,
                        split=_string(dataset.get("split")),
                    )
                )
    return tuple(metrics[:1000]), datasets, name


def _base_models(
    card: Mapping[str, Any], config: Mapping[str, Any], state: _Collector
) -> tuple[BaseModelRef, ...]:
    relation = _string(card.get("base_model_relation")) or "unknown"
    found = [
        BaseModelRef(n, relation, "card base_model")
        for n in _card_strings(card, "base_model", state)
    ]
    for key in sorted(state.gguf):
        match = re.fullmatch(r"general\.base_model\.(\d+)\.(repo_url|name)", key)
        if match and match.group(2) == "name":
            repo = state.gguf.get(f"general.base_model.{match.group(1)}.repo_url", "")
            name = repo.removeprefix("https://huggingface.co/") if repo else state.gguf[key]
            found.append(BaseModelRef(name, "quantized", "gguf"))
    if state.adapter_base:
        found.append(BaseModelRef(state.adapter_base, "adapter", "adapter_config.json"))
    if not found:
        origin = config.get("_name_or_path")
        if isinstance(origin, str) and _REPO_ID.match(origin):
            found.append(BaseModelRef(origin, "unknown", "config.json _name_or_path"))
    unique: dict[str, BaseModelRef] = {}
    for ref in found:
        unique.setdefault(ref.name, ref)
    return tuple(unique.values())


def _packages(state: _Collector, config: Mapping[str, Any]) -> tuple[PackageRef, ...]:
    found = list(state.packages)
    version = _string(config.get("transformers_version"))
    if version or state.config:
        found.append(PackageRef("transformers", version, source="config.json"))
    library = state.card.library_name
    if library and library not in ("transformers", "other"):
        found.append(PackageRef(library, None, source="README.md library_name"))
    for key, value in state.st_versions.items():
        pkg = {"pytorch": "torch", "sentence_transformers": "sentence-transformers"}.get(key, key)
        found.append(PackageRef(pkg, value or None, source="config_sentence_transformers.json"))
    if any(f.format == Format.SAFETENSORS.value for f in state.files):
        found.append(PackageRef("safetensors", None, source="model files"))
    if state.tokenizer.get("model_type") or any(
        f.endswith("tokenizer.json") for f in state.tokenizer["files"]
    ):
        found.append(PackageRef("tokenizers", None, source="tokenizer.json"))
    if state.gguf:
        found.append(PackageRef("gguf", None, source="model files"))
    if state.onnx:
        found.append(PackageRef("onnx", None, source="model files"))
    return _merge_packages(found)


def _merge_packages(found: Iterable[PackageRef]) -> tuple[PackageRef, ...]:
    """One entry per package: a pinned version beats a constraint beats nothing."""
    merged: dict[str, PackageRef] = {}
    for ref in found:
        key = re.sub(r"[-_.]+", "-", ref.name).lower()
        current = merged.get(key)
        if current is None or _rank(ref) > _rank(current):
            merged[key] = ref
    return tuple(merged[k] for k in sorted(merged))


def _rank(ref: PackageRef) -> int:
    return 2 if ref.version else 1 if ref.specifier else 0
