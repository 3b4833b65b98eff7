"""``weights scan``: hidden payloads and injected values, as a scan-shaped report."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from modelseal.errors import FormatError, ModelsealError, UsageError
from modelseal.formats.format import Format
from modelseal.formats.inventory import Entry, Limits, walk
from modelseal.formats.readers import reader_for
from modelseal.formats.tensors import DTYPE_SIZES, TensorInfo, describe_tensors, tensor_array
from modelseal.scan.model import FileResult, Finding, ScanReport, Severity
from modelseal.weights.injection import (
    duplicate_findings,
    injection_findings,
)
from modelseal.weights.lowbits import (
    BLOCK_ELEMENTS,
    BlockEvidence,
    PrecisionBreak,
    block_evidence,
    free_bits,
    lowbit_anomalies,
    precision_break,
    precision_candidates,
    truncated_bits,
)
from modelseal.weights.payloads import verify_hit
from modelseal.weights.rules import LOWBIT_PRECISION, LOWBIT_STRUCTURE, PAYLOAD, WEIGHT_RULES
from modelseal.weights.stats import TensorAccumulator, analyze_tensors, chunk_units, float_spec

__all__ = [
    "LOWBIT_STRUCTURE",
    "PAYLOAD",
    "WEIGHT_RULES",
    "ProgressCallback",
    "has_own_tensors",
    "scan_weights",
    "tensor_entries",
    "weight_findings",
]

#: Every rule id ``weights scan`` can emit.

#: Called after each weight file with (files done, path).
ProgressCallback = Callable[[int, str], None]


def has_own_tensors(entry: Entry) -> bool:
    """Whether ``entry`` is a weight file read on its own (not through its container).

    Members of an archive whose format has a tensor reader (a ``.npz``, a PyTorch zip)
    are read by that reader and skipped here, so nothing is counted twice.
    """
    if entry.problem is not None or entry.format not in _READABLE:
        return False
    return not (entry.container_format is not None and entry.container_format in _READABLE)


_READABLE = frozenset(
    {
        Format.SAFETENSORS,
        Format.GGUF,
        Format.PYTORCH_ZIP,
        Format.TORCHSCRIPT,
        Format.PYTORCH_LEGACY,
        Format.NUMPY,
        Format.NUMPY_NPZ,
        Format.ONNX,
        Format.HDF5,
    }
)


def tensor_entries(
    paths: Iterable[str | os.PathLike[str]], limits: Limits | None = None
) -> Iterator[Entry]:
    """Every entry under ``paths`` whose tensors ``weights`` commands read."""
    for entry in walk(paths, limits=limits or Limits()):
        if has_own_tensors(entry):
            yield entry


def describe(entry: Entry) -> Sequence[TensorInfo]:
    """:func:`describe_tensors`, turning a missing reader module into a FormatError."""
    try:
        reader = reader_for(entry.format)
    except ImportError as exc:
        raise FormatError(
            f"{entry.path}: no tensor reader installed for {entry.format.value} ({exc})"
        ) from exc
    if reader is None:
        raise FormatError(f"{entry.path}: no tensor reader for format {entry.format.value}")
    return describe_tensors(entry)


def scan_weights(
    paths: Iterable[str | os.PathLike[str]],
    *,
    limits: Limits | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> ScanReport:
    """Inspect the weight values of every weight file under ``paths``.

    Returns a :class:`~modelseal.scan.model.ScanReport` (the ``scan`` JSON shape): one
    result per weight file, ``error`` when its tensors cannot be read. Raises
    :class:`UsageError` when ``paths`` hold no weight file at all.
    """
    results: list[FileResult] = []
    for done, entry in enumerate(tensor_entries(paths, limits), start=1):
        results.append(scan_entry(entry, workers=workers))
        if progress is not None:
            progress(done, entry.path)
    if not results:
        raise UsageError(
            "no weight files found",
            advice="weights scan reads safetensors, PyTorch (zip, legacy, TorchScript), GGUF, "
            "ONNX, .npy/.npz and Keras .weights.h5 files",
        )
    return ScanReport(tuple(results), {rule.id: rule for rule in WEIGHT_RULES})


def scan_entry(entry: Entry, *, workers: int | None = None) -> FileResult:
    """The weights-scan result of one weight file (errors become an ``error`` result)."""
    findings: list[Finding] = []
    try:
        tensors = describe(entry)
        findings.extend(weight_findings(tensors, workers=workers))
    except ModelsealError as exc:
        return FileResult(entry.path, entry.format.value, tuple(findings), exc.message)
    except (OSError, ValueError) as exc:
        return FileResult(
            entry.path, entry.format.value, tuple(findings), f"cannot read tensors: {exc}"
        )
    return FileResult(entry.path, entry.format.value, tuple(dict.fromkeys(findings)))


def weight_findings(
    tensors: Sequence[TensorInfo], *, workers: int | None = None
) -> Iterator[Finding]:
    """Payload and injection findings for ``tensors`` (one pass over each)."""
    analysed: list[TensorAccumulator] = []
    for acc in analyze_tensors(tensors, signatures=True, workers=workers):
        yield from _payload_findings(acc)
        yield from injection_findings(acc)
        analysed.append(acc)
    yield from duplicate_findings(analysed)


def _payload_findings(acc: TensorAccumulator) -> Iterator[Finding]:
    info = acc.info
    if acc.hits:
        spec = float_spec(info.dtype)
        array = tensor_array(info).reshape(-1)
        units = array.view(spec.unit) if spec is not None else array.view(np.uint8)
        # One finding per layout (its first header); later headers in the same layout
        # are usually the same payload (scripts repeat "import ...").
        by_layout: dict[str, list[tuple[int, str, bytes, str]]] = {}
        for hit in acc.hits:
            verified = verify_hit(units, hit)
            if verified is None:
                continue
            signature, element, data = verified
            if spec is None:  # raw hits count bytes
                element //= _dtype_size(info.dtype)
            found = by_layout.setdefault(hit.layout.name, [])
            found.append((element, signature.kind, data, hit.layout.describe()))
        del units, array
        for found in by_layout.values():
            found.sort(key=lambda item: item[0])
            element, kind, data, where = found[0]
            more = len({item[0] for item in found}) - 1
            extra = f" (and {more} more header(s) further on)" if more else ""
            yield Finding(
                PAYLOAD.id,
                PAYLOAD.default_severity,
                f"{kind} hidden in {where} of tensor {info.name!r} starting at element "
                f"{element:,}{extra}; extracted bytes: {_preview(data)}",
                f"{info.name}[{element}:]",
            )
    if not acc.is_float:
        return
    histograms = acc.blocks()
    yield from _lowbit_findings(info, histograms)
    if info.dtype == "float32":
        yield from _precision_findings(info, histograms, acc.confined_counts())


def _lowbit_findings(info: TensorInfo, histograms: np.ndarray) -> Iterator[Finding]:
    """Candidate blocks re-read and measured; only unexplained structure is reported."""
    spec = float_spec(info.dtype)
    assert spec is not None
    free = free_bits(info.dtype)
    measured: list[tuple[int, BlockEvidence, str]] = []
    for run in lowbit_anomalies(histograms, info.dtype):
        for block in range(run.first_block, run.last_block + 1):
            first = block * BLOCK_ELEMENTS
            count = min(BLOCK_ELEMENTS, info.numel - first)
            evidence = block_evidence(chunk_units(info, first, count, spec.unit), free)
            if evidence is not None and evidence.kind is not None:
                measured.append((block, evidence, evidence.kind))
    # Consecutive blocks of one kind are one finding, with the first block's numbers.
    index = 0
    while index < len(measured):
        block, evidence, kind = measured[index]
        end = index
        while (
            end + 1 < len(measured)
            and measured[end + 1][0] == measured[end][0] + 1
            and measured[end + 1][2] == kind
        ):
            end += 1
        first = block * BLOCK_ELEMENTS
        last = min(info.numel, (measured[end][0] + 1) * BLOCK_ELEMENTS) - 1
        what = (
            "hold text (a script or source code hidden in the weights)"
            if kind == "text"
            else "are structured and independent of the values (data hidden in the weights)"
        )
        yield Finding(
            LOWBIT_STRUCTURE.id,
            Severity.HIGH if kind == "text" else Severity.MEDIUM,
            f"the low-order bits of elements {first:,}-{last:,} of tensor {info.name!r} "
            f"{what}: {evidence.describe()}; lowest bytes: {_low_byte_preview(info, first)}",
            f"{info.name}[{first}:{last + 1}]",
        )
        index = end + 1


def _precision_findings(
    info: TensorInfo, histograms: np.ndarray, confined: np.ndarray
) -> Iterator[Finding]:
    """Runs of bytes written over the low byte of fp16/bf16-origin values."""
    narrow, wide = precision_candidates(histograms, confined)
    if not wide:
        return

    def block(index: int) -> np.ndarray:
        first = index * BLOCK_ELEMENTS
        return chunk_units(info, first, min(BLOCK_ELEMENTS, info.numel - first), "<u4")

    # Without a narrow block to measure, test bits 8-12 (zero in fp16 and bf16 values).
    truncated = truncated_bits(block(narrow)) if narrow is not None else 13
    breaks: list[PrecisionBreak] = []
    for index in wide:
        found = precision_break(block(index), index * BLOCK_ELEMENTS, truncated)
        if found is not None and found.is_payload:
            if breaks and breaks[-1].first + breaks[-1].count == found.first:
                last = breaks.pop()
                found = PrecisionBreak(
                    last.first,
                    last.count + found.count,
                    truncated,
                    last.informative + found.informative,
                    last.confined + found.confined,
                    max(last.tvd, found.tvd),
                    (last.span[0], found.span[1]),
                )
            breaks.append(found)
    for run in breaks:
        start, end = run.span
        yield Finding(
            LOWBIT_PRECISION.id,
            LOWBIT_PRECISION.default_severity,
            f"tensor {info.name!r} holds values converted from a narrower dtype (low "
            f"{truncated} bits zero), but {run.confined:,} elements in {start:,}-{end:,} have "
            f"only their lowest byte set, bits 8-{truncated - 1} still zero (values trained "
            f"further would give about {run.expected:,.0f}), with uniform bytes (distance "
            f"{run.tvd:.2f}): about {run.confined:,} bytes written over the low byte; lowest "
            f"bytes: {_low_byte_preview(info, start)}",
            f"{info.name}[{start}:{end + 1}]",
        )


def _dtype_size(dtype: str) -> int:
    return DTYPE_SIZES.get(dtype, 1)


def _low_byte_preview(info: TensorInfo, first: int) -> str:
    spec = float_spec(info.dtype)
    assert spec is not None
    units = chunk_units(info, first, min(48, info.numel - first), spec.unit)
    low = units.view(np.uint8).reshape(-1, spec.itemsize)[:, 0].tobytes()
    return _preview(low)


def _preview(data: bytes, limit: int = 32) -> str:
    head = data[:limit]
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in head)
    return f"{head.hex(' ')} |{text}|"
