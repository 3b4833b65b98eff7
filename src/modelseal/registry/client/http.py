"""The client's one HTTP stack (httpx): JSON calls, streamed blob bodies, upload chunks.

Registry calls carry the token; presigned storage URLs (a redirect from a blob
download) are fetched by a second client without it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from modelseal.errors import ModelsealError, RegistryError, UsageError
from modelseal.registry.client.state import ClientState
from modelseal.registry.errors import error_from_payload
from modelseal.registry.schemas import parse

if TYPE_CHECKING:
    import httpx

    from modelseal.transparency.client import LogMonitor

__all__ = ["Counter", "Progress", "RegistryHttp"]

#: Called with (bytes done, bytes in total).
Progress = Callable[[int, int], None]

M = TypeVar("M", bound=BaseModel)

_CHUNK = 64 * 1024 * 1024
_SEND_BLOCK = 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


class RegistryHttp:
    """Connection, credentials and client state of one registry (the base of the client)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        state: ClientState | None = None,
        workers: int = 4,
        chunk_size: int = _CHUNK,
        timeout: float = 300.0,
        log_key: str | os.PathLike[str] | None = None,
        max_log_age: float | None = None,
    ) -> None:
        """``log_key`` pins the registry's transparency-log public key (PEM file); without
        it the key pinned by ``modelseal login --log-key`` is used, else the key is fetched
        on first contact and remembered (trust on first use). Tree heads older than
        ``max_log_age`` seconds are refused (default
        :data:`~modelseal.transparency.client.DEFAULT_MAX_AGE`, one day; ``0``: no limit)."""
        import httpx

        from modelseal.transparency.client import DEFAULT_MAX_AGE

        self.url = url.rstrip("/")
        self.token = token
        self.state = state or ClientState()
        self.workers = max(1, workers)
        self.chunk_size = max(1, chunk_size)
        self.max_log_age = (
            DEFAULT_MAX_AGE if max_log_age is None else (max_log_age if max_log_age > 0 else None)
        )
        self._log_key_path = log_key
        self._monitor: LogMonitor | None = None
        self._monitor_lock = threading.RLock()
        headers = {"user-agent": "modelseal-client", "accept-encoding": "identity"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        limits = httpx.Limits(max_connections=self.workers + 4)
        self._http = httpx.Client(
            base_url=self.url + "/v1",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=limits,
        )
        # Presigned URLs get no registry credentials.
        self._plain = httpx.Client(
            headers={"user-agent": "modelseal-client", "accept-encoding": "identity"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=limits,
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()
        self._plain.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One JSON call; an error answer raises its :mod:`modelseal.registry.errors` class."""
        import httpx

        try:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                # A kept-alive connection the server has just closed as idle fails on
                # reuse; a read is safe to send once more on a fresh connection.
                if method not in ("GET", "HEAD"):
                    raise
                response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"cannot reach the registry at {self.url}: {exc}",
                advice="check the URL and that `modelseal serve` is running",
            ) from exc
        return _decode(response)

    def _get(
        self,
        model: type[M],
        path: str,
        what: str,
        *,
        error: type[ModelsealError] = RegistryError,
        **kwargs: Any,
    ) -> M:
        """``GET path`` parsed as ``model``."""
        return parse(model, self._request("GET", path, **kwargs), what, error=error)

    @contextlib.contextmanager
    def _stream_blob(self, namespace: str, digest: str) -> Iterator[httpx.Response]:
        """Open a blob body (following a redirect to presigned storage without credentials)."""
        with self._http.stream("GET", f"/namespaces/{namespace}/blobs/{digest}") as first:
            if first.status_code not in _REDIRECTS:
                _raise_for(first)
                yield first
                return
            location = first.headers.get("location", "")
        with self._plain.stream("GET", location) as second:
            if second.status_code in _REDIRECTS:
                raise RegistryError(f"blob {digest[:16]}: too many redirects")
            _raise_for(second)
            yield second

    def _patch_chunk(
        self, upload_id: str, digest: str, offset: int, path: Path, length: int
    ) -> Any:
        """One ``PATCH`` with ``length`` bytes of ``path`` from ``offset``, streamed from the
        file in 1 MiB blocks (the length is declared, so no chunked encoding)."""
        response = self._http.patch(
            f"/uploads/{upload_id}/blobs/{digest}",
            params={"offset": offset},
            content=_file_range(path, offset, length),
            headers={"content-type": "application/octet-stream", "content-length": str(length)},
        )
        return _decode(response)


def _raise_for(response: httpx.Response) -> None:
    if response.status_code >= 400:
        response.read()
        _decode(response)


def _decode(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        raise error_from_payload(response.status_code, payload)
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise RegistryError(
            f"the registry answered HTTP {response.status_code} with a body that is not JSON"
        ) from None


def _file_range(path: Path, offset: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``path`` from ``offset`` in blocks."""
    with open(path, "rb", buffering=0) as handle:
        handle.seek(offset)
        left = length
        while left > 0:
            block = handle.read(min(left, _SEND_BLOCK))
            if not block:
                raise UsageError(f"{path} shrank while it was being pushed")
            left -= len(block)
            yield block


class Counter:
    """Thread-safe byte counter feeding a progress callback."""

    def __init__(self, total: int, start: int, progress: Progress | None) -> None:
        self.total = total
        self.value = start
        self.progress = progress
        self._lock = threading.Lock()
        if progress is not None:
            progress(start, total)

    def add(self, amount: int) -> None:
        """Count ``amount`` more bytes."""
        with self._lock:
            self.value += amount
            value = self.value
        if self.progress is not None:
            self.progress(value, self.total)
