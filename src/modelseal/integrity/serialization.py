"""Serialize a model directory into (resource, digest) pairs: the ``files`` and ``shards`` methods.

The two methods are those of OpenSSF model-signing v1.x, so the resources we
produce are the ones its verifier recomputes:

- ``files``: one resource per regular file, named by its POSIX path relative to
  the model root, digest over the whole content (empty files included).
- ``shards``: each non-empty file is cut into ``shard_size``-byte ranges, one
  resource per range named ``path:start:end``. Empty files yield no resource in
  this method (model-signing does the same); modelseal records them separately.

Hashing streams each file (or shard) with ``preadv`` into a preallocated buffer
on a thread pool: parallel across files and, for shards, within a file. The
tensors' byte ranges (:class:`Spans`) are digested from the same buffer as the
file digest, so the bytes are read once whatever is computed from them. Memory
is bounded by ``workers x chunk size`` whatever the model size. A file whose
size or modification time differs after it was hashed makes signing fail
(:class:`FileChangedError`) instead of producing a wrong signature.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import os
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from modelseal.errors import IntegrityError, SignatureError, UsageError
from modelseal.integrity.hashing import HashEngine, engine_for

__all__ = [
    "DEFAULT_IGNORED",
    "DEFAULT_SHARD_SIZE",
    "FileChangedError",
    "FileStat",
    "HashedFile",
    "ModelFile",
    "ModelListing",
    "ProgressCallback",
    "Serialization",
    "Spans",
    "hash_files",
    "hash_range",
    "hash_range_spans",
    "list_model",
]

#: What model-signing always leaves out of a signature (and so must we, to interoperate).
DEFAULT_IGNORED: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
#: model-signing's default shard size (1 GB).
DEFAULT_SHARD_SIZE = 1_000_000_000
# 1 MiB: the buffer stays in the core's L2 cache between the copy and the two hashes reading it.
_CHUNK = 1024 * 1024
_BLAKE3_CHUNK = 32 * 1024 * 1024

#: Called with the number of bytes just hashed (from worker threads).
ProgressCallback = Callable[[int], None]


class FileChangedError(IntegrityError):
    """A file changed (size or mtime) while it was being hashed."""


@dataclass(frozen=True)
class Serialization:
    """The serialization parameters recorded in (and rebuilt from) a signature."""

    method: str = "files"
    hash_type: str = "sha256"
    shard_size: int | None = None
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in ("files", "shards"):
            raise UsageError(f"unknown serialization method {self.method!r}; use files or shards")
        if self.method == "shards" and (self.shard_size is None or self.shard_size <= 0):
            raise UsageError("the shards method needs a positive shard size")

    @property
    def engine(self) -> HashEngine:
        """The hash engine named by ``hash_type``."""
        return engine_for(self.hash_type)

    def to_json(self) -> dict[str, Any]:
        """The ``serialization`` object of the model-signing predicate."""
        out: dict[str, Any] = {"method": self.method, "hash_type": self.hash_type}
        if self.method == "shards":
            out["shard_size"] = self.shard_size
        out["allow_symlinks"] = self.allow_symlinks
        if self.ignore_paths:
            out["ignore_paths"] = list(self.ignore_paths)
        return out

    @classmethod
    def from_json(cls, data: Any) -> Serialization:
        """Rebuild parameters from a predicate (raises :class:`SignatureError` if invalid)."""
        if not isinstance(data, dict):
            raise SignatureError("signature has no serialization parameters")
        method = data.get("method")
        hash_type = data.get("hash_type")
        if method not in ("files", "shards") or not isinstance(hash_type, str):
            raise SignatureError(f"signature uses an unknown serialization {data!r}")
        ignore = data.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise SignatureError("signature's ignore_paths is not a list of paths")
        shard_size = data.get("shard_size") if method == "shards" else None
        if isinstance(shard_size, float) and shard_size.is_integer():
            shard_size = int(shard_size)  # protobuf Struct numbers are doubles
        if method == "shards" and (not isinstance(shard_size, int) or shard_size <= 0):
            raise SignatureError("signature's shard_size is not a positive integer")
        try:
            engine_for(hash_type)
        except UsageError as exc:
            raise SignatureError(f"signature uses an unknown hash {hash_type!r}") from exc
        allow = data.get("allow_symlinks", False)
        return cls(
            method=method,
            hash_type=hash_type,
            shard_size=shard_size,
            allow_symlinks=allow is True or allow == "true",
            ignore_paths=tuple(ignore),
        )


@dataclass(frozen=True)
class FileStat:
    """What proves a file did not change between two signings (size, mtime, inode)."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileStat:
        """From a stat result."""
        return cls(info.st_size, info.st_mtime_ns, info.st_ino)


