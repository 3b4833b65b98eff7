"""A man in the middle on loopback: forwards every request to a real registry and lets a
test rewrite the answers (a malicious server or a network attacker, as a client sees it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

#: ``rewrite(method, path, answer)`` returns the JSON answer to send instead (or the same).
Rewrite = Callable[[str, str, Any], Any]
#: ``replace(method, path)`` returns a JSON answer to send without asking upstream, or None.
Replace = Callable[[str, str], Any]

_HOP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}


class Mitm:
    """Rewrites JSON answers with ``rewrite`` and forges answers with ``replace``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.rewrite: Rewrite = lambda method, path, answer: answer
        self.replace: Replace = lambda method, path: None
        self.seen: list[str] = []
        self.url = ""

    def fetch(self, path: str, token: str | None = None) -> Any:
        """A JSON answer of the real registry (what an attacker in the middle can read)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.upstream + path, headers=headers, timeout=30).json()


@contextmanager
def mitm(upstream: str) -> Iterator[Mitm]:
    """A :class:`Mitm` listening on 127.0.0.1 for the duration of the block."""
    proxy = Mitm(upstream)
    http = httpx.Client(base_url=proxy.upstream, timeout=60)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _relay(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            proxy.seen.append(f"{self.command} {self.path}")
            forged = proxy.replace(self.command, self.path)
            if forged is not None:
                self._send(200, json.dumps(forged).encode(), "application/json")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            answer = http.request(self.command, self.path, content=body, headers=headers)
            data = answer.content
            kind = answer.headers.get("content-type", "")
            if kind.startswith("application/json") and answer.status_code < 300:
                data = json.dumps(proxy.rewrite(self.command, self.path, answer.json())).encode()
            self._send(answer.status_code, data, kind, answer.headers.get("location"))

        def _send(self, status: int, data: bytes, kind: str, location: str | None = None) -> None:
            self.send_response(status)
            self.send_header("content-type", kind or "application/octet-stream")
            self.send_header("content-length", str(len(data)))
            if location:
                self.send_header("location", location)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        http.close()
