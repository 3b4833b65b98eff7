"""Builders for zip, tar and 7z test samples, well-formed and hostile.

``build_zip`` writes local headers and the central directory itself, so a test can
make them disagree, overlap, lie about sizes and CRCs, or set flag bits that
Python's ``zipfile`` writer would never produce. Payloads are harmless text.
"""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ZipMember",
    "build_tar",
    "build_zip",
    "nested_zip",
    "plain_zip",
    "seven_zip",
    "seven_zip_bytes",
    "seven_zip_renamed",
    "sparse_torch_zip",
    "symlink_member",
]


@dataclass(frozen=True)
class ZipMember:
    """One member for :func:`build_zip`; every ``None`` means "the honest value"."""

    name: str
    data: bytes = b"hello\n"
    deflate: bool = False
    #: Name written in the local header (defaults to ``name``).
    local_name: str | None = None
    flags: int = 0
    method: int | None = None
    #: CRC-32 declared in both headers.
    crc: int | None = None
    #: Uncompressed size declared in the central directory.
    file_size: int | None = None
    create_system: int = 0
    external_attr: int = 0
    #: Point the central record at the local header of member ``reuse`` (no new local
    #: header is written): members then overlap.
    reuse: int | None = None
    #: Write the local header and data but leave the member out of the central directory.
    hidden: bool = False


def build_zip(members: Sequence[ZipMember], *, prefix: bytes = b"") -> bytes:
    """Write a zip archive byte by byte (stored or deflated members)."""
    out = io.BytesIO()
    out.write(prefix)
    offsets: list[int] = []
    central = io.BytesIO()
    listed = 0
    for member in members:
        data = member.data
        packed = zlib.compress(data, 9)[2:-4] if member.deflate else data
        method = member.method if member.method is not None else (8 if member.deflate else 0)
        crc = member.crc if member.crc is not None else zlib.crc32(data)
        size = member.file_size if member.file_size is not None else len(data)
        name = member.name.encode()
        if member.reuse is not None:
            offset = offsets[member.reuse]
        else:
            offset = out.tell() - len(prefix)
            local = (member.local_name or member.name).encode()
            out.write(
                struct.pack(
                    "<4sHHHHHIIIHH",
                    b"PK\x03\x04",
                    20,
                    member.flags,
                    method,
                    0,
                    0x21,
                    crc,
                    len(packed),
                    min(size, 0xFFFFFFFE),
                    len(local),
                    0,
                )
            )
            out.write(local)
            out.write(packed)
        offsets.append(offset)
        if member.hidden:
            continue
        listed += 1
        central.write(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                (member.create_system << 8) | 20,
                20,
                member.flags,
                method,
                0,
                0x21,
                crc,
                len(packed),
                min(size, 0xFFFFFFFE),
                len(name),
                0,
                0,
                0,
                0,
                member.external_attr,
                offset,
            )
        )
        central.write(name)
    start = out.tell() - len(prefix)
    directory = central.getvalue()
    out.write(directory)
    out.write(
        struct.pack(
            "<4sHHHHIIH",
            b"PK\x05\x06",
            0,
            0,
            listed,
            listed,
            len(directory),
            start,
            0,
        )
    )
    return out.getvalue()


def symlink_member(name: str, target: str) -> ZipMember:
    """A zip member that unzip and other POSIX extractors turn into a symlink."""
    return ZipMember(
        name,
        target.encode(),
        create_system=3,
        external_attr=(stat.S_IFLNK | 0o777) << 16,
    )


def plain_zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A normal zip written by Python's zipfile."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def nested_zip(levels: int, payload: bytes = b"hello\n") -> bytes:
    """A zip holding a zip holding ... ``levels`` zips deep, with a text file at the bottom."""
    data = plain_zip({"readme.txt": payload})
    for level in range(1, levels):
        data = plain_zip({f"level{level}.zip": data}, compression=zipfile.ZIP_STORED)
    return data


def build_tar(path: Path, items: Sequence[tuple[str, str, bytes | str]]) -> Path:
    """Write a tar: each item is ``(kind, name, data_or_link_target)`` with kind
    ``file``, ``symlink``, ``hardlink``, ``fifo`` or ``chardev``."""
    kinds = {
        "file": tarfile.REGTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "fifo": tarfile.FIFOTYPE,
        "chardev": tarfile.CHRTYPE,
    }
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        for kind, name, value in items:
            info = tarfile.TarInfo(name)
            info.type = kinds[kind]
            if kind == "file":
                data = value if isinstance(value, bytes) else value.encode()
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                info.linkname = value if isinstance(value, str) else value.decode()
                archive.addfile(info)
    return path


def seven_zip_bytes() -> bytes:
    """The 32-byte signature header of an (empty) 7z archive."""
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24)


def seven_zip(members: dict[str, bytes], *, password: str | None = None) -> bytes:
    """A real 7z archive written by py7zr (optionally encrypted, headers included)."""
    import py7zr

    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w", password=password) as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return buffer.getvalue()


def seven_zip_renamed(members: dict[str, bytes], old: str, new: str) -> bytes:
    """A 7z whose header names member ``old`` as ``new`` (same length): py7zr refuses to
    write hostile names, so the plain (unencoded) header is patched and its CRCs redone."""
    import py7zr

    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.set_encoded_header_mode(False)
        for name, data in members.items():
            archive.writestr(data, name)
    raw, patched = old.encode("utf-16-le"), new.encode("utf-16-le")
    assert len(raw) == len(patched) and buffer.getvalue().count(raw) == 1
    out = bytearray(buffer.getvalue().replace(raw, patched))
    offset, size = struct.unpack("<QQ", out[12:28])
    out[28:32] = struct.pack("<I", zlib.crc32(out[32 + offset : 32 + offset + size]))
    out[8:12] = struct.pack("<I", zlib.crc32(out[12:32]))
    return bytes(out)


def sparse_torch_zip(path: Path, storage_bytes: int) -> Path:
    """A PyTorch-style zip whose one storage member is a sparse hole of ``storage_bytes``
    (cheap to create, expensive to read: a scan must not read it)."""
    pkl = b"\x80\x02}q\x00."
    members = [("archive/data.pkl", pkl, zlib.crc32(pkl)), ("archive/data/0", None, 0)]
    central = io.BytesIO()
    with open(path, "wb") as out:
        for name, data, crc in members:
            offset = out.tell()
            size = len(data) if data is not None else storage_bytes
            encoded = name.encode()
            out.write(
                struct.pack(
                    "<4sHHHHHIIIHH",
                    b"PK\x03\x04",
                    20,
                    0,
                    0,
                    0,
                    0x21,
                    crc,
                    size,
                    size,
                    len(encoded),
                    0,
                )
            )
            out.write(encoded)
            if data is not None:
                out.write(data)
            else:
                out.seek(size, io.SEEK_CUR)
            central.write(
                struct.pack(
                    "<4sHHHHHHIIIHHHHHII",
                    b"PK\x01\x02",
                    20,
                    20,
                    0,
                    0,
                    0,
                    0x21,
                    crc,
                    size,
                    size,
                    len(encoded),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
            )
            central.write(encoded)
        start = out.tell()
        directory = central.getvalue()
        out.write(directory)
        out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(directory), start, 0))
    return path