@dataclass(frozen=True)
class ModelFile:
    """A regular file of the model."""

    #: POSIX path relative to the model root (the resource name).
    name: str
    path: Path
    stat: FileStat


@dataclass(frozen=True)
class ModelListing:
    """The files of a model directory, split into signed and left out."""

    root: Path
    files: tuple[ModelFile, ...]
    #: Files under an ignored path or glob (relative names).
    ignored: tuple[str, ...]
    #: Symbolic links that were not followed (relative names).
    symlinks: tuple[str, ...]
    #: Other entries that are not regular files (sockets, fifos...).
    special: tuple[str, ...] = ()


@dataclass(frozen=True)
class HashedFile:
    """The digests of one file: one (start, end, digest) per resource."""

    file: ModelFile
    pieces: tuple[tuple[int, int, bytes], ...]
    reused: bool = False
    #: Digest of each requested span (tensor byte range), by (start, end).
    spans: Mapping[tuple[int, int], bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Spans:
    """Byte ranges of one file (its tensors) to digest in the same read pass as the file."""

    #: The engine name for the range digests (e.g. ``blake3``).
    algorithm: str
    #: Sorted, non-overlapping (start, end) ranges.
    ranges: tuple[tuple[int, int], ...]


def _is_ignored(name: str, prefixes: Sequence[str], globs: Sequence[str]) -> bool:
    for prefix in prefixes:
        prefix = prefix.strip("/")
        if prefix in ("", "."):
            continue  # never "ignore everything", whatever a signature says
        if name == prefix or name.startswith(prefix + "/"):
            return True
    base = name.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(base, g) for g in globs)


def list_model(
    root: Path,
    *,
    ignore_paths: Sequence[str] = (),
    ignore_globs: Sequence[str] = (),
    allow_symlinks: bool = False,
) -> ModelListing:
    """List the regular files under ``root`` (a directory or a single file).

    Symlinks are not followed unless ``allow_symlinks``; then links to files are
    hashed as their targets (links to directories are never followed).
    """
    if not root.exists() and not root.is_symlink():
        raise UsageError(f"{root}: no such file or directory")
    if not root.is_dir():
        info = root.stat()
        # A single-file model has one resource named "." (as model-signing names it).
        return ModelListing(root, (ModelFile(".", root, FileStat.of(info)),), (), ())
    files: list[ModelFile] = []
    ignored: list[str] = []
    links: list[str] = []
    special: list[str] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise UsageError(f"{directory}: cannot list ({exc.strerror})") from exc
        for item in entries:
            full = Path(item.path)
            name = full.relative_to(root).as_posix()
            if _is_ignored(name, ignore_paths, ignore_globs):
                if item.is_dir(follow_symlinks=False):
                    ignored.extend(_all_files(full, root))
                else:
                    ignored.append(name)
                continue
            if item.is_symlink():
                if allow_symlinks and item.is_file(follow_symlinks=True):
                    files.append(ModelFile(name, full, FileStat.of(full.stat())))
                else:
                    links.append(name)
                continue
            if item.is_dir(follow_symlinks=False):
                stack.append(full)
            elif item.is_file(follow_symlinks=False):
                files.append(ModelFile(name, full, FileStat.of(item.stat(follow_symlinks=False))))
            else:
                special.append(name)
    files.sort(key=lambda f: _sort_key(f.name))
    return ModelListing(
        root, tuple(files), tuple(sorted(ignored)), tuple(sorted(links)), tuple(sorted(special))
    )


