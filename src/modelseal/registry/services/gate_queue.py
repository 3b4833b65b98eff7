"""A bounded pool for publish-gate runs, with per-user limits.

The gate scans every distinct blob of a version, which can take minutes of CPU. Run
on the request path with no bound, a few users could occupy every worker thread and
database connection of the server. Here the gate runs on at most ``workers`` threads;
commits waiting for one are coroutines (they hold no thread and no database
connection), at most ``capacity`` of them at once (more get 503); one user has at most
``per_user`` gate runs going at once (the rest of that user's commits wait their turn,
so one user cannot take every worker) and scans at most ``user_bytes_per_hour`` bytes
in a sliding hour (more get 429). The limits are per server process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from modelseal.registry.errors import RateLimitedError, UnavailableError

__all__ = ["GateQueue"]

_T = TypeVar("_T")
_HOUR = 3600.0


class GateQueue:
    """Run gate jobs on a fixed number of threads; refuse what would exceed the bounds."""

    def __init__(
        self, *, workers: int, capacity: int, per_user: int, user_bytes_per_hour: int
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gate")
        self._capacity = capacity
        self._per_user = per_user
        self._user_bytes = user_bytes_per_hour
        self._lock = threading.Lock()
        self._admitted = 0
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._scanned: dict[int, deque[tuple[float, int]]] = {}

    def _admit(self, user_id: int, scan_bytes: int) -> asyncio.Semaphore:
        now = time.monotonic()
        with self._lock:
            window = self._scanned.setdefault(user_id, deque())
            while window and window[0][0] <= now - _HOUR:
                window.popleft()
            used = sum(size for _, size in window)
            if used + scan_bytes > self._user_bytes:
                raise RateLimitedError(
                    f"this commit would scan {scan_bytes} bytes; you have scanned {used} of "
                    f"the {self._user_bytes} bytes allowed per hour",
                    advice="commit again later, or ask the registry admin to raise the limit",
                )
            if self._admitted >= self._capacity:
                raise UnavailableError(
                    f"the publish gate is busy ({self._admitted} commits waiting or running)",
                    advice="commit again in a minute",
                )
            window.append((now, scan_bytes))
            self._admitted += 1
            return self._slots.setdefault(user_id, asyncio.Semaphore(self._per_user))

    async def run(self, user_id: int, scan_bytes: int, job: Callable[[], _T]) -> _T:
        """Run ``job`` for ``user_id`` (who will scan ``scan_bytes``) when a slot is free."""
        slot = self._admit(user_id, scan_bytes)
        try:
            async with slot:
                return await asyncio.wrap_future(self._pool.submit(job))
        finally:
            with self._lock:
                self._admitted -= 1

    @property
    def admitted(self) -> int:
        """Commits waiting for or running the gate now."""
        return self._admitted

    def shutdown(self) -> None:
        """Stop taking jobs; running ones finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)
