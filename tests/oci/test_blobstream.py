"""The stdlib blob reader: proxies detected from the environment, redirects followed with
the registry's credentials kept to the registry, a body cut short is a failure."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from modelseal.oci.blobstream import StreamFailure, open_blob, proxied


def test_a_proxy_in_the_environment_is_detected_and_no_proxy_bypasses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert not proxied("https://registry.example/v2/")
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert proxied("https://registry.example/v2/")
    assert not proxied("http://registry.example/v2/")
    monkeypatch.setenv("no_proxy", "registry.example")
    assert not proxied("https://registry.example/v2/")


@contextmanager
def _server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_to_storage_is_followed_without_the_registry_credentials() -> None:
    seen: list[str | None] = []

    class Storage(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"bytes")

    with _server(Storage) as storage:

        class Registry(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                seen.append(self.headers.get("Authorization"))
                self.send_response(307)
                self.send_header("Location", f"http://{storage}/bucket/blob?sig=1")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with _server(Registry) as registry:
            response = open_blob(
                f"http://{registry}/v2/r/blobs/sha256:00",
                {"Authorization": "Bearer secret"},
                timeout=10,
                ssl_context=None,
            )
            try:
                assert response.status == 200
                assert b"".join(response.pieces()) == b"bytes"
            finally:
                response.close()
    assert seen == ["Bearer secret", None]


def test_a_body_cut_short_is_a_stream_failure_not_a_short_blob() -> None:
    class Cut(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 100)
            self.close_connection = True

    with _server(Cut) as host:
        response = open_blob(f"http://{host}/blob", {}, timeout=10, ssl_context=None)
        try:
            with pytest.raises(StreamFailure, match="900 bytes missing"):
                b"".join(response.pieces())
        finally:
            response.close()


def test_endless_redirects_are_refused() -> None:
    class Loop(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", self.path + "x")
            self.send_header("Content-Length", "0")
            self.end_headers()

    with _server(Loop) as host, pytest.raises(StreamFailure, match="redirects"):
        open_blob(f"http://{host}/blob", {}, timeout=10, ssl_context=None)