def _all_files(directory: Path, root: Path) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(directory):
        for name in names:
            out.append((Path(dirpath) / name).relative_to(root).as_posix())
    return out


def _sort_key(name: str) -> tuple[str, ...]:
    """Path order as model-signing sorts (by components, not by raw string)."""
    return tuple(PurePosixPath(name).parts)


@dataclass
class _Job:
    file: ModelFile
    start: int
    end: int
    spans: Sequence[tuple[int, int]] = ()
    span_engine: HashEngine | None = None
    #: A job that only computes span digests (a tensor crossing shard boundaries).
    spans_only: bool = False
    result: bytes | None = None
    span_digests: list[bytes] = field(default_factory=list)
    error: BaseException | None = None


def hash_files(
    files: Iterable[ModelFile],
    serialization: Serialization,
    *,
    reuse: Mapping[str, tuple[tuple[int, int, bytes], ...]] | None = None,
    spans: Mapping[str, Spans] | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> list[HashedFile]:
    """Hash ``files`` as ``serialization`` says; digests in ``reuse`` are taken as they are.

    ``spans`` asks for digests of byte ranges of some files (tensors); they are
    hashed from the same buffers as the file or shard holding them (ranges
    crossing a shard boundary get their own pass). Raises
    :class:`FileChangedError` if a file changed while it was hashed.
    """
    engine = serialization.engine
    reuse = reuse or {}
    spans = spans or {}
    # BLAKE3 digests whole files (model-signing bypasses sharding for it too).
    method = "files" if engine.name == "blake3" else serialization.method
    results: dict[str, HashedFile] = {}
    jobs: list[_Job] = []
    for file in files:
        if file.name in reuse:
            results[file.name] = HashedFile(file, reuse[file.name], reused=True)
            continue
        size = file.stat.size
        request = spans.get(file.name)
        wanted = sorted(request.ranges) if request is not None else []
        span_engine = engine_for(request.algorithm) if request is not None else None
        if method == "shards" and size == 0:
            results[file.name] = HashedFile(file, ())  # no shard resource, still listed
            continue
        if method == "shards":
            step = serialization.shard_size or DEFAULT_SHARD_SIZE
            ranges = [(start, min(start + step, size)) for start in range(0, size, step)]
        else:
            ranges = [(0, size)]
        placed: set[tuple[int, int]] = set()
        for start, end in ranges:
            inside = [sp for sp in wanted if start <= sp[0] and sp[1] <= end and sp not in placed]
            placed.update(inside)
            jobs.append(_Job(file, start, end, inside, span_engine))
        jobs.extend(
            _Job(file, sp[0], sp[1], [sp], span_engine, spans_only=True)
            for sp in wanted
            if sp not in placed
        )
    workers = workers or max(2, _cores())
    if engine.internally_parallel:
        workers = 1  # the engine already uses every core on each large update
    # Largest first keeps all workers busy until the end.
    order = sorted(jobs, key=lambda j: j.end - j.start, reverse=True)
    stop = threading.Event()  # set on the first failure or an interrupt: workers quit early
    busy = _Busy()
    if len(order) <= 1 or workers == 1:
        for job in order:
            _run(job, engine, progress, stop, busy)
    else:
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(workers, len(order)), thread_name_prefix="modelseal-hash"
        ) as pool:
            futures = [pool.submit(_run, job, engine, progress, stop, busy) for job in order]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()
                raise
    failed = [job.error for job in jobs if job.error is not None]
    real = [e for e in failed if not isinstance(e, _Stopped)]
    if real or failed:
        raise (real or failed)[0]
    pieces: dict[str, list[tuple[int, int, bytes]]] = {}
    span_digests: dict[str, dict[tuple[int, int], bytes]] = {}
    by_name: dict[str, ModelFile] = {}
    for job in jobs:
        assert job.result is not None
        by_name[job.file.name] = job.file
        span_digests.setdefault(job.file.name, {}).update(
            zip(job.spans, job.span_digests, strict=True)
        )
        if not job.spans_only:
            pieces.setdefault(job.file.name, []).append((job.start, job.end, job.result))
    for name, parts in pieces.items():
        results[name] = HashedFile(by_name[name], tuple(sorted(parts)), spans=span_digests[name])
    return [results[name] for name in sorted(results, key=_sort_key)]


