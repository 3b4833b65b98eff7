"""Payloads hidden in the low-order bytes and bits of weights (EvilModel, StegoNet).

An attacker who controls a checkpoint can overwrite the low mantissa bytes or bits of
float weights with a file (an executable, an archive, a script) while keeping the
values close enough for the model to keep working; a loader hook elsewhere then
reassembles it. Two complementary detectors:

* **signatures**: every low-byte and low-bit *layout* (which bytes or bits of each
  element carry the payload, and in which order) is searched for executable,
  archive and script headers, each confirmed by a structural validator so random
  mantissa bits never match;
* **low-bit statistics** (:mod:`modelseal.weights.lowbits`): in trained weights the
  lowest mantissa bits are uniform noise; a payload of code or text makes them
  structured.

The signature search is built for speed: a 64 Ki-entry table of two-byte pattern prefixes
filters every layout in one vectorised pass; the few candidates are re-checked as
three- or four-byte words, and only exact header matches reach the validators.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "BLOCK_ELEMENTS",
    "SIGNATURES",
    "Layout",
    "Signature",
    "SignatureHit",
    "extract_stream",
    "layouts_for",
    "search_chunk",
    "verify_hit",
]

#: Elements per block of the low-bit statistical test.
BLOCK_ELEMENTS = 65536
#: Bytes extracted to validate and preview a signature hit.
_PREVIEW = 96
_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


# --------------------------------------------------------------------------- signatures


def _valid_text(data: bytes) -> bool:
    chunk = data[:20]
    return len(chunk) == 20 and all(b in _PRINTABLE for b in chunk)


def _valid_elf(data: bytes) -> bool:
    return len(data) >= 20 and data[4] in (1, 2) and data[5] in (1, 2) and data[6] == 1


def _valid_macho(data: bytes) -> bool:
    if len(data) < 8:
        return False
    endian = "<" if data[0] in (0xCE, 0xCF) else ">"
    (cputype,) = struct.unpack(endian + "I", data[4:8])
    return cputype in (7, 12, 18, 0x01000007, 0x0100000C, 0x01000012)


def _valid_zip(data: bytes) -> bool:
    if len(data) < 30:
        return False
    version, flags, method = struct.unpack("<HHH", data[4:10])
    (name_len,) = struct.unpack("<H", data[26:28])
    return version <= 63 and flags < 0x1000 and method in (0, 8, 9, 12, 14, 93) and name_len < 512


def _valid_gzip(data: bytes) -> bool:
    return len(data) >= 10 and data[3] < 0x20 and data[8] in (0, 2, 4) and data[9] in _GZIP_OS


_GZIP_OS = frozenset({*range(14), 255})


def _valid_bzip2(data: bytes) -> bool:
    return len(data) >= 10 and data[3:4].isdigit() and data[4:10] == b"1AY&SY"


@dataclass(frozen=True)
class Signature:
    """A file header to look for, and a check that rules out chance matches."""

    #: What the payload is ("ELF executable").
    kind: str
    #: The bytes the payload starts with (at least four).
    magic: bytes
    #: A structural check on the first bytes of the candidate (None: the magic suffices).
    validate: Callable[[bytes], bool] | None = None

    def matches(self, data: bytes) -> bool:
        """Whether ``data`` (bytes extracted from the weights) starts with this payload."""
        return data.startswith(self.magic) and (self.validate is None or self.validate(data))


#: Every header searched for. All magics are >= 4 bytes so chance matches are rare, and
#: the short ones carry a validator (printable text follows, header fields are sane).
SIGNATURES: tuple[Signature, ...] = (
    Signature("ELF executable", b"\x7fELF", _valid_elf),
    Signature("Windows PE/DOS executable", b"MZ\x90\x00\x03\x00"),
    Signature("Windows PE/DOS executable", b"This program cannot be run"),
    Signature("Mach-O executable", b"\xfe\xed\xfa\xce", _valid_macho),
    Signature("Mach-O executable", b"\xfe\xed\xfa\xcf", _valid_macho),
    Signature("Mach-O executable", b"\xce\xfa\xed\xfe", _valid_macho),
    Signature("Mach-O executable", b"\xcf\xfa\xed\xfe", _valid_macho),
    Signature("zip archive", b"PK\x03\x04", _valid_zip),
    Signature("gzip stream", b"\x1f\x8b\x08\x00", _valid_gzip),
    Signature("gzip stream", b"\x1f\x8b\x08\x08", _valid_gzip),
    *(Signature("bzip2 stream", b"BZh" + bytes([d]), _valid_bzip2) for d in b"123456789"),
    Signature("xz stream", b"\xfd7zXZ\x00"),
    Signature("7-zip archive", b"7z\xbc\xaf\x27\x1c"),
    Signature("RAR archive", b"Rar!\x1a\x07"),
    Signature("shell script", b"#!/b", _valid_text),
    Signature("shell script", b"#!/u", _valid_text),
    Signature("Python source", b"import ", _valid_text),
    Signature("Python source", b"from ", _valid_text),
    Signature("Python source", b"def ", _valid_text),
    Signature("Python source", b"exec(", _valid_text),
    Signature("Python source", b"eval(", _valid_text),
    Signature("Python source", b"__import__", _valid_text),
    Signature("Python source", b"subprocess", _valid_text),
    Signature("Python source", b"os.system", _valid_text),
    Signature("Python source", b"socket.", _valid_text),
)


# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class Layout:
    """Which bytes or bits of each element carry a payload, and in which order.

    Byte layouts name little-endian byte indices of the element (0 is the lowest
    mantissa byte): ``(2, 1, 0)`` is EvilModel's big-endian three-byte layout, and
    ``(-1,)`` means the raw bytes of the tensor. Bit layouts take the low ``bits``
    bits of each element, ``msb`` first (value bits high to low, bytes filled from
    their top bit) or ``lsb`` first (both reversed).
    """

    name: str
    byte_indices: tuple[int, ...] = ()
    bits: int = 0
    bit_order: str = "msb"

    @property
    def is_bits(self) -> bool:
        """True for a bit layout."""
        return self.bits > 0

    @property
    def is_raw(self) -> bool:
        """True for the raw-bytes layout (non-float tensors)."""
        return self.byte_indices == (-1,)

    def describe(self) -> str:
        """Human wording for messages."""
        if self.is_bits:
            return f"the low {self.bits} bit(s) of each element ({self.bit_order} first)"
        if self.is_raw:
            return "the raw tensor bytes"
        count = len(self.byte_indices)
        if count == 1:
            return "the lowest byte of each element"
        order = "little-endian" if self.byte_indices[0] == 0 else "big-endian"
        return f"the low {count} bytes of each element ({order})"


RAW = Layout("raw", (-1,))
_BIT_LAYOUTS = tuple(
    Layout(f"low{k}bit-{order}", bits=k, bit_order=order)
    for k in (1, 2, 4)
    for order in ("msb", "lsb")
)
_WIDE_BYTE_LAYOUTS = (
    Layout("low3-le", (0, 1, 2)),
    Layout("low3-be", (2, 1, 0)),
    Layout("low2-le", (0, 1)),
    Layout("low2-be", (1, 0)),
)
_LOW1 = Layout("low1", (0,))


def layouts_for(itemsize: int, is_float: bool) -> tuple[Layout, ...]:
    """The layouts searched in tensors of ``itemsize``-byte elements."""
    if not is_float:
        return (RAW,)
    if itemsize >= 4:
        return (*_WIDE_BYTE_LAYOUTS, _LOW1, *_BIT_LAYOUTS)
    return (_LOW1, *_BIT_LAYOUTS)


def _bitorder(order: str) -> Literal["big", "little"]:
    return "big" if order == "msb" else "little"


def _byte_matrix(units: NDArray[np.unsignedinteger]) -> NDArray[np.uint8]:
    """Elements as rows of little-endian bytes."""
    return units.view(np.uint8).reshape(units.shape[0], units.dtype.itemsize)


def extract_stream(units: NDArray[np.unsignedinteger], layout: Layout) -> bytes:
    """The payload bytes ``layout`` reads from ``units`` (an unsigned-int view)."""
    flat = np.ascontiguousarray(units.reshape(-1))
    if layout.is_raw:
        return flat.tobytes()
    rows = _byte_matrix(flat)
    if not layout.is_bits:
        return rows[:, list(layout.byte_indices)].tobytes()
    return _pack_bits(_low_bits(rows[:, 0], layout.bits), layout).tobytes()


def _low_bits(low: NDArray[np.uint8], k: int) -> NDArray[np.uint8]:
    return low & np.uint8((1 << k) - 1)


def _bit_matrix(values: NDArray[np.uint8], layout: Layout) -> NDArray[np.uint8]:
    """(elements, k) bits of each element's low k bits, in stream order."""
    k = layout.bits
    if layout.bit_order == "msb":
        return np.unpackbits(values[:, None], axis=1, bitorder="big")[:, 8 - k :]
    return np.unpackbits(values[:, None], axis=1, bitorder="little")[:, :k]


