"""Where a fleet scan finds models: a directory tree or an ``s3://bucket/prefix``.

A *model* is a directory holding model files (the Hugging Face layout: a
``config.json`` or another marker in :data:`MODEL_MARKERS`, with any subfolders)
or a standalone file that is not inside such a directory. Grouping only decides which
files travel together and which siblings a file sees; verdicts come from content.

S3 listings are paginated and run in parallel, one paginator per top-level
"folder" under the prefix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from modelseal.errors import UsageError
from modelseal.fleet.cache import CONTENT_STAMP
from modelseal.fleet.errors import FleetError

__all__ = [
    "MODEL_MARKERS",
    "FileRef",
    "Model",
    "SourceSpec",
    "group_models",
    "list_models",
    "parse_source",
    "s3_client",
]

#: Files that make the directory holding them a model directory (Hugging Face layouts:
#: transformers, diffusers, PEFT adapters, sentence-transformers). Weights without
#: one of these (a folder of GGUF quantisations, loose pickles) are standalone models.
MODEL_MARKERS = frozenset(
    {
        "config.json",
        "model_index.json",
        "adapter_config.json",
        "tokenizer_config.json",
        "modules.json",
    }
)
_LIST_THREADS = 8
#: Keys per listing request (S3 returns at most 1000).
PAGE_SIZE = 1000


@dataclass(frozen=True)
class SourceSpec:
    """A source as the workers need it: enough to open any file it lists."""

    #: The source as the user wrote it (a directory or ``s3://bucket/prefix``).
    name: str
    #: ``"local"`` or ``"s3"``.
    kind: str
    #: The directory (local) or the bucket (s3).
    root: str
    #: The key prefix under the bucket, ending in ``/`` unless empty (s3 only).
    prefix: str = ""
    endpoint_url: str | None = None

    def display(self, relpath: str) -> str:
        """The path shown for a file of this source (what ``modelseal scan`` would show)."""
        if self.kind == "s3":
            return f"s3://{self.root}/{self.prefix}{relpath}"
        return str(Path(self.root) / relpath)


@dataclass(frozen=True)
class FileRef:
    """One listed file, relative to its source."""

    relpath: str
    size: int
    #: What changes when the content may have: ``mtime_ns`` locally, ``etag:ETAG`` on S3.
    stamp: str


@dataclass(frozen=True)
class Model:
    """A model directory (or a standalone file) and the files in it."""

    #: The model's path relative to the source ("" when the source itself is one model).
    name: str
    #: True for a file that is not inside a model directory.
    standalone: bool
    files: tuple[FileRef, ...]

    def inner(self, ref: FileRef) -> str:
        """``ref``'s path inside the model directory."""
        if self.standalone:
            return PurePosixPath(ref.relpath).name
        return ref.relpath[len(self.name) + 1 :] if self.name else ref.relpath


def parse_source(text: str, endpoint_url: str | None = None) -> SourceSpec:
    """A :class:`SourceSpec` for ``text``; a usage error if it does not exist or is malformed."""
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise UsageError(f"{text}: no bucket", advice="write s3://BUCKET/PREFIX")
        prefix = prefix.strip("/")
        return SourceSpec(text, "s3", bucket, f"{prefix}/" if prefix else "", endpoint_url)
    if "://" in text:
        raise UsageError(f"{text}: unsupported source", advice="a directory or s3://bucket/prefix")
    if not Path(text).is_dir():
        raise UsageError(f"{text}: not a directory", advice="fleet scan takes directory trees")
    return SourceSpec(text, "local", text)


def list_models(spec: SourceSpec) -> list[Model]:
    """Every model of ``spec``, sorted by name."""
    files = _list_local(Path(spec.root)) if spec.kind == "local" else _list_s3(spec)
    return group_models(files)


def group_models(files: Iterable[FileRef]) -> list[Model]:
    """Group files into models: each file belongs to its shallowest model directory."""
    refs = sorted(files, key=lambda f: f.relpath)
    model_dirs = {
        str(PurePosixPath(ref.relpath).parent)
        for ref in refs
        if PurePosixPath(ref.relpath).name in MODEL_MARKERS
    }
    grouped: dict[tuple[str, bool], list[FileRef]] = {}
    for ref in refs:
        owner = _owner(PurePosixPath(ref.relpath), model_dirs)
        key = (ref.relpath, True) if owner is None else (owner, False)
        grouped.setdefault(key, []).append(ref)
    return [
        Model("" if name == "." else name, standalone, tuple(members))
        for (name, standalone), members in sorted(grouped.items())
    ]


def _owner(path: PurePosixPath, model_dirs: set[str]) -> str | None:
    """The shallowest model directory holding ``path``, if any."""
    for parent in reversed(path.parents):
        if str(parent) in model_dirs:
            return str(parent)
    return None


def _list_local(root: Path) -> Iterator[FileRef]:
    """Regular files and links to files under ``root`` (links to directories are skipped)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            try:
                info = full.stat()
            except OSError:
                continue  # a broken link: nothing to read
            if not os.path.isfile(full):
                continue
            yield FileRef(full.relative_to(root).as_posix(), info.st_size, str(info.st_mtime_ns))


def s3_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client (credentials the usual AWS way; ``endpoint_url`` for MinIO/Ceph)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - boto3 ships with the fleet extra
        raise UsageError(
            "s3:// sources need boto3", advice="pip install 'modelseal[fleet]'"
        ) from exc
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}),
    )


def _list_s3(spec: SourceSpec) -> list[FileRef]:
    client = s3_client(spec.endpoint_url)
    try:
        top = client.list_objects_v2(
            Bucket=spec.root, Prefix=spec.prefix, Delimiter="/", MaxKeys=PAGE_SIZE
        )
        if top.get("IsTruncated"):
            refs = _paginate(client, spec, spec.prefix, delimiter=True)
            folders = _folders(client, spec)
        else:
            refs = [_ref(spec, o) for o in top.get("Contents", []) if not o["Key"].endswith("/")]
            folders = [p["Prefix"] for p in top.get("CommonPrefixes", [])]
        with ThreadPoolExecutor(max_workers=_LIST_THREADS) as pool:
            for chunk in pool.map(lambda p: _paginate(client, spec, p, delimiter=False), folders):
                refs.extend(chunk)
    except client.exceptions.NoSuchBucket as exc:
        raise UsageError(f"{spec.name}: no such bucket") from exc
    except Exception as exc:
        if isinstance(exc, UsageError):
            raise
        raise FleetError(f"{spec.name}: cannot list ({exc})") from exc
    return refs


def _paginate(client: Any, spec: SourceSpec, prefix: str, *, delimiter: bool) -> list[FileRef]:
    paginator = client.get_paginator("list_objects_v2")
    kwargs: dict[str, Any] = {
        "Bucket": spec.root,
        "Prefix": prefix,
        "PaginationConfig": {"PageSize": PAGE_SIZE},
    }
    if delimiter:
        kwargs["Delimiter"] = "/"
    return [
        _ref(spec, obj)
        for page in paginator.paginate(**kwargs)
        for obj in page.get("Contents", [])
        if not obj["Key"].endswith("/")
    ]


def _folders(client: Any, spec: SourceSpec) -> list[str]:
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=spec.root,
        Prefix=spec.prefix,
        Delimiter="/",
        PaginationConfig={"PageSize": PAGE_SIZE},
    )
    return [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]


def _ref(spec: SourceSpec, obj: dict[str, Any]) -> FileRef:
    etag = str(obj["ETag"]).strip('"')
    return FileRef(obj["Key"][len(spec.prefix) :], int(obj["Size"]), f"{CONTENT_STAMP}{etag}")
