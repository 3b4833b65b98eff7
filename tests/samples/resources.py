"""Resource bounds for tests: bytes read and memory allocated, never wall-clock time.

"Fast" is not a test assertion (it fails on a busy machine); what makes a hostile input
fast is that it is not read or not materialised, and that is what these measure.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Usage", "bytes_read", "measure"]

_PROC_IO = Path("/proc/self/io")


def bytes_read() -> int | None:
    """Bytes this process has read through system calls so far (``None`` off Linux)."""
    if not _PROC_IO.exists():
        return None
    for line in _PROC_IO.read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return None


@dataclass
class Usage:
    """What the measured block did: peak Python allocation and bytes read (``0`` if unknown)."""

    peak_bytes: int = 0
    read_bytes: int = 0


@contextlib.contextmanager
def measure() -> Iterator[Usage]:
    """Measure the peak traced allocation and the bytes read inside the ``with`` block."""
    usage = Usage()
    before = bytes_read()
    tracemalloc.start()
    try:
        yield usage
    finally:
        usage.peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        after = bytes_read()
        usage.read_bytes = after - before if before is not None and after is not None else 0
