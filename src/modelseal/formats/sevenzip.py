"""Read 7z archives with py7zr, bounded like zips (member count, sizes, ratio, depth).

7z packs members into solid blocks that can only be decompressed from their start, so
an archive's members are extracted in one pass into one bounded temporary file and
scanned from there. Every byte written counts against ``Limits.max_member_bytes`` per
member and ``Limits.max_spool_bytes`` for the whole archive: the sizes an archive
declares can lie, the count of bytes written cannot.
Nothing in the archive is written to a path chosen by the archive.
"""

from __future__ import annotations

import io
import lzma
import tempfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from modelseal.errors import FormatError, LimitExceededError

__all__ = ["SevenZipListing", "SevenZipMember", "extract_7z", "list_7z"]


@dataclass(frozen=True)
class SevenZipMember:
    """One member as the archive's header lists it."""

    name: str
    #: Declared uncompressed size.
    size: int
    is_dir: bool
    is_symlink: bool


@dataclass(frozen=True)
class SevenZipListing:
    """An archive's members, and whether reading them needs a password."""

    members: tuple[SevenZipMember, ...]
    encrypted: bool


def _py7zr(what: str) -> Any:
    try:
        import py7zr
    except ImportError as exc:
        raise FormatError(
            f"{what}: 7z archive, but the py7zr package is not installed; not scanned",
            advice="pip install 'modelseal[scan]'",
        ) from exc
    return py7zr


def _errors(py7zr: Any) -> tuple[type[BaseException], ...]:
    return (
        py7zr.exceptions.ArchiveError,
        py7zr.exceptions.PasswordRequired,
        py7zr.exceptions.AbsolutePathError,
        lzma.LZMAError,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
    )


def list_7z(opener: Callable[[], BinaryIO], what: str, max_members: int) -> SevenZipListing:
    """The members a 7z archive's header lists (raise ``FormatError`` if unreadable)."""
    py7zr = _py7zr(what)
    try:
        with opener() as stream, py7zr.SevenZipFile(stream, "r") as archive:
            infos = archive.list()
            if len(infos) > max_members:
                raise LimitExceededError(
                    f"{what}: {len(infos):,} members exceed the member limit ({max_members:,})"
                )
            encrypted = bool(archive.needs_password())
    except LimitExceededError:
        raise
    except _errors(py7zr) as exc:
        raise FormatError(
            f"{what}: not a readable 7z archive ({exc or type(exc).__name__})"
        ) from exc
    members = tuple(
        SevenZipMember(i.filename, int(i.uncompressed or 0), i.is_directory, i.is_symlink)
        for i in infos
    )
    return SevenZipListing(members, encrypted)


class _Spool:
    """One temporary file holding every extracted member of an archive, back to back.

    py7zr extracts members one after another when given a file object (its parallel
    mode needs a file name), so each member's bytes are contiguous; a write that would
    interleave two members is refused rather than trusted.
    """

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the openers
        self.used = 0
        self.writer: _Sink | None = None
        self.lock = threading.Lock()

    def append(self, sink: _Sink, data: bytes | bytearray) -> None:
        with self.lock:
            if sink.start is None:
                sink.start = self.used
            elif self.writer is not sink:
                raise FormatError(f"{self.what}: 7z members were extracted interleaved")
            self.writer = sink
            self.used += len(data)
            if self.used > self.limit:
                raise LimitExceededError(
                    f"{self.what}: 7z archive expands beyond the {self.limit:,}-byte limit",
                    advice="a decompression bomb, or raise --max-member-bytes",
                )
            self.file.write(data)


class _Sink:
    """Receives one member's bytes (py7zr's ``Py7zIO`` protocol), bounded."""

    def __init__(self, name: str, spool: _Spool, limit: int) -> None:
        self.name = name
        self._spool = spool
        self._limit = limit
        self.start: int | None = None
        self.length = 0

    def write(self, data: bytes | bytearray) -> int:
        self.length += len(data)
        if self.length > self._limit:
            raise LimitExceededError(
                f"{self._spool.what}!{self.name} expands beyond the {self._limit:,}-byte limit",
                advice="a decompression bomb, or raise the limit with --max-member-bytes",
            )
        self._spool.append(self, data)
        return len(data)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.length

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self.length

    def close(self) -> None:
        pass

    def opener(self) -> Callable[[], BinaryIO]:
        """Open the member's bytes again (each call an independent stream)."""
        from modelseal.formats.streams import open_slice

        if self.start is None:  # nothing was written: an empty member
            return lambda: io.BytesIO(b"")
        spool, start, length = self._spool, self.start, self.length
        # The closure keeps the spool file alive; reads use pread, so openers do not
        # interfere with one another.
        return lambda: open_slice(None, start, length, fd=spool.file.fileno())


def extract_7z(
    opener: Callable[[], BinaryIO], what: str, *, max_member_bytes: int, max_total_bytes: int
) -> dict[str, tuple[int, Callable[[], BinaryIO]]]:
    """Extract every file member; return ``{name as py7zr names it: (size, opener)}``.

    Duplicate names come back as ``name_0``, ``name_1``... (py7zr's naming).
    """
    py7zr = _py7zr(what)
    spool = _Spool(max_total_bytes, what)
    sinks: list[_Sink] = []
    lock = threading.Lock()

    class Factory:
        """py7zr's ``WriterFactory`` protocol: one bounded sink per member."""

        def create(self, filename: str) -> _Sink:
            sink = _Sink(filename, spool, max_member_bytes)
            with lock:
                sinks.append(sink)
            return sink

    try:
        with opener() as stream, py7zr.SevenZipFile(stream, "r") as archive:
            archive.extractall(factory=Factory())
    except LimitExceededError:
        raise
    except _errors(py7zr) as exc:
        raise FormatError(
            f"{what}: 7z members cannot be extracted ({exc or type(exc).__name__})"
        ) from exc
    spool.file.flush()
    return {sink.name: (sink.length, sink.opener()) for sink in sinks}
