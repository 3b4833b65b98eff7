"""The self-describing manifest: resources, their digests, and how they were computed.

A manifest is what a signature commits to. Its wire form is the in-toto
Statement v1 that OpenSSF model-signing v1.x signs::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": MODEL, "digest": {"sha256": ROOT}}],
     "predicateType": "https://model_signing/signature/v1.0",
     "predicate": {"resources": [{"name", "algorithm", "digest"}...],   # sorted by name
                   "serialization": {"method", "hash_type", ["shard_size"],
                                     "allow_symlinks", ["ignore_paths"]},
                   "modelseal": {...}}}                                   # our extension

``ROOT`` is SHA-256 over the concatenated raw resource digests in listed order.
model-signing verifiers ignore predicate fields they do not know (v1.0 says so),
so the ``modelseal`` extension (file stats for incremental re-signing, empty
files of the shards method, ignore globs, the per-tensor manifest) travels
inside the same signed payload without breaking interoperability.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from modelseal.errors import SignatureError
from modelseal.integrity.serialization import FileStat, HashedFile, Serialization
from modelseal.integrity.tensors import TensorFileManifest

__all__ = [
    "EXTENSION_KEY",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Extension",
    "Manifest",
    "Resource",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
#: Key of modelseal's extension object inside the predicate.
EXTENSION_KEY = "modelseal"


@dataclass(frozen=True)
class Resource:
    """One signed resource: a file or a file shard, with its digest (hex)."""

    name: str
    algorithm: str
    digest: str

    @property
    def file(self) -> str:
        """The file this resource belongs to."""
        return self.span[0]

    @property
    def span(self) -> tuple[str, int | None, int | None]:
        """(file, start, end) for shards; (file, None, None) for whole files."""
        head, sep, end = self.name.rpartition(":")
        if sep:
            path, sep2, start = head.rpartition(":")
            if sep2 and start.isdigit() and end.isdigit():
                return path, int(start), int(end)
        return self.name, None, None


@dataclass(frozen=True)
class Extension:
    """modelseal's additions to the predicate (signed, ignored by other verifiers)."""

    #: ``--ignore`` globs given at signing.
    ignore_globs: tuple[str, ...] = ()
    #: Files present but left out at signing (shown again by verify).
    ignored: tuple[str, ...] = ()
    #: Empty files (the shards method has no resource for them).
    empty_files: tuple[str, ...] = ()
    #: Size, mtime and inode of each file when it was hashed (incremental re-signing).
    stats: Mapping[str, FileStat] = field(default_factory=dict)
    #: Per-tensor manifests of tensor files, by file name.
    tensors: Mapping[str, TensorFileManifest] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored under ``predicate.modelseal``."""
        return {
            "version": 1,
            "ignore_globs": list(self.ignore_globs),
            "ignored": list(self.ignored),
            "empty_files": list(self.empty_files),
            "stats": {n: [s.size, s.mtime_ns, s.inode] for n, s in sorted(self.stats.items())},
            "tensors": {n: t.to_json() for n, t in sorted(self.tensors.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> Extension:
        """Parse the extension (raises :class:`SignatureError` if malformed)."""
        if data is None:
            return cls()
        try:
            if not isinstance(data, dict) or data.get("version") != 1:
                raise TypeError("unknown version")
            stats = {
                str(n): FileStat(int(v[0]), int(v[1]), int(v[2]))
                for n, v in data.get("stats", {}).items()
            }
            tensors = {
                str(n): TensorFileManifest.from_json(n, v)
                for n, v in data.get("tensors", {}).items()
            }
            return cls(
                ignore_globs=tuple(str(g) for g in data.get("ignore_globs", [])),
                ignored=tuple(str(g) for g in data.get("ignored", [])),
                empty_files=tuple(str(g) for g in data.get("empty_files", [])),
                stats=stats,
                tensors=tensors,
            )
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            raise SignatureError(f"signature's modelseal extension is malformed ({exc})") from exc


def _sort_key(resource: Resource) -> tuple[tuple[str, ...], int]:
    path, start, _ = resource.span
    return tuple(PurePosixPath(path).parts), start or 0


@dataclass(frozen=True)
class Manifest:
    """What a model-signing signature commits to."""

    model_name: str
    serialization: Serialization
    #: Sorted as model-signing sorts them (path components, then shard start).
    resources: tuple[Resource, ...]
    extension: Extension = field(default_factory=Extension)

    @classmethod
    def build(
        cls,
        model_name: str,
        serialization: Serialization,
        hashed: Iterable[HashedFile],
        extension: Extension | None = None,
    ) -> Manifest:
        """A manifest from hashed files (resources named as the serialization says)."""
        algorithm = serialization.engine.name
        shards = serialization.method == "shards" and algorithm != "blake3"
        if shards:  # model-signing names shard digests e.g. "sha256-sharded-1000000000"
            algorithm = f"{algorithm}-sharded-{serialization.shard_size}"
        resources = []
        for item in hashed:
            for start, end, digest in item.pieces:
                name = f"{item.file.name}:{start}:{end}" if shards else item.file.name
                resources.append(Resource(name, algorithm, digest.hex()))
        resources.sort(key=_sort_key)
        return cls(model_name, serialization, tuple(resources), extension or Extension())

    @property
    def root_digest(self) -> str:
        """SHA-256 over the raw resource digests in listed order (hex)."""
        hasher = hashlib.sha256()
        for resource in self.resources:
            hasher.update(bytes.fromhex(resource.digest))
        return hasher.hexdigest()

    def file_digests(self) -> dict[str, tuple[tuple[int | None, int | None, str], ...]]:
        """Each file's resources: (start, end, digest hex), ordered by start."""
        out: dict[str, list[tuple[int | None, int | None, str]]] = {}
        for resource in self.resources:
            path, start, end = resource.span
            out.setdefault(path, []).append((start, end, resource.digest))
        for empty in self.extension.empty_files:
            out.setdefault(empty, [])
        return {k: tuple(sorted(v, key=lambda p: p[0] or 0)) for k, v in out.items()}

    def to_statement(self) -> dict[str, Any]:
        """The in-toto Statement v1 (model-signing predicate v1.0)."""
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.model_name, "digest": {"sha256": self.root_digest}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "resources": [
                    {"name": r.name, "algorithm": r.algorithm, "digest": r.digest}
                    for r in self.resources
                ],
                "serialization": self.serialization.to_json(),
                EXTENSION_KEY: self.extension.to_json(),
            },
        }

    def to_payload(self) -> bytes:
        """The DSSE payload bytes (indented JSON, as model-signing writes it)."""
        return json.dumps(self.to_statement(), indent=2).encode("utf-8")

    @classmethod
    def from_statement(cls, statement: Any) -> Manifest:
        """Parse and check a statement (raises :class:`SignatureError`).

        The root digest must match the resources: a payload whose resources were
        edited without updating the subject is refused.
        """
        if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
            raise SignatureError("signed payload is not an in-toto Statement v1")
        if statement.get("predicateType") != PREDICATE_TYPE:
            raise SignatureError(
                f"signed payload has predicate type {statement.get('predicateType')!r}, "
                f"not {PREDICATE_TYPE}",
                advice="is this a provenance attestation? pass it with --provenance",
            )
        subjects = statement.get("subject")
        predicate = statement.get("predicate")
        if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(predicate, dict):
            raise SignatureError("signed payload must have exactly one subject and a predicate")
        try:
            name = str(subjects[0]["name"])
            root = str(subjects[0]["digest"]["sha256"])
            resources = tuple(
                Resource(str(r["name"]), str(r["algorithm"]), str(r["digest"]).lower())
                for r in predicate["resources"]
            )
            for r in resources:
                bytes.fromhex(r.digest)
        except (KeyError, TypeError, ValueError) as exc:
            raise SignatureError(f"signed payload has malformed resources ({exc})") from exc
        manifest = cls(
            name,
            Serialization.from_json(predicate.get("serialization")),
            resources,
            Extension.from_json(predicate.get(EXTENSION_KEY)),
        )
        if manifest.root_digest != root.lower():
            raise SignatureError(
                f"manifest is inconsistent: root digest {root} does not match its "
                f"resources ({manifest.root_digest})"
            )
        return manifest

    @classmethod
    def from_payload(cls, payload: bytes) -> Manifest:
        """Parse DSSE payload bytes."""
        try:
            statement = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignatureError(f"signed payload is not JSON ({exc})") from exc
        return cls.from_statement(statement)
