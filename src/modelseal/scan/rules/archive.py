"""Structural checks of zip and tar containers (and the 7z archives we cannot open).

Every zip-based model format (plain zip, PyTorch and TorchScript checkpoints, ``.npz``,
``.keras``) and every tar goes through these checks before its members are scanned:

* names that escape an extraction directory (``..``), absolute names, Windows drive
  letters, backslashes and control characters in names;
* symlink and hardlink members, and where their targets point;
* duplicate names and local headers whose name or method disagrees with the central
  directory: two readers of such an archive see different files, which is how a
  payload hides from one tool and runs in another;
* local headers that the central directory does not list (a member only streaming
  readers see), and overlapping member data (the trick behind non-recursive zip
  bombs and zip quines), declared compression ratios and total sizes of bombs;
* CRC-32 mismatches, found by streaming members through the decompressor. Raw tensor
  storages of PyTorch zips (``*/data/<n>``) and members above
  :data:`CRC_MEMBER_MAX_BYTES` are not streamed, so a multi-GB checkpoint scans in the
  time it takes to read its central directory;
* encryption, unsupported compression and reserved flag bits (contents unverifiable);
* archives nested deeper than ``options.limits.max_depth``, whose members are not opened.

7z archives (read with py7zr) get the name, link, duplicate and bomb checks from their
header; their members are extracted, bounded, and scanned like zip members.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import BinaryIO

from modelseal.errors import FormatError
from modelseal.formats.claims import could_be_model
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, Limits, seekable_source
from modelseal.scan.interface import Rule, ScanOptions
from modelseal.scan.model import Finding, RuleInfo, Severity

__all__ = [
    "BOMB_MIN_BYTES",
    "BOMB_RATIO",
    "CRC_MEMBER_MAX_BYTES",
    "CRC_TOTAL_MAX_BYTES",
    "HIDDEN_SCAN_MAX_BYTES",
    "ArchiveRule",
]

#: Members larger than this (declared uncompressed size) are not CRC-checked.
CRC_MEMBER_MAX_BYTES = 64 * 1024**2
#: At most this many bytes are decompressed per archive for CRC checks.
CRC_TOTAL_MAX_BYTES = 256 * 1024**2
#: At most this many bytes between listed members are searched for hidden local headers.
HIDDEN_SCAN_MAX_BYTES = 16 * 1024**2
#: A member declaring more than this ratio of uncompressed to compressed bytes...
BOMB_RATIO = 1000
#: ...and at least this many uncompressed bytes is reported as a decompression bomb.
BOMB_MIN_BYTES = 16 * 1024**2
#: An archive whose members declare more than ``limits.max_member_bytes`` in total with
#: an overall ratio above this is reported as a bomb too.
BOMB_TOTAL_RATIO = 100

_ZIP_FORMATS = frozenset(
    {Format.ZIP, Format.PYTORCH_ZIP, Format.TORCHSCRIPT, Format.NUMPY_NPZ, Format.KERAS}
)
_TAR_FORMATS = frozenset({Format.TAR, Format.PYTORCH_LEGACY_TAR})
_COMPRESSED_FORMATS = frozenset({Format.GZIP, Format.BZIP2, Format.XZ, Format.ZLIB, Format.LZ4})
_CONTAINER_FORMATS = _ZIP_FORMATS | _TAR_FORMATS | _COMPRESSED_FORMATS | {Format.SEVEN_ZIP}

_TORCH_STORAGE = re.compile(r"^[^/]+/data/\d+$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_DATA_DESCRIPTOR_MAX = 24

# General purpose flag bits (APPNOTE 4.4.4).
_FLAG_ENCRYPTED = 0x0001
_FLAG_DATA_DESCRIPTOR = 0x0008
_FLAG_PATCHED = 0x0020
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_MASKED_HEADERS = 0x2000
_FLAGS_ENCRYPTION = _FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS
#: Bits that are reserved or that no model writer sets.
_FLAGS_ODD = _FLAG_PATCHED | 0x0080 | 0x0100 | 0x0200 | 0x0400 | 0x1000 | 0x4000 | 0x8000
#: Compression methods Python's zipfile (and so this scanner) can decompress.
_SUPPORTED_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)


def _info(rule_id: str, name: str, description: str, severity: Severity) -> RuleInfo:
    return RuleInfo(rule_id, name, description, severity)


TRAVERSAL = _info(
    "MS-ARCHIVE-PATH-TRAVERSAL",
    "Archive member escapes the extraction directory",
    "A member name climbs out of the extraction directory with '..': extracting the "
    "archive writes a file elsewhere on the machine (zip slip), e.g. over code that runs.",
    Severity.CRITICAL,
)
ABSOLUTE = _info(
    "MS-ARCHIVE-ABSOLUTE-PATH",
    "Archive member has an absolute path",
    "A member name is absolute: naive extractors write it at that path on the machine.",
    Severity.HIGH,
)
ODD_NAME = _info(
    "MS-ARCHIVE-ODD-NAME",
    "Archive member name with a drive letter, backslash or control character",
    "Such names are read differently on Windows and POSIX or by different tools, so "
    "what one tool checks is not what another extracts.",
    Severity.MEDIUM,
)
SYMLINK = _info(
    "MS-ARCHIVE-SYMLINK",
    "Archive member is a link",
    "A symlink or hardlink member inside the archive; model archives normally hold "
    "regular files only.",
    Severity.LOW,
)
SYMLINK_ESCAPE = _info(
    "MS-ARCHIVE-SYMLINK-ESCAPE",
    "Archive link points outside the archive",
    "A symlink or hardlink member points to an absolute path or climbs out of the "
    "extraction directory: extracting it exposes or overwrites files on the machine.",
    Severity.HIGH,
)
SPECIAL_FILE = _info(
    "MS-ARCHIVE-SPECIAL-FILE",
    "Archive member is a device or FIFO",
    "Device nodes and FIFOs have no place in a model archive.",
    Severity.MEDIUM,
)
DUPLICATE = _info(
    "MS-ARCHIVE-DUPLICATE-NAME",
    "Duplicate member names",
    "Two members share a name: readers disagree about which one is the file (Python's "
    "zipfile takes the last, others the first), so a scanner can check one copy while "
    "the loader runs the other.",
    Severity.HIGH,
)
HEADER_MISMATCH = _info(
    "MS-ARCHIVE-HEADER-MISMATCH",
    "Local header disagrees with the central directory",
    "A member's local header names a different file, compression method or size than "
    "the central directory: streaming and seeking readers see different archives.",
    Severity.HIGH,
)
HIDDEN_MEMBER = _info(
    "MS-ARCHIVE-HIDDEN-MEMBER",
    "Zip member missing from the central directory",
    "A local file header sits where the central directory lists nothing: streaming "
    "readers extract a file that seeking readers (and most scanners) never see.",
    Severity.HIGH,
)
OVERLAP = _info(
    "MS-ARCHIVE-OVERLAP",
    "Overlapping zip members",
    "The data of two members (or of a member and the central directory) overlap: the "
    "construction of non-recursive zip bombs and zip quines; never produced by a writer.",
    Severity.HIGH,
)
BOMB = _info(
    "MS-ARCHIVE-ZIP-BOMB",
    "Decompression bomb",
    "Declared uncompressed sizes are far larger than the archive (ratio or total-size "
    "limit exceeded): extracting or loading it exhausts memory or disk.",
    Severity.HIGH,
)
CRC_MISMATCH = _info(
    "MS-ARCHIVE-CRC-MISMATCH",
    "CRC-32 mismatch",
    "A member's bytes do not match the CRC-32 its headers declare: the member was "
    "altered after the archive was written, or the archive is corrupt.",
    Severity.HIGH,
)
ENCRYPTED = _info(
    "MS-ARCHIVE-ENCRYPTED",
    "Encrypted archive member",
    "An encrypted member cannot be scanned. Low for documents (text, JSON, images); a "
    "member that could be a model file or code is high, and its own result is an error.",
    Severity.LOW,
)
ODD_FLAGS = _info(
    "MS-ARCHIVE-ODD-FLAGS",
    "Unsupported compression or reserved flag bits",
    "A member uses a compression method this scanner cannot read, or sets reserved or "
    "patch-data flag bits no model writer sets; its contents are unverified.",
    Severity.MEDIUM,
)
TOO_DEEP = _info(
    "MS-ARCHIVE-TOO-DEEP",
    "Archive nested beyond the depth limit",
    "An archive inside archives deeper than the configured depth limit; its members "
    "were not opened and are unverified (nesting is also how recursive bombs work).",
    Severity.MEDIUM,
)


class ArchiveRule(Rule):
    """Checks the structure of zip, tar and 7z containers (not their members' contents)."""

    formats = _CONTAINER_FORMATS
    infos = (
        TRAVERSAL,
        ABSOLUTE,
        ODD_NAME,
        SYMLINK,
        SYMLINK_ESCAPE,
        SPECIAL_FILE,
        DUPLICATE,
        HEADER_MISMATCH,
        HIDDEN_MEMBER,
        OVERLAP,
        BOMB,
        CRC_MISMATCH,
        ENCRYPTED,
        ODD_FLAGS,
        TOO_DEEP,
    )

    def check(self, entry: Entry, options: ScanOptions) -> Iterator[Finding]:
        """Yield structural findings for one container entry."""
        limits = options.limits
        if entry.depth >= limits.max_depth:
            yield _finding(
                TOO_DEEP,
                f"{entry.format.value} archive nested {entry.depth} levels deep (limit "
                f"{limits.max_depth}): its members were not scanned",
                entry.path,
            )
            return
        if entry.format in _ZIP_FORMATS:
            yield from _check_zip(entry, limits)
        elif entry.format in _TAR_FORMATS:
            yield from _check_tar(entry, limits)
        elif entry.format is Format.SEVEN_ZIP:
            yield from _check_7z(entry, limits)


def _finding(
    info: RuleInfo, message: str, location: str, severity: Severity | None = None
) -> Finding:
    return Finding(info.id, severity or info.default_severity, message, location)


# -- names -------------------------------------------------------------------------------


def _name_findings(name: str) -> Iterator[Finding]:
    """Findings about one member name (as stored in the archive)."""
    if _CONTROL.search(name):
        yield _finding(ODD_NAME, f"member name {name!r} contains control characters", name)
    if "\\" in name or _DRIVE.match(name):
        yield _finding(ODD_NAME, f"member name {name!r} has a drive letter or backslashes", name)
    normal = name.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal):
        yield _finding(ABSOLUTE, f"member {name!r} has an absolute path", name)
    elif _escapes(normal):
        yield _finding(
            TRAVERSAL, f"member {name!r} is written outside the extraction directory", name
        )