def _pack_bits(values: NDArray[np.uint8], layout: Layout) -> NDArray[np.uint8]:
    bits = _bit_matrix(values, layout).reshape(-1)
    return np.packbits(bits, bitorder="big" if layout.bit_order == "msb" else "little")


def _pack_bits_fast(low: NDArray[np.uint8], layout: Layout) -> NDArray[np.uint8]:
    """:func:`_pack_bits` with strided shifts (k divides 8; no bit matrix)."""
    k = layout.bits
    per_byte = 8 // k
    usable = (low.shape[0] // per_byte) * per_byte
    groups = low[:usable].reshape(-1, per_byte)
    mask = np.uint8((1 << k) - 1)
    out = np.zeros(groups.shape[0], dtype=np.uint8)
    for j in range(per_byte):
        # msb: element j's value lands at bits 8-k(j+1)..; lsb: at bits kj.. (unreversed,
        # since both the element's bits and the byte fill run from bit 0).
        shift = 8 - k * (j + 1) if layout.bit_order == "msb" else k * j
        out |= (groups[:, j] & mask) << np.uint8(shift)
    return out


# ------------------------------------------------------------------ pattern tables


@dataclass(frozen=True)
class _Patterns:
    """Byte patterns compiled for the vectorised filter."""

    #: 65536 entries: True where a little-endian 16-bit window starts a pattern.
    table: NDArray[np.bool_]
    #: The first three or four bytes of every pattern as little-endian words.
    words: NDArray[np.uint32]
    #: For packed bit streams: the bit shifts each pattern stands for.
    shifts: tuple[tuple[int, ...], ...]


@cache
def _byte_patterns() -> _Patterns:
    magics = sorted({s.magic[:4] for s in SIGNATURES})
    table = np.zeros(65536, dtype=bool)
    for magic in magics:
        table[magic[0] | magic[1] << 8] = True
    words = np.array([struct.unpack("<I", m)[0] for m in magics], dtype=np.uint32)
    return _Patterns(table, words, tuple((0,) for _ in magics))


@cache
def _shifted_patterns(order: str) -> _Patterns:
    """Three-byte cores of every magic shifted by 0-7 bits in a packed bit stream.

    Shifted by ``s`` bits, a magic starts inside one byte; the core is made of the
    bytes after it, which are entirely magic bits.
    """
    bitorder = _bitorder(order)
    cores: dict[bytes, set[int]] = {}
    for magic in sorted({s.magic[:5] for s in SIGNATURES}):
        bits = np.unpackbits(np.frombuffer(magic, dtype=np.uint8), bitorder=bitorder)
        for shift in range(8):
            padded = np.concatenate([np.zeros(shift, np.uint8), bits])
            full = len(padded) // 8
            packed = np.packbits(padded[: full * 8], bitorder=bitorder).tobytes()
            core = packed[1 if shift else 0 :][:3]
            if len(core) == 3:
                cores.setdefault(core, set()).add(shift)
    keys = sorted(cores)
    table = np.zeros(65536, dtype=bool)
    for core in keys:
        table[core[0] | core[1] << 8] = True
    words = np.array([c[0] | c[1] << 8 | c[2] << 16 for c in keys], dtype=np.uint32)
    return _Patterns(table, words, tuple(tuple(sorted(cores[c])) for c in keys))


@cache
def _pair_table() -> NDArray[np.bool_]:
    """Every two consecutive magic bytes, in both orders, as 16-bit values."""
    table = np.zeros(65536, dtype=bool)
    for sig in SIGNATURES:
        magic = sig.magic[:4]
        for a, b in itertools.pairwise(magic):
            table[a | b << 8] = True
            table[b | a << 8] = True
    return table


def _stream_candidates(
    stream: NDArray[np.uint8], patterns: _Patterns, width: int
) -> NDArray[np.intp]:
    """Positions in ``stream`` where a pattern's first ``width`` (3 or 4) bytes occur."""
    n = stream.shape[0]
    if n < width:
        return np.empty(0, dtype=np.intp)
    stream = np.ascontiguousarray(stream)
    # Two zero-copy little-endian 16-bit views: pairs starting at even and odd offsets.
    even = np.flatnonzero(patterns.table[stream[: 2 * (n // 2)].view("<u2")]) * 2
    odd = np.flatnonzero(patterns.table[stream[1 : 1 + 2 * ((n - 1) // 2)].view("<u2")]) * 2 + 1
    cand = np.sort(np.concatenate([even, odd]))
    if cand.size == 0:
        return cand
    cand = cand[cand <= stream.shape[0] - width]
    word = stream[cand].astype(np.uint32)
    for j in range(1, width):
        word |= stream[cand + j].astype(np.uint32) << np.uint32(8 * j)
    found: NDArray[np.intp] = cand[np.isin(word, patterns.words)]
    return found


# ------------------------------------------------------------------ chunk search


@dataclass(frozen=True)
class SignatureHit:
    """A candidate header found by the filter (validated by :func:`verify_hit`)."""

    layout: Layout
    #: Bit position of the candidate in the layout's stream, counted from element 0.
    bit_position: int


def search_chunk(
    units: NDArray[np.unsignedinteger], layouts: Sequence[Layout], first_element: int, own: int
) -> list[SignatureHit]:
    """Candidate payload headers starting in the first ``own`` elements of ``units``.

    ``units`` (an unsigned-int view of the elements) may run past ``own`` elements
    into the next chunk, so a header crossing a chunk boundary is found exactly once.
    Positions are absolute: ``units[0]`` is element ``first_element`` of the tensor.
    """
    flat = units.reshape(-1)
    if flat.shape[0] == 0:
        return []
    hits: list[SignatureHit] = []
    itemsize = flat.dtype.itemsize
    rows = _byte_matrix(flat)
    multi = [lay for lay in layouts if not lay.is_bits and len(lay.byte_indices) > 1]
    if multi:
        hits.extend(_search_multibyte(flat, rows, multi, first_element, own))
    for layout in layouts:
        if layout.is_raw:
            stream = flat.view(np.uint8)
            for pos in _stream_candidates(stream, _byte_patterns(), 4).tolist():
                if pos // itemsize < own:
                    hits.append(SignatureHit(layout, 8 * (first_element * itemsize + pos)))
        elif layout.byte_indices == (0,):
            stream = np.ascontiguousarray(rows[:, 0])
            for pos in _stream_candidates(stream, _byte_patterns(), 4).tolist():
                if pos < own:
                    hits.append(SignatureHit(layout, 8 * (first_element + pos)))
    bit_layouts = [lay for lay in layouts if lay.is_bits]
    if bit_layouts:
        low = np.ascontiguousarray(rows[:, 0])
        for k in sorted({lay.bits for lay in bit_layouts}):
            wanted = {lay.bit_order: lay for lay in bit_layouts if lay.bits == k}
            hits.extend(_search_bits(low, k, wanted, first_element, own))
    return hits


def _search_multibyte(
    flat: NDArray[np.unsignedinteger],
    rows: NDArray[np.uint8],
    layouts: Sequence[Layout],
    first_element: int,
    own: int,
) -> list[SignatureHit]:
    # A 4-byte magic written through a 2- or 3-byte layout always puts two consecutive
    # magic bytes in one element's low 16 bits (in order for little-endian layouts,
    # swapped for big-endian ones): one table lookup finds every candidate element.
    n = flat.shape[0]
    if n < 5:
        return []
    # The low 16 bits of each (little-endian) element, as a strided zero-copy view.
    low16 = flat.view(np.uint16)[:: flat.dtype.itemsize // 2]
    cand = np.flatnonzero(_pair_table()[low16])
    if cand.size == 0:
        return []
    starts = np.clip(cand - 2, 0, n - 5)
    window = (starts[:, None] + np.arange(5)).reshape(-1)
    hits: list[SignatureHit] = []
    for layout in layouts:
        k = len(layout.byte_indices)
        stream = np.ascontiguousarray(rows[window][:, list(layout.byte_indices)].reshape(-1))
        per_window = 5 * k
        for pos in _stream_candidates(stream, _byte_patterns(), 4).tolist():
            row, offset = divmod(pos, per_window)
            byte_pos = int(starts[row]) * k + offset
            if byte_pos // k < own:
                hits.append(SignatureHit(layout, 8 * (first_element * k + byte_pos)))
    return list(dict.fromkeys(hits))


@cache
def _msb_to_lsb(k: int) -> NDArray[np.uint8]:
    """Byte map from the msb-first packing of k-bit groups to the lsb-first packing."""
    out = np.zeros(256, dtype=np.uint8)
    for byte in range(256):
        value = 0
        for j in range(8 // k):
            group = (byte >> (8 - k * (j + 1))) & ((1 << k) - 1)
            value |= group << (k * j)
        out[byte] = value
    return out


@cache
def _bit_patterns(k: int) -> tuple[_Patterns, tuple[tuple[tuple[str, int], ...], ...]]:
    """Cores of both bit orders expressed in the msb-packed stream of k-bit groups.

    The lsb-packed stream is a byte-wise bijection of the msb-packed one, so its cores
    are searched in the msb stream after mapping them back; one pass serves both.
    """
    inverse = np.argsort(_msb_to_lsb(k)).astype(np.uint8)
    cores: dict[bytes, set[tuple[str, int]]] = {}
    for order in ("msb", "lsb"):
        patterns = _shifted_patterns(order)
        for word, shifts in zip(patterns.words.tolist(), patterns.shifts, strict=True):
            core = bytes([word & 0xFF, (word >> 8) & 0xFF, (word >> 16) & 0xFF])
            if order == "lsb":
                core = bytes(inverse[list(core)].tolist())
            cores.setdefault(core, set()).update((order, s) for s in shifts)
    keys = sorted(cores)
    table = np.zeros(65536, dtype=bool)
    for core in keys:
        table[core[0] | core[1] << 8] = True
    words = np.array([c[0] | c[1] << 8 | c[2] << 16 for c in keys], dtype=np.uint32)
    meta = tuple(tuple(sorted(cores[c])) for c in keys)
    return _Patterns(table, words, tuple(() for _ in keys)), meta


def _search_bits(
    low: NDArray[np.uint8],
    k: int,
    layouts: dict[str, Layout],
    first_element: int,
    own: int,
) -> list[SignatureHit]:
    packed = _pack_bits_fast(low, Layout("", bits=k, bit_order="msb"))
    patterns, meta = _bit_patterns(k)
    hits = []
    for pos in _stream_candidates(packed, patterns, 3).tolist():
        word = int(packed[pos]) | int(packed[pos + 1]) << 8 | int(packed[pos + 2]) << 16
        for index in np.flatnonzero(patterns.words == word).tolist():
            for order, shift in meta[index]:
                layout = layouts.get(order)
                bit = 8 * pos - (8 - shift if shift else 0)
                if layout is not None and bit >= 0 and bit // k < own:
                    hits.append(SignatureHit(layout, first_element * k + bit))
    return hits


def verify_hit(
    units: NDArray[np.unsignedinteger], hit: SignatureHit
) -> tuple[Signature, int, bytes] | None:
    """Validate a candidate against the whole tensor's ``units``.

    Returns ``(signature, first element, extracted bytes)`` or None for a chance match.
    """
    layout = hit.layout
    flat = units.reshape(-1)
    if layout.is_raw:
        unit = flat.dtype.itemsize
        start = hit.bit_position // 8
        element = start // unit
        raw = np.ascontiguousarray(flat[element : element + _PREVIEW // unit + 2]).tobytes()
        data = raw[start - element * unit :][:_PREVIEW]
    elif not layout.is_bits:
        k = len(layout.byte_indices)
        start = hit.bit_position // 8
        element = start // k
        stream = extract_stream(flat[element : element + _PREVIEW // k + 2], layout)
        data = stream[start - element * k :][:_PREVIEW]
    else:
        k = layout.bits
        element = hit.bit_position // k
        rows = _byte_matrix(np.ascontiguousarray(flat[element : element + _PREVIEW * 8 // k + 8]))
        bits = _bit_matrix(_low_bits(rows[:, 0], k), layout).reshape(-1)
        bits = bits[hit.bit_position - element * k :]
        bits = bits[: (bits.shape[0] // 8) * 8]
        data = np.packbits(bits, bitorder=_bitorder(layout.bit_order)).tobytes()[:_PREVIEW]
    for sig in SIGNATURES:
        if sig.matches(data):
            return sig, int(element), data
    return None
