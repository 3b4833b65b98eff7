"""In-memory weight integrity: are the tensors in RAM still the ones that were signed?

At attach time :meth:`WeightDigests.snapshot` hashes every parameter and buffer of a live model
(SHA-256 per chunk of each tensor, straight from the tensor's memory, no copies for contiguous CPU
tensors). It can first compare each tensor with the *signed per-tensor manifest*
(:mod:`modelseal.integrity.tensors`: the same leaf digest as ``modelseal sign``), so a signed model
is checked without re-reading its files. :meth:`WeightDigests.verify` re-hashes the memory and
names every tensor and chunk that changed since (in-place edits, bit flips, NaN injection, a
replaced parameter); :class:`WeightWatcher` does that in a background thread every N seconds.

The chain of trust is: signature -> tensor manifest -> (compared once, at snapshot) in-memory
tensors -> chunk digests (compared on every re-check).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal.monitor.errors import MonitorError, require_torch

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "TensorMismatch",
    "WeightDigests",
    "WeightReport",
    "WeightWatcher",
    "compare_with_manifest",
    "reference_from_files",
    "reference_from_signature",
    "torch_dtype_name",
]

#: Bytes per digest chunk: a re-check names the changed 1 MiB span of a tensor.
DEFAULT_CHUNK_SIZE = 1 << 20

# torch dtype names that differ from modelseal's canonical names.
_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64"}


def torch_dtype_name(dtype: Any) -> str:
    """Canonical dtype name (as in ``modelseal.formats.tensors.DTYPE_SIZES``) of a torch dtype."""
    name = str(dtype).removeprefix("torch.")
    return _DTYPE_ALIASES.get(name, name)


@dataclass(frozen=True)
class TensorMismatch:
    """One tensor whose memory does not match what it should be."""

    name: str
    #: ``changed`` (bytes differ), ``retyped`` (dtype/shape differ), ``missing`` (expected but
    #: gone), ``added`` (present but not expected) or ``unsigned`` (not in the signed manifest).
    kind: str
    #: Indices of the changed chunks (``changed`` only).
    chunks: tuple[int, ...] = ()
    #: Byte ranges ``(start, end)`` of the changed chunks within the tensor.
    byte_ranges: tuple[tuple[int, int], ...] = ()
    #: Human-readable extra detail (e.g. "contains NaN/Inf").
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "kind": self.kind,
            "chunks": list(self.chunks),
            "byte_ranges": [list(r) for r in self.byte_ranges],
            "detail": self.detail,
        }


@dataclass(frozen=True)
class WeightReport:
    """Result of one integrity check."""

    #: Whether every checked tensor matched.
    ok: bool
    #: Number of tensors checked and bytes hashed.
    tensors: int
    nbytes: int
    seconds: float
    mismatches: tuple[TensorMismatch, ...]
    #: What the memory was compared with: ``snapshot`` or ``manifest``.
    against: str = "snapshot"

    @property
    def throughput(self) -> float:
        """Bytes hashed per second."""
        return self.nbytes / self.seconds if self.seconds > 0 else float("inf")

    @property
    def changed(self) -> tuple[str, ...]:
        """Names of the tensors that failed the check."""
        return tuple(m.name for m in self.mismatches)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "ok": self.ok,
            "against": self.against,
            "tensors": self.tensors,
            "bytes": self.nbytes,
            "seconds": round(self.seconds, 6),
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


@dataclass(frozen=True)
class _Record:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    chunks: tuple[bytes, ...]


def _named_tensors(model: Any) -> dict[str, Any]:
    """Parameters and buffers by state-dict name (the names weight files use).

    Non-persistent buffers (e.g. ``position_ids``) are included: they steer the computation
    and some weight files store them.
    """
    tensors = dict(model.state_dict(keep_vars=True))
    for name, buffer in model.named_buffers():
        tensors.setdefault(name, buffer)
    return tensors


def _tensor_memory(tensor: Any) -> memoryview:
    """The tensor's raw bytes: a zero-copy view for contiguous CPU tensors, else a copy."""
    torch = require_torch()
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if not t.is_contiguous():
        t = t.contiguous()
    if t.numel() == 0:
        return memoryview(b"")
    flat = t.reshape(-1)
    if flat.dtype != torch.uint8:  # type: ignore[attr-defined]
        flat = flat.view(torch.uint8)  # type: ignore[attr-defined]
    return memoryview(flat.numpy()).cast("B")


def _spans(nbytes: int, chunk_size: int) -> list[tuple[int, int]]:
    if nbytes == 0:
        return [(0, 0)]
    return [(start, min(start + chunk_size, nbytes)) for start in range(0, nbytes, chunk_size)]