def _escapes(relative: str) -> bool:
    """True if a relative path climbs above its starting directory at any point."""
    depth = 0
    for part in relative.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _link_findings(name: str, target: str, *, hard: bool) -> Iterator[Finding]:
    kind = "hardlink" if hard else "symlink"
    normal = target.replace("\\", "/")
    # A symlink target is relative to the link's directory; a hardlink's to the root.
    base = "" if hard else posixpath.dirname(name.replace("\\", "/"))
    if normal.startswith("/") or _DRIVE.match(normal) or _escapes(posixpath.join(base, normal)):
        yield _finding(
            SYMLINK_ESCAPE, f"{kind} member {name!r} points outside the archive: {target!r}", name
        )
    else:
        yield _finding(SYMLINK, f"{kind} member {name!r} -> {target!r}", name)


def _duplicate_findings(names: list[str]) -> Iterator[Finding]:
    for name, count in Counter(names).items():
        if count > 1:
            yield _finding(DUPLICATE, f"{count} members are named {name!r}", name)


# -- zip ---------------------------------------------------------------------------------


def _check_zip(entry: Entry, limits: Limits) -> Iterator[Finding]:
    opener = seekable_source(entry, limits)
    with opener() as stream:
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
            raise FormatError(
                f"{entry.path}: not a readable zip archive ({exc})",
                advice="the file starts like a zip but its central directory is damaged "
                "or truncated; it was not scanned",
            ) from exc
        with archive:
            infos = archive.infolist()
            if len(infos) > limits.max_members:
                raise FormatError(f"{entry.path}: {len(infos):,} members exceed the member limit")
            yield from _duplicate_findings([i.filename for i in infos])
            for info in infos:
                yield from _name_findings(info.filename)
                yield from _flag_findings(info)
            header = list(_local_header_findings(stream, archive, infos))
            yield from header
            yield from _bomb_findings(entry, infos, limits)
            yield from _symlink_findings(archive, infos)
            # Members whose headers disagree are already reported; zipfile refuses them.
            mismatched = {f.location for f in header if f.rule == HEADER_MISMATCH.id}
            readable = [i for i in infos if i.filename not in mismatched]
            yield from _crc_findings(entry, archive, readable)


