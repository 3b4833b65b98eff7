"""The inventory: one walk over a file, a directory or an archive.

Every capability (scan, integrity, sbom, weights, policy) consumes the
:class:`Entry` objects yielded by :func:`walk`. An entry is a file or an archive
member with the format detected from its bytes and a way to open those bytes
again (bounded, never the whole file in memory). Members of archives are named
``outer!inner``; archives inside archives are opened to ``Limits.max_depth``.

The walk never raises for a bad input file: an entry that cannot be read carries
a ``problem`` and the consumer reports it (fail safe: a problem is never clean).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import re
import stat
import struct
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from modelseal.errors import FormatError, LimitExceededError, UsageError
from modelseal.formats.claims import could_be_model
from modelseal.formats.format import ARCHIVE_FORMATS, Format
from modelseal.formats.sniff import HEAD_BYTES, classify_tar_names, detect, is_tar_header
from modelseal.formats.streams import bounded, decompressing, open_slice, window

__all__ = ["Entry", "Limits", "expand", "seekable_source", "walk", "walk_files"]

_COMPRESSED = {
    Format.GZIP: "gzip",
    Format.BZIP2: "bzip2",
    Format.XZ: "xz",
    Format.ZLIB: "zlib",
    Format.LZ4: "lz4",
}
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".z", ".zlib", ".lzma", ".lz4")
_TAR_LIKE = frozenset({Format.TAR, Format.PYTORCH_LEGACY_TAR})
_PICKLE_LIKE = frozenset({Format.PYTORCH_LEGACY, Format.PICKLE})
_GiB = 1024**3
_TORCH_STORAGE = re.compile(r"^[^/]+/data/\d+$")


@dataclass(frozen=True)
class Limits:
    """Safety limits applied while walking untrusted input."""

    #: How many archives deep members are opened (a zip in a zip is depth 2).
    max_depth: int = 3
    #: The most bytes one member or decompressed stream may produce when read.
    max_member_bytes: int = 16 * _GiB
    #: The largest nested archive copied to a temporary file to be opened.
    max_spool_bytes: int = 512 * 1024**2
    #: The most members listed from one archive.
    max_members: int = 200_000


@dataclass(frozen=True)
class Entry:
    """One file or archive member, with its detected format."""

    #: Display path: as given by the user, ``outer!inner`` for members.
    path: str
    format: Format
    #: Size in bytes (uncompressed size for members, as declared by the archive).
    size: int
    #: 0 for files on disk, 1 for members of an archive, 2 for members of a member...
    depth: int = 0
    #: Display path of the archive holding this member, if any.
    container: str | None = None
    #: Format of that archive (a ``data.pkl`` in a TorchScript archive means something
    #: else than one in a plain zip).
    container_format: Format | None = None
    #: The file on disk holding this entry's bytes.
    fs_path: Path | None = None
    #: Where the bytes start in ``fs_path`` when they are stored there verbatim
    #: (0 for plain files; the data offset of an uncompressed zip/tar member).
    data_offset: int | None = None
    #: Why the entry could not be read completely, if it could not.
    problem: str | None = None
    #: For files reached through a symlink: the link's target as written.
    link_target: str | None = None
    #: True when that symlink resolves outside the directory being walked.
    link_escapes: bool = False
    _opener: Callable[[], BinaryIO] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """The innermost file name (no directories, no archive prefix)."""
        inner = self.path.rsplit("!", 1)[-1]
        return inner.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def inner_path(self) -> str:
        """The path inside the innermost container (or the display path for files)."""
        return self.path.rsplit("!", 1)[-1]

    @property
    def is_member(self) -> bool:
        """True for archive members and decompressed streams."""
        return self.depth > 0

    def open(self) -> BinaryIO:
        """Open the entry's bytes for reading (bounded by the walk's limits)."""
        if self._opener is None:
            raise FormatError(f"{self.path}: has no readable content")
        return self._opener()

    def head(self, size: int = HEAD_BYTES) -> bytes:
        """The first ``size`` bytes."""
        with self.open() as stream:
            return _read_up_to(stream, size)

    def with_format(self, fmt: Format) -> Entry:
        """A copy of this entry with another format (used by readers that refine detection)."""
        return dataclasses.replace(self, format=fmt)


def walk(
    paths: Iterable[str | os.PathLike[str]],
    *,
    limits: Limits = Limits(),
    expand_archives: bool = True,
) -> Iterator[Entry]:
    """Yield an :class:`Entry` for every file under ``paths`` and, recursively, every member.

    Directories are walked in sorted order. Symlinks to files are followed and
    reported under the link's name (``link_target``/``link_escapes`` say where they
    point); broken, looping and directory links are ``SYMLINK`` entries with a
    problem. Raises :class:`UsageError` only when a given path does not exist.
    """
    for raw in paths:
        for entry in walk_files(Path(raw)):
            yield entry
            if expand_archives:
                yield from expand(entry, limits)


def walk_files(path: Path) -> Iterator[Entry]:
    """Yield the files on disk under ``path`` (no archive expansion).

    Raises :class:`UsageError` if ``path`` does not exist; a path that exists but
    cannot be read (permissions, an I/O error) is an entry with a ``problem``, so it is
    reported with the other paths' results instead of ending the run.
    """
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise UsageError(f"{path}: no such file or directory") from exc
    except OSError as exc:
        yield _unreadable(path, str(path), exc)
        return
    try:
        # A top-level link to a directory is walked; a broken one is reported below.
        is_dir = path.is_dir() if stat.S_ISLNK(mode) else stat.S_ISDIR(mode)
    except OSError:
        is_dir = False
    if is_dir:
        yield from _walk_dir(path)
    else:
        yield _file_entry(path, str(path))


def _unreadable(path: Path, display: str, exc: OSError, what: str = "cannot read") -> Entry:
    return Entry(display, Format.UNKNOWN, 0, fs_path=path, problem=f"{what}: {exc.strerror or exc}")


def _walk_dir(root: Path) -> Iterator[Entry]:
    root_real = root.resolve()
    files: list[Path] = []
    links: list[Path] = []
    unlisted: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unlisted.append, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        for name in dirnames:
            if (here / name).is_symlink():
                links.append(here / name)
        for name in sorted(filenames):
            full = here / name
            (links if full.is_symlink() else files).append(full)
    # Links are followed to regular files wherever they point (reading is harmless;
    # the scanner flags links that escape). Targets of in-tree links are reported
    # under the link's name only: that is how the Hugging Face cache names files.
    shadowed: set[Path] = set()
    resolved_links: dict[Path, Path | str] = {}
    for link in links:
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            resolved_links[link] = f"broken or looping symlink ({exc.__class__.__name__})"
            continue
        if target.is_dir():
            resolved_links[link] = "symlink to a directory (not followed)"
            continue
        resolved_links[link] = target
        if target.is_relative_to(root_real):
            shadowed.add(target)
    for error in unlisted:
        # A directory that cannot be listed hides its files: an error, never clean.
        where = Path(error.filename) if error.filename else root
        yield _unreadable(where, str(where), error, "cannot list directory")
    for item in sorted(files + links):
        display = str(item)
        outcome = resolved_links.get(item)
        if outcome is None:
            if item.resolve() not in shadowed:
                yield _file_entry(item, display)
            continue
        target_text = os.readlink(item)
        if isinstance(outcome, Path):
            yield dataclasses.replace(
                _file_entry(outcome, display),
                link_target=target_text,
                link_escapes=not outcome.is_relative_to(root_real),
            )
        else:
            yield Entry(
                path=display,
                format=Format.SYMLINK,
                size=0,
                fs_path=item,
                problem=outcome,
                link_target=target_text,
            )


def _file_entry(path: Path, display: str) -> Entry:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return Entry(display, Format.UNKNOWN, 0, fs_path=path, problem="not a regular file")
        with open(path, "rb") as stream:
            head = stream.read(HEAD_BYTES)
    except OSError as exc:
        return _unreadable(path, display, exc)

    def opener() -> BinaryIO:
        return open(path, "rb")

    fmt = detect(head, name=display, size=info.st_size, open_stream=opener)
    return Entry(display, fmt, info.st_size, fs_path=path, data_offset=0, _opener=opener)


def expand(entry: Entry, limits: Limits) -> Iterator[Entry]:
    """Yield the members of ``entry`` (recursively) if it is an archive or compressed stream."""
    if entry.problem or entry.depth >= limits.max_depth:
        return
    if entry.format is Format.SEVEN_ZIP:
        children: Iterator[Entry] = _seven_zip_members(entry, limits)
    elif entry.format in _TAR_LIKE:
        children = _tar_members(entry, limits)
    elif entry.format in ARCHIVE_FORMATS:
        children = _zip_members(entry, limits)
    elif entry.format in _COMPRESSED:
        children = iter([_decompressed(entry, limits)])
    elif entry.format in _PICKLE_LIKE and _is_tar_polyglot(entry):
        # A pickle that is also a valid tar: torch.load tries tar first, so both
        # readings are scanned (the pickle by its rule, the tar's members here).
        children = _tar_members(entry, limits)
    else:
        return
    try:
        for child in children:
            yield child
            yield from expand(child, limits)
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        tarfile.TarError,
        FormatError,
        ValueError,
    ) as exc:
        yield Entry(
            path=f"{entry.path}!",
            format=Format.UNKNOWN,
            size=0,
            depth=entry.depth + 1,
            container=entry.path,
            container_format=entry.format,
            problem=f"archive could not be listed: {exc}",
        )


@functools.lru_cache(maxsize=8)
def seekable_source(entry: Entry, limits: Limits) -> Callable[[], BinaryIO]:
    """An opener giving a seekable stream of ``entry`` (spooling nested compressed data).

    Cached, so the rules and the walk that both open a nested archive share one spool.
    """
    if entry.fs_path is not None and entry.data_offset is not None:
        if entry.depth == 0:
            fs_path = entry.fs_path
            return lambda: open(fs_path, "rb")
        fs_path, offset, size = entry.fs_path, entry.data_offset, entry.size
        return lambda: open_slice(str(fs_path), offset, size)
    if entry.size > limits.max_spool_bytes:
        raise LimitExceededError(
            f"{entry.path}: nested archive of {entry.size:,} bytes is larger than the "
            f"{limits.max_spool_bytes:,}-byte spool limit"
        )
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the openers using it
    with entry.open() as source:
        while chunk := source.read(1024 * 1024):
            spool.write(chunk)
            if spool.tell() > limits.max_spool_bytes:
                spool.close()
                raise LimitExceededError(f"{entry.path}: nested archive exceeds the spool limit")
    spool.flush()
    length = spool.tell()

    def opener() -> BinaryIO:
        # The slice keeps ``spool`` alive through this closure; reads use pread.
        return open_slice(None, 0, length, fd=spool.fileno())

    return opener


class _ZipHandle:
    """Keeps one ``ZipFile`` open for all members of an archive (opened lazily)."""

    def __init__(self, opener: Callable[[], BinaryIO]) -> None:
        self._opener = opener
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()

    def get(self) -> zipfile.ZipFile:
        with self._lock:
            if self._zip is None:
                self._zip = zipfile.ZipFile(self._opener())
            return self._zip


def _zip_members(entry: Entry, limits: Limits) -> Iterator[Entry]:
    source = seekable_source(entry, limits)
    handle = _ZipHandle(source)
    archive = handle.get()
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise LimitExceededError(f"{entry.path}: {len(infos):,} members exceed the member limit")
    raw: BinaryIO | None = None
    if entry.fs_path is not None and entry.data_offset is not None:
        raw = source()
    skip_storages = entry.format in (Format.PYTORCH_ZIP, Format.TORCHSCRIPT)
    try:
        for info in infos:
            if info.is_dir():
                continue
            if skip_storages and _TORCH_STORAGE.match(info.filename):
                # Raw tensor bytes: torch never unpickles them, so they are not sniffed
                # (this keeps a multi-GB checkpoint's scan independent of its size).
                yield Entry(
                    f"{entry.path}!{info.filename}",
                    Format.UNKNOWN,
                    info.file_size,
                    depth=entry.depth + 1,
                    container=entry.path,
                    container_format=entry.format,
                )
                continue
            if info.flag_bits & 0x1:
                yield _sealed_member(entry, info.filename, info.file_size, "encrypted")
                continue
            yield _zip_member(entry, info, handle, raw, limits)
    finally:
        if raw is not None:
            raw.close()


def _zip_member(
    parent: Entry,
    info: zipfile.ZipInfo,
    handle: _ZipHandle,
    raw: BinaryIO | None,
    limits: Limits,
) -> Entry:
    display = f"{parent.path}!{info.filename}"
    data_offset: int | None = None
    if (
        raw is not None
        and info.compress_type == zipfile.ZIP_STORED
        and not info.flag_bits & 0x1
        and parent.data_offset is not None
    ):
        raw.seek(info.header_offset)
        local = raw.read(30)
        if len(local) == 30 and local[:4] == b"PK\x03\x04":
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            data_offset = parent.data_offset + info.header_offset + 30 + name_len + extra_len
    fs_path = parent.fs_path
    if data_offset is not None and fs_path is not None:
        offset, length = data_offset, info.compress_size

        def opener() -> BinaryIO:
            return open_slice(str(fs_path), offset, length)

    else:

        def opener() -> BinaryIO:
            try:
                inner = handle.get().open(info)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:
                raise FormatError(f"{display}: cannot open member ({exc})") from exc
            return bounded(inner, limits.max_member_bytes, display)

    return _member_entry(
        parent,
        display,
        info.file_size,
        opener,
        fs_path if data_offset is not None else None,
        data_offset,
    )


def _member_entry(
    parent: Entry,
    display: str,
    size: int,
    opener: Callable[[], BinaryIO],
    fs_path: Path | None,
    data_offset: int | None,
) -> Entry:
    problem = None
    fmt = Format.UNKNOWN
    try:
        with opener() as stream:
            head = _read_up_to(stream, HEAD_BYTES)
        fmt = detect(head, name=display, size=size, open_stream=opener)
    except (OSError, EOFError, FormatError, zipfile.BadZipFile, ValueError) as exc:
        problem = f"cannot read member: {exc}"
    return Entry(
        path=display,
        format=fmt,
        size=size,
        depth=parent.depth + 1,
        container=parent.path,
        container_format=parent.format,
        fs_path=fs_path,
        data_offset=data_offset,
        problem=problem,
        _opener=opener,
    )


def _tar_members(entry: Entry, limits: Limits) -> Iterator[Entry]:
    source = seekable_source(entry, limits)
    with source() as stream, tarfile.open(fileobj=stream, mode="r:") as archive:
        members = []
        for member in archive:
            members.append(member)
            if len(members) > limits.max_members:
                raise LimitExceededError(f"{entry.path}: too many members")
    if (entry.format not in _TAR_LIKE or entry.format is Format.TAR) and classify_tar_names(
        [m.name for m in members]
    ) != Format.TAR:
        entry = entry.with_format(Format.PYTORCH_LEGACY_TAR)
    for member in members:
        display = f"{entry.path}!{member.name}"
        if not member.isfile():
            kind = "symlink" if member.issym() or member.islnk() else "special file"
            if member.isdir():
                continue
            yield Entry(
                path=display,
                format=Format.SYMLINK if kind == "symlink" else Format.UNKNOWN,
                size=0,
                depth=entry.depth + 1,
                container=entry.path,
                container_format=entry.format,
                problem=f"archive member is a {kind}",
                link_target=member.linkname or None,
            )
            continue
        if entry.fs_path is not None and entry.data_offset is not None:
            absolute = entry.data_offset + member.offset_data
            opener: Callable[[], BinaryIO] = functools.partial(
                open_slice, str(entry.fs_path), absolute, member.size
            )
            yield _member_entry(entry, display, member.size, opener, entry.fs_path, absolute)
        else:
            opener = functools.partial(_stream_slice, source, member.offset_data, member.size)
            yield _member_entry(entry, display, member.size, opener, None, None)


def _is_tar_polyglot(entry: Entry) -> bool:
    """Whether a pickle-looking entry is also a tar whose first header checks out."""
    try:
        return is_tar_header(entry.head(512))
    except (OSError, FormatError):
        return False


def _stream_slice(source: Callable[[], BinaryIO], offset: int, length: int) -> BinaryIO:
    # A window that ends at the member's end (the limit on what the whole stream may
    # expand to was applied when it was spooled).
    return window(source(), offset, length)


def _sealed_member(parent: Entry, name: str, size: int, why: str, *, docs: bool = True) -> Entry:
    """A member whose bytes cannot be read: a problem when it could be a model file or
    code (or always, without ``docs``); encrypted documents are left to the archive rule."""
    problem = None
    if could_be_model(name) or not docs:
        problem = f"{why} member: its contents cannot be scanned"
    return Entry(
        path=f"{parent.path}!{name}",
        format=Format.UNKNOWN,
        size=size,
        depth=parent.depth + 1,
        container=parent.path,
        container_format=parent.format,
        problem=problem,
    )


def _seven_zip_members(entry: Entry, limits: Limits) -> Iterator[Entry]:
    from modelseal.formats.sevenzip import extract_7z, list_7z  # only when a 7z is met

    source = seekable_source(entry, limits)
    listing = list_7z(source, entry.path, limits.max_members)
    files = [m for m in listing.members if not m.is_dir]
    if listing.encrypted:
        for member in files:
            yield _sealed_member(entry, member.name, member.size, "encrypted 7z")
        return
    extracted = extract_7z(
        source,
        entry.path,
        max_member_bytes=limits.max_member_bytes,
        max_total_bytes=limits.max_spool_bytes,
    )
    seen: dict[str, int] = {}
    for member in files:
        display = f"{entry.path}!{member.name}"
        # py7zr names the n-th repeat of a name ``name_<n-1>`` and normalises "./".
        count = seen.get(member.name)
        seen[member.name] = 0 if count is None else count + 1
        key = member.name if count is None else f"{member.name}_{count}"
        key = "/".join(p for p in key.lstrip("/").split("/") if p not in ("", "."))
        if member.is_symlink:
            yield Entry(
                path=display,
                format=Format.SYMLINK,
                size=0,
                depth=entry.depth + 1,
                container=entry.path,
                container_format=entry.format,
                problem="archive member is a symlink",
            )
            continue
        size, opener = extracted.get(key, (member.size, None))
        if opener is None:
            if member.size == 0:
                opener = functools.partial(io.BytesIO, b"")
            else:
                yield _sealed_member(entry, member.name, member.size, "unextracted 7z", docs=False)
                continue
        yield _member_entry(entry, display, size, opener, None, None)


def _decompressed(entry: Entry, limits: Limits) -> Entry:
    name = entry.name
    lowered = name.lower()
    inner = next(
        (name[: -len(s)] for s in _COMPRESSED_SUFFIXES if lowered.endswith(s)), "<decompressed>"
    )
    if lowered.endswith(".tgz"):
        inner = name[:-4] + ".tar"
    display = f"{entry.path}!{inner}"
    kind = _COMPRESSED[entry.format]

    def opener() -> BinaryIO:
        return decompressing(entry.open(), kind, limits.max_member_bytes, display)

    return _member_entry(entry, display, -1, opener, None, None)


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