class _Stopped(IntegrityError):
    """Hashing was stopped because another job failed."""


def _cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class _Busy:
    """How many jobs are hashing; a job hands its spans to a helper while a core is idle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._cores = _cores()

    def __enter__(self) -> _Busy:
        with self._lock:
            self._active += 1
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._active -= 1

    def spare(self) -> bool:
        """Whether a core is idle now."""
        return self._active < self._cores


def _run(
    job: _Job,
    engine: HashEngine,
    progress: ProgressCallback | None,
    stop: threading.Event,
    busy: _Busy,
) -> None:
    def report(count: int) -> None:
        if stop.is_set():
            raise _Stopped("hashing stopped")
        if progress is not None and not job.spans_only:
            progress(count)

    try:
        if stop.is_set():
            raise _Stopped("hashing stopped")
        with busy:
            job.result, job.span_digests = hash_range_spans(
                job.file.path,
                job.start,
                job.end,
                None if job.spans_only else engine,
                spans=job.spans,
                span_engine=job.span_engine,
                expect=job.file.stat,
                progress=report,
                what=job.file.name,
                spare_core=busy.spare,
            )
    except BaseException as exc:  # re-raised by the caller (the first real failure)
        job.error = exc
        stop.set()


def hash_range(
    path: Path,
    start: int,
    end: int,
    engine: HashEngine,
    *,
    expect: FileStat | None = None,
    progress: ProgressCallback | None = None,
    what: str | None = None,
) -> bytes:
    """Hash bytes ``[start, end)`` of ``path``; check the file did not change meanwhile."""
    digest, _ = hash_range_spans(
        path, start, end, engine, expect=expect, progress=progress, what=what
    )
    return digest


def hash_range_spans(
    path: Path,
    start: int,
    end: int,
    engine: HashEngine | None,
    *,
    spans: Sequence[tuple[int, int]] = (),
    span_engine: HashEngine | None = None,
    expect: FileStat | None = None,
    progress: ProgressCallback | None = None,
    what: str | None = None,
    spare_core: Callable[[], bool] | None = None,
) -> tuple[bytes, list[bytes]]:
    """Hash ``[start, end)`` and, from the same buffers, each of ``spans`` inside it.

    ``spans`` are sorted, non-overlapping (start, end) ranges within the range
    (tensor byte ranges); their digests by ``span_engine`` (default: ``engine``)
    come back in the same order. With ``engine`` None only the spans are hashed
    and the range digest is ``b""``. When both are wanted and ``spare_core()``
    says a core is idle (default: more than one core), the spans of a buffer are
    hashed on a helper thread while this one hashes it and reads the next (a
    one-file model still uses two cores); memory stays at three chunks.
    """
    what = what or str(path)
    span_engine = span_engine or engine
    if spans and span_engine is None:
        raise UsageError("span digests need a hash engine")
    parallel = engine is not None and engine.internally_parallel
    chunk = _BLAKE3_CHUNK if parallel else _CHUNK
    pieces = _SpanDigests(spans, span_engine) if span_engine is not None else None
    try:
        # O_NONBLOCK: a file swapped for a FIFO after listing must not hang us.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise IntegrityError(f"{what}: cannot read ({exc.strerror})") from exc
    spare = spare_core or (lambda: _cores() > 1)
    both = bool(spans) and engine is not None
    helper: concurrent.futures.ThreadPoolExecutor | None = None
    # A buffer is reused only once the helper is done with it.
    buffers = [
        memoryview(bytearray(min(chunk, max(end - start, 1)))) for _ in range(3 if both else 1)
    ]
    pending: list[concurrent.futures.Future[None] | None] = [None] * len(buffers)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileChangedError(f"{what}: is no longer a regular file")
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_SEQUENTIAL)
        hasher = engine.new() if engine is not None else None
        position, turn = start, 0
        while position < end:
            slot, turn = turn, (turn + 1) % len(buffers)
            waiting = pending[slot]
            if waiting is not None:
                pending[slot] = None
                waiting.result()
            view = buffers[slot]
            got = os.preadv(fd, [view[: min(len(view), end - position)]], position)
            if got <= 0:
                raise FileChangedError(
                    f"{what}: file shrank while it was being hashed",
                    advice="sign again once the model files are no longer being written",
                )
            data = view[:got]
            if pieces is not None and spans:
                if both and spare():
                    if helper is None:
                        helper = concurrent.futures.ThreadPoolExecutor(
                            1, thread_name_prefix="modelseal-spans"
                        )
                    pending[slot] = helper.submit(pieces.feed, data, position)
                else:
                    _wait(pending)  # the spans are fed in file order
                    pieces.feed(data, position)
            if hasher is not None:
                hasher.update(data)
            position += got
            if progress is not None:
                progress(got)
        _wait(pending)
        after = os.fstat(fd)
    except OSError as exc:
        raise IntegrityError(f"{what}: read failed ({exc.strerror})") from exc
    finally:
        if helper is not None:
            helper.shutdown(wait=True, cancel_futures=True)  # before the buffers go
        os.close(fd)
    if expect is not None and (
        after.st_size != expect.size or after.st_mtime_ns != expect.mtime_ns
    ):
        raise FileChangedError(
            f"{what}: file changed while it was being hashed "
            f"(size {expect.size} -> {after.st_size})",
            advice="sign again once the model files are no longer being written",
        )
    if not stat.S_ISREG(after.st_mode):
        raise IntegrityError(f"{what}: not a regular file")
    return (
        hasher.digest() if hasher is not None else b"",
        pieces.finish() if pieces is not None else [],
    )


def _wait(pending: list[concurrent.futures.Future[None] | None]) -> None:
    """Wait for the helper's work on every buffer (raising its error, if any)."""
    for slot, waiting in enumerate(pending):
        if waiting is not None:
            pending[slot] = None
            waiting.result()


class _SpanDigests:
    """Digests of sorted, non-overlapping spans, fed the file's buffers in order."""

    def __init__(self, spans: Sequence[tuple[int, int]], engine: HashEngine) -> None:
        self._spans, self._engine = spans, engine
        self._index = 0
        self._hasher: Any = None
        self.digests: list[bytes] = []

    def feed(self, view: memoryview, position: int) -> None:
        """Hash the parts of the spans inside ``view`` (the bytes at ``position``)."""
        spans, stop = self._spans, position + len(view)
        while self._index < len(spans) and spans[self._index][0] < stop:
            s_start, s_end = spans[self._index]
            if self._hasher is None:
                self._hasher = self._engine.new()
            lo, hi = max(s_start, position), min(s_end, stop)
            if hi > lo:
                self._hasher.update(view[lo - position : hi - position])
            if s_end > stop:
                return
            self.digests.append(self._hasher.digest())
            self._hasher = None
            self._index += 1

    def finish(self) -> list[bytes]:
        """Every span's digest (spans left are empty ones at the very end)."""
        while self._index < len(self._spans):
            self.digests.append(self._engine.new().digest())
            self._index += 1
        return self.digests