def _flag_findings(info: zipfile.ZipInfo) -> Iterator[Finding]:
    name = info.filename
    if info.flag_bits & _FLAGS_ENCRYPTION:
        yield _encrypted_finding(name)
    odd = info.flag_bits & _FLAGS_ODD
    if odd:
        yield _finding(ODD_FLAGS, f"member {name!r} sets reserved/patch flag bits {odd:#06x}", name)
    if info.compress_type not in _SUPPORTED_METHODS:
        yield _finding(
            ODD_FLAGS,
            f"member {name!r} uses unsupported compression method {info.compress_type}; "
            "its contents are unverified",
            name,
        )


def _encrypted_finding(name: str) -> Finding:
    model = could_be_model(name)
    return _finding(
        ENCRYPTED,
        f"member {name!r} is encrypted and cannot be scanned"
        + (" (it could be a model file or code)" if model else ""),
        name,
        Severity.HIGH if model else None,
    )


def _local_header_findings(
    stream: BinaryIO, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]
) -> Iterator[Finding]:
    """Compare local headers with the central directory; find overlapping extents."""
    extents: list[tuple[int, int, str]] = []
    for info in infos:
        name = info.filename
        stream.seek(info.header_offset)
        raw = stream.read(_LOCAL_HEADER.size)
        if len(raw) < _LOCAL_HEADER.size or raw[:4] != b"PK\x03\x04":
            yield _finding(
                HEADER_MISMATCH, f"member {name!r} has no local header at its offset", name
            )
            continue
        _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = _LOCAL_HEADER.unpack(
            raw
        )
        local_name_raw = stream.read(name_len)
        encoding = "utf-8" if flags & 0x800 else "cp437"
        local_name = local_name_raw.decode(encoding, errors="replace")
        problems = []
        if local_name != info.orig_filename:
            problems.append(f"local name {local_name!r}")
        if method != info.compress_type:
            problems.append(f"local method {method} vs central {info.compress_type}")
        if not flags & _FLAG_DATA_DESCRIPTOR and csize != 0xFFFFFFFF and usize != 0xFFFFFFFF:
            if (csize, usize) != (info.compress_size, info.file_size):
                problems.append(f"local sizes {csize}/{usize}")
            if crc != info.CRC:
                problems.append(f"local CRC {crc:#010x}")
        elif (
            (csize or usize)
            and (csize, usize) != (info.compress_size, info.file_size)
            and 0xFFFFFFFF not in (csize, usize)
        ):
            problems.append(f"local sizes {csize}/{usize}")
        if problems:
            yield _finding(
                HEADER_MISMATCH,
                f"member {name!r} disagrees with its local header: {', '.join(problems)}",
                name,
            )
        start = info.header_offset
        end = start + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        extents.append((start, end, name))
    extents.sort()
    for (_, end, name), (start, _, other) in itertools.pairwise(extents):
        if start < end:
            yield _finding(OVERLAP, f"members {name!r} and {other!r} overlap", other)
    if extents and extents[-1][1] > archive.start_dir:
        name = extents[-1][2]
        yield _finding(OVERLAP, f"member {name!r} overlaps the central directory", name)
    yield from _hidden_findings(stream, extents, archive.start_dir)


