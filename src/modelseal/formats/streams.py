"""Bounded byte streams: every read of untrusted data goes through a limit."""

from __future__ import annotations

import bz2
import io
import lzma
import os
import zipfile
import zlib
from typing import IO, Any, BinaryIO, cast

from modelseal.errors import FormatError, LimitExceededError

__all__ = [
    "BoundedReader",
    "DecompressingReader",
    "FileSlice",
    "StreamWindow",
    "bounded",
    "decompressing",
    "open_slice",
    "window",
]


class _Window(io.RawIOBase):
    """A read-only, seekable byte range ``[offset, offset + length)`` that ends at its end;
    subclasses say how to read ``count`` bytes at an absolute position."""

    def __init__(self, offset: int, length: int) -> None:
        self._offset = offset
        self._length = length
        self._pos = 0

    def _read_at(self, position: int, count: int) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._length - self._pos)
        if want <= 0:
            return 0
        data = self._read_at(self._offset + self._pos, want)
        memoryview(buffer)[: len(data)] = data
        self._pos += len(data)
        return len(data)


class FileSlice(_Window):
    """A read-only, seekable window ``[offset, offset + length)`` of a file.

    Archive members stored without compression are read through this, so they
    can be seeked and memory-mapped without copying. Reads use ``os.pread``, so
    several slices may share one descriptor (``fd``) without sharing a position.
    """

    def __init__(
        self, path: str | None, offset: int, length: int, *, fd: int | None = None
    ) -> None:
        super().__init__(offset, length)
        self._owned = fd is None
        self._fd = os.open(path, os.O_RDONLY) if fd is None else fd  # type: ignore[arg-type]

    def _read_at(self, position: int, count: int) -> bytes:
        return os.pread(self._fd, count, position)

    def close(self) -> None:
        if self._owned and not self.closed:
            os.close(self._fd)
        super().close()


class StreamWindow(_Window):
    """A read-only window ``[offset, offset + length)`` of another seekable stream.

    Unlike :class:`BoundedReader` this *ends* at the window's end (a tar member of a
    spooled ``.tar.gz`` is a window of the spool, not a stream that may not grow).
    """

    def __init__(self, inner: IO[bytes], offset: int, length: int) -> None:
        super().__init__(offset, length)
        self._inner = inner

    def _read_at(self, position: int, count: int) -> bytes:
        self._inner.seek(position)
        return self._inner.read(count)

    def close(self) -> None:
        self._inner.close()
        super().close()


class BoundedReader(io.RawIOBase):
    """Wrap a stream and raise :class:`LimitExceededError` past ``limit`` bytes.

    Declared sizes in archives can lie; this is what makes a lie harmless.
    """

    def __init__(self, inner: IO[bytes], limit: int, what: str) -> None:
        self._inner = inner
        self._limit = limit
        self._what = what
        self._count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self._inner.seekable())

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        result = self._inner.seek(pos, whence)
        self._count = result
        return result

    def tell(self) -> int:
        return self._count

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        try:
            data = self._inner.read(len(view))
        except (
            zlib.error,
            lzma.LZMAError,
            zipfile.BadZipFile,
            EOFError,
            NotImplementedError,
        ) as exc:
            # A corrupt compressed member: a property of the input, not a crash.
            raise FormatError(f"{self._what}: cannot be read ({exc})") from exc
        self._count += len(data)
        if self._count > self._limit:
            raise LimitExceededError(
                f"{self._what} expands beyond the {self._limit:,}-byte limit",
                advice="a decompression bomb, or raise the limit with --max-member-bytes",
            )
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class DecompressingReader(io.RawIOBase):
    """Stream-decompress gzip, bzip2, xz, zlib or lz4 frame data, refusing to expand
    past ``limit``."""

    _CHUNK = 256 * 1024

    def __init__(self, inner: IO[bytes], kind: str, limit: int, what: str) -> None:
        self._inner = inner
        self._limit = limit
        self._what = what
        self._count = 0
        self._pending = b""
        self._tail = b""
        self._eof = False
        self._decomp: Any
        self._is_zlib = kind in ("gzip", "zlib")
        if kind in ("gzip", "zlib"):
            self._decomp = zlib.decompressobj(16 + zlib.MAX_WBITS if kind == "gzip" else 0)
        elif kind == "bzip2":
            self._decomp = bz2.BZ2Decompressor()
        elif kind == "xz":
            self._decomp = lzma.LZMADecompressor()
        elif kind == "lz4":
            self._decomp = _lz4_decompressor(what)
        else:
            raise ValueError(f"unknown compression {kind!r}")

    def readable(self) -> bool:
        return True

    def _next_block(self) -> bytes:
        decomp = self._decomp
        if self._is_zlib:
            data = self._tail or self._inner.read(self._CHUNK)
            if not data:
                self._eof = True
                return cast(bytes, decomp.flush())
            out = decomp.decompress(data, self._CHUNK * 4)
            self._tail = decomp.unconsumed_tail
        else:
            data = self._inner.read(self._CHUNK) if decomp.needs_input else b""
            if not data and decomp.needs_input:
                self._eof = True
                return b""
            out = decomp.decompress(data, max_length=self._CHUNK * 4)
        if decomp.eof:
            self._eof = True
        return cast(bytes, out)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        try:
            while not self._pending and not self._eof:
                self._pending = self._next_block()
        except (zlib.error, OSError, EOFError, lzma.LZMAError, RuntimeError) as exc:
            # lz4 reports corrupt frames as RuntimeError.
            raise FormatError(f"{self._what}: corrupt compressed data ({exc})") from exc
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self._count += count
        if self._count > self._limit:
            raise LimitExceededError(
                f"{self._what} decompresses beyond the {self._limit:,}-byte limit",
                advice="a decompression bomb, or raise the limit with --max-member-bytes",
            )
        return count

    def close(self) -> None:
        self._inner.close()
        super().close()


def _lz4_decompressor(what: str) -> Any:
    try:
        import lz4.frame
    except ImportError as exc:
        raise FormatError(
            f"{what}: lz4-compressed, but the lz4 package is not installed; not scanned",
            advice="pip install 'modelseal[scan]'",
        ) from exc
    return lz4.frame.LZ4FrameDecompressor()


def open_slice(path: str | None, offset: int, length: int, *, fd: int | None = None) -> BinaryIO:
    """A buffered :class:`FileSlice` (small reads, as a pickle walk makes, stay cheap)."""
    return io.BufferedReader(FileSlice(path, offset, length, fd=fd))


def bounded(inner: IO[bytes], limit: int, what: str) -> BinaryIO:
    """A buffered :class:`BoundedReader`."""
    return io.BufferedReader(BoundedReader(inner, limit, what))


def window(inner: IO[bytes], offset: int, length: int) -> BinaryIO:
    """A buffered :class:`StreamWindow`."""
    return io.BufferedReader(StreamWindow(inner, offset, length))


def decompressing(inner: IO[bytes], kind: str, limit: int, what: str) -> BinaryIO:
    """A buffered :class:`DecompressingReader`."""
    return io.BufferedReader(DecompressingReader(inner, kind, limit, what))