def _hash_chunks(jobs: list[tuple[memoryview, int, int]], threads: int) -> list[bytes]:
    """SHA-256 of each ``view[start:end]``; ``threads`` workers over balanced contiguous runs.

    hashlib releases the GIL on large buffers, so the workers hash in parallel.
    """

    def run(part: list[tuple[memoryview, int, int]]) -> list[bytes]:
        return [hashlib.sha256(view[start:end]).digest() for view, start, end in part]

    total = sum(end - start for _, start, end in jobs)
    if threads <= 1 or total < 4 * DEFAULT_CHUNK_SIZE:
        return run(jobs)
    parts: list[list[tuple[memoryview, int, int]]] = [[]]
    share, acc = total / threads, 0
    for job in jobs:
        if acc >= share * len(parts) and len(parts) < threads:
            parts.append([])
        parts[-1].append(job)
        acc += job[2] - job[1]
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="modelseal-hash") as pool:
        results = list(pool.map(run, parts))
    return [digest for part in results for digest in part]


def _nonfinite_detail(tensor: Any, spans: Iterable[tuple[int, int]]) -> str:
    """ "contains NaN/Inf" if a changed span of a float tensor holds a non-finite value."""
    torch = require_torch()
    t = tensor.detach()
    if not t.is_floating_point():
        return ""
    flat = t.reshape(-1)
    size = flat.element_size()
    for start, end in spans:
        piece = flat[start // size : (end + size - 1) // size]
        if not bool(torch.isfinite(piece).all()):  # type: ignore[attr-defined]
            return "contains NaN/Inf"
    return ""


class WeightDigests:
    """Per-chunk SHA-256 digests of every parameter and buffer of a model, taken in memory."""

    def __init__(self, records: Mapping[str, _Record], chunk_size: int, threads: int) -> None:
        self._records = dict(records)
        self.chunk_size = chunk_size
        self.threads = threads

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the tensors covered."""
        return tuple(self._records)

    @property
    def nbytes(self) -> int:
        """Total bytes covered."""
        return sum(r.nbytes for r in self._records.values())

    @classmethod
    def snapshot(
        cls, model: Any, *, chunk_size: int = DEFAULT_CHUNK_SIZE, threads: int = 2
    ) -> WeightDigests:
        """Hash the model's tensors as they are in memory now."""
        if chunk_size < 1:
            raise MonitorError(f"chunk size must be positive, got {chunk_size}")
        tensors = _named_tensors(model)
        views = {name: _tensor_memory(t) for name, t in tensors.items()}
        jobs = [
            (view, start, end)
            for view in views.values()
            for start, end in _spans(view.nbytes, chunk_size)
        ]
        digests = iter(_hash_chunks(jobs, threads))
        records = {}
        for name, tensor in tensors.items():
            n = len(_spans(views[name].nbytes, chunk_size))
            records[name] = _Record(
                name,
                torch_dtype_name(tensor.dtype),
                tuple(int(s) for s in tensor.shape),
                views[name].nbytes,
                tuple(next(digests) for _ in range(n)),
            )
        return cls(records, chunk_size, threads)

    def verify(self, model: Any) -> WeightReport:
        """Re-hash the model's memory and name every tensor and chunk that changed."""
        started = time.perf_counter()
        tensors = _named_tensors(model)
        mismatches: list[TensorMismatch] = []
        plan: list[tuple[str, memoryview]] = []
        for name, record in self._records.items():
            tensor = tensors.get(name)
            if tensor is None:
                mismatches.append(TensorMismatch(name, "missing"))
                continue
            dtype, shape = torch_dtype_name(tensor.dtype), tuple(int(s) for s in tensor.shape)
            if (dtype, shape) != (record.dtype, record.shape):
                detail = f"expected {record.dtype}{list(record.shape)}, found {dtype}{list(shape)}"
                mismatches.append(TensorMismatch(name, "retyped", detail=detail))
                continue
            plan.append((name, _tensor_memory(tensor)))
        for name in tensors:
            if name not in self._records:
                mismatches.append(TensorMismatch(name, "added"))
        jobs = [
            (view, start, end)
            for _, view in plan
            for start, end in _spans(view.nbytes, self.chunk_size)
        ]
        digests = iter(_hash_chunks(jobs, self.threads))
        hashed = 0
        for name, view in plan:
            spans = _spans(view.nbytes, self.chunk_size)
            expected = self._records[name].chunks
            bad = [i for i, want in enumerate(expected) if next(digests) != want]
            hashed += view.nbytes
            if bad:
                ranges = tuple(spans[i] for i in bad)
                mismatches.append(
                    TensorMismatch(
                        name,
                        "changed",
                        chunks=tuple(bad),
                        byte_ranges=ranges,
                        detail=_nonfinite_detail(tensors[name], ranges),
                    )
                )
        mismatches.sort(key=lambda m: m.name)
        return WeightReport(
            ok=not mismatches,
            tensors=len(plan),
            nbytes=hashed,
            seconds=time.perf_counter() - started,
            mismatches=tuple(mismatches),
        )


def compare_with_manifest(
    model: Any, reference: Mapping[str, Any], *, prefix: str | None = None
) -> WeightReport:
    """Compare the model's in-memory tensors with signed per-tensor records.

    ``reference`` maps tensor names (as in the weight file) to
    :class:`modelseal.integrity.tensors.TensorRecord`. Model names are ``prefix + name``;
    ``None`` finds the prefix (e.g. ``0.auto_model.`` in a sentence-transformers model).
    A reference tensor the model lacks is ``missing``; model tensors absent from the reference
    (e.g. tied or non-persistent ones) are reported as ``unsigned`` and do not fail the check.
    """
    from modelseal.integrity.tensors import tensor_data_digest, tensor_leaf

    started = time.perf_counter()
    tensors = _named_tensors(model)
    if prefix is None:
        prefix = _find_prefix(tensors, reference)
    mismatches: list[TensorMismatch] = []
    hashed = checked = 0
    covered = set()
    for name, record in sorted(reference.items()):
        tensor = tensors.get(prefix + name)
        if tensor is None:
            mismatches.append(TensorMismatch(name, "missing"))
            continue
        covered.add(prefix + name)
        dtype, shape = torch_dtype_name(tensor.dtype), tuple(int(s) for s in tensor.shape)
        view = _tensor_memory(tensor)
        digest = tensor_data_digest(view, record.algorithm)  # the signed leaves' own hash
        leaf = tensor_leaf(name, dtype, shape, digest, record.algorithm)
        hashed += view.nbytes
        checked += 1
        if leaf != record.leaf:
            kind = "changed" if (dtype, shape) == (record.dtype, tuple(record.shape)) else "retyped"
            detail = _nonfinite_detail(tensor, [(0, view.nbytes)]) if kind == "changed" else ""
            mismatches.append(TensorMismatch(prefix + name, kind, detail=detail))
    failed = bool(mismatches)
    for name in sorted(set(tensors) - covered):
        mismatches.append(TensorMismatch(name, "unsigned"))
    return WeightReport(
        ok=not failed,
        tensors=checked,
        nbytes=hashed,
        seconds=time.perf_counter() - started,
        mismatches=tuple(mismatches),
        against="manifest",
    )


def _find_prefix(tensors: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    """The prefix that maps most reference names onto model names ("" if names match)."""
    names = list(reference)
    if not names or any(name in tensors for name in names):
        return ""
    counts: dict[str, int] = {}
    probe = names[: min(len(names), 16)]
    for model_name in tensors:
        for name in probe:
            if model_name.endswith("." + name):
                pre = model_name[: -len(name)]
                counts[pre] = counts.get(pre, 0) + 1
    return max(counts, key=lambda p: counts[p]) if counts else ""


def reference_from_files(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Per-tensor records (name -> ``TensorRecord``) computed from safetensors files on disk.

    This is the *unsigned* stand-in for the signed manifest: use it when you trust the files
    (e.g. just verified with ``modelseal verify``), or use :func:`reference_from_signature`.
    """
    from modelseal.integrity.tensors import build_tensor_manifest

    records: dict[str, Any] = {}
    for path in map(Path, paths):
        manifest = build_tensor_manifest(path, path.name)
        if manifest is None:
            raise MonitorError(
                f"{path}: not a weight file with per-tensor digests (safetensors or GGUF)",
                advice="point the monitor at the model's .safetensors file(s)",
            )
        records.update(manifest.by_name())
    return records


def reference_from_signature(signature: str | Path, *, key: str | Path) -> dict[str, Any]:
    """Per-tensor records from a signed bundle, once the signature has been verified.

    Uses ``modelseal.integrity.read_tensor_manifest``; raises :class:`MonitorError` if this
    modelseal version does not provide it.
    """
    try:
        from modelseal.integrity import read_tensor_manifest
    except ImportError as exc:
        raise MonitorError(
            "this modelseal version cannot read signed tensor manifests yet",
            advice="verify the model with `modelseal verify`, then use reference_from_files()",
        ) from exc
    manifests = read_tensor_manifest(signature, key=key)
    values = manifests.values() if isinstance(manifests, Mapping) else manifests
    records: dict[str, Any] = {}
    for manifest in values:
        records.update(manifest.by_name() if hasattr(manifest, "by_name") else dict(manifest))
    return records


class WeightWatcher:
    """Re-verify a model's weights every ``interval`` seconds in a daemon thread.

    ``on_result`` receives every :class:`WeightReport` (from the watcher thread). Stop with
    :meth:`stop` (or use it as a context manager).
    """

    def __init__(
        self,
        model: Any,
        digests: WeightDigests,
        interval: float,
        on_result: Callable[[WeightReport], None],
    ) -> None:
        if interval <= 0:
            raise MonitorError(f"re-check interval must be positive, got {interval}")
        self._model, self._digests, self._interval = model, digests, interval
        self._on_result = on_result
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="modelseal-weight-watcher", daemon=True
        )
        #: Number of completed re-checks.
        self.checks = 0

    def start(self) -> WeightWatcher:
        """Start the thread; returns ``self``."""
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to stop and wait for it (a running check completes first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            report = self._digests.verify(self._model)
            self.checks += 1
            self._on_result(report)

    def __enter__(self) -> WeightWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