def _hidden_findings(
    stream: BinaryIO, extents: list[tuple[int, int, str]], start_dir: int
) -> Iterator[Finding]:
    """Local headers in the gaps between listed members (or before the first one)."""
    gaps = [(0, extents[0][0])] if extents else [(0, start_dir)]
    gaps += [(end, start) for (_, end, _), (start, _, _) in itertools.pairwise(extents)]
    if extents:
        gaps.append((extents[-1][1], start_dir))
    budget = HIDDEN_SCAN_MAX_BYTES
    for start, end in gaps:
        # A data descriptor (at most 24 bytes) legitimately follows a member's data.
        if end - start <= _DATA_DESCRIPTOR_MAX or budget <= 0:
            continue
        length = min(end - start, budget)
        budget -= length
        stream.seek(start)
        gap = stream.read(length)
        at = gap.find(b"PK\x03\x04")
        if at < 0 or at + _LOCAL_HEADER.size > len(gap):
            continue
        name_len = struct.unpack("<H", gap[at + 26 : at + 28])[0]
        raw_name = gap[at + 30 : at + 30 + name_len]
        name = raw_name.decode("utf-8", errors="replace")
        yield _finding(
            HIDDEN_MEMBER,
            f"local header for {name!r} at offset {start + at} is not listed in the central "
            "directory: streaming readers see it, seeking readers do not",
            name or f"offset {start + at}",
        )


def _bomb_findings(entry: Entry, infos: list[zipfile.ZipInfo], limits: Limits) -> Iterator[Finding]:
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= BOMB_MIN_BYTES and ratio > BOMB_RATIO:
            yield _finding(
                BOMB,
                f"member {info.filename!r} declares {info.file_size:,} bytes from "
                f"{info.compress_size:,} (ratio {ratio:,.0f}:1)",
                info.filename,
            )
    total = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    if total > limits.max_member_bytes and total / packed > BOMB_TOTAL_RATIO:
        yield _finding(
            BOMB,
            f"members declare {total:,} bytes in total from {packed:,} compressed "
            f"(limit {limits.max_member_bytes:,})",
            entry.path,
        )


def _is_zip_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _symlink_findings(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> Iterator[Finding]:
    for info in infos:
        if not _is_zip_symlink(info):
            continue
        target = "?"
        if info.file_size <= 4096 and not info.flag_bits & _FLAGS_ENCRYPTION:
            try:
                with archive.open(info) as member:
                    target = member.read(4096).decode("utf-8", errors="replace")
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError):
                target = "?"
        if target == "?":
            yield _finding(
                SYMLINK_ESCAPE,
                f"symlink member {info.filename!r} has an unreadable target",
                info.filename,
            )
            continue
        yield from _link_findings(info.filename, target, hard=False)


def _crc_findings(
    entry: Entry, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]
) -> Iterator[Finding]:
    skip_storages = entry.format in (Format.PYTORCH_ZIP, Format.TORCHSCRIPT)
    budget = CRC_TOTAL_MAX_BYTES
    for info in infos:
        if (
            info.is_dir()
            or info.flag_bits & _FLAGS_ENCRYPTION
            or info.compress_type not in _SUPPORTED_METHODS
            or info.file_size > CRC_MEMBER_MAX_BYTES
            or info.file_size > budget
            or (skip_storages and _TORCH_STORAGE.match(info.filename))
        ):
            continue
        budget -= info.file_size
        try:
            # zipfile stops at the declared size and raises on a CRC mismatch at EOF.
            with archive.open(info) as member:
                while member.read(1024 * 1024):
                    pass
        except zipfile.BadZipFile as exc:
            if "CRC" in str(exc):
                yield _finding(
                    CRC_MISMATCH,
                    f"member {info.filename!r}: its bytes do not match the declared "
                    f"CRC-32 {info.CRC:#010x}",
                    info.filename,
                )
            else:
                yield _finding(
                    CRC_MISMATCH, f"member {info.filename!r} is unreadable: {exc}", info.filename
                )
        except (OSError, EOFError, zlib.error, ValueError, RuntimeError) as exc:
            yield _finding(
                CRC_MISMATCH,
                f"member {info.filename!r} cannot be decompressed ({exc}); its contents "
                "are unverified",
                info.filename,
            )


# -- tar ---------------------------------------------------------------------------------


def _check_tar(entry: Entry, limits: Limits) -> Iterator[Finding]:
    opener = seekable_source(entry, limits)
    members: list[tarfile.TarInfo] = []
    with opener() as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r:") as archive:
                for member in archive:
                    members.append(member)
                    if len(members) > limits.max_members:
                        raise FormatError(f"{entry.path}: too many members")
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            # Keep what was listed before the damage (findings from a partial parse).
            yield from _tar_member_findings(members)
            raise FormatError(
                f"{entry.path}: tar archive is damaged or truncated ({exc})",
                advice="members after the damage were not scanned",
            ) from exc
    yield from _tar_member_findings(members)


def _tar_member_findings(members: list[tarfile.TarInfo]) -> Iterator[Finding]:
    yield from _duplicate_findings([m.name for m in members if not m.isdir()])
    for member in members:
        yield from _name_findings(member.name)
        if member.issym() or member.islnk():
            yield from _link_findings(member.name, member.linkname, hard=member.islnk())
        elif member.ischr() or member.isblk() or member.isfifo():
            yield _finding(SPECIAL_FILE, f"member {member.name!r} is a device or FIFO", member.name)


# -- 7z ----------------------------------------------------------------------------------


def _check_7z(entry: Entry, limits: Limits) -> Iterator[Finding]:
    from modelseal.formats.sevenzip import list_7z  # only when a 7z is met

    listing = list_7z(seekable_source(entry, limits), entry.path, limits.max_members)
    files = [m for m in listing.members if not m.is_dir]
    yield from _duplicate_findings([m.name for m in files])
    for member in files:
        yield from _name_findings(member.name)
        if member.is_symlink:
            yield _finding(SYMLINK, f"symlink member {member.name!r}", member.name)
        if listing.encrypted:
            yield _encrypted_finding(member.name)
        ratio = member.size / max(entry.size, 1)
        if member.size >= BOMB_MIN_BYTES and ratio > BOMB_RATIO:
            yield _finding(
                BOMB,
                f"member {member.name!r} declares {member.size:,} bytes from a "
                f"{entry.size:,}-byte archive (ratio {ratio:,.0f}:1)",
                member.name,
            )
    total = sum(m.size for m in files)
    if total > limits.max_member_bytes and total / max(entry.size, 1) > BOMB_TOTAL_RATIO:
        yield _finding(
            BOMB,
            f"members declare {total:,} bytes in total from a {entry.size:,}-byte archive "
            f"(limit {limits.max_member_bytes:,})",
            entry.path,
        )
