"""OCI fixtures: the CNCF Distribution registry (Debian ``docker-registry``) on loopback.

Each fixture starts a real registry with a throwaway config (storage in a temp
dir); ``MODELSEAL_REQUIRE_OCI=1`` (set by ``.ci/run``) turns a missing binary into a
failure instead of a skip. Distribution 2.8 has no referrers API, so one fixture
puts a small proxy in front of it that adds exactly that endpoint (OCI 1.1
``GET /v2/<name>/referrers/<digest>`` and the ``OCI-Subject`` response header),
letting the tests exercise both the API and the tag-schema fallback.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import http.server
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelseal.integrity import generate_keypair
from modelseal.integrity.signing.keys import KeyPair
from tests.registry.conftest import free_port
from tests.samples.models import build_model_dir

REGISTRY_BINARY = "/usr/bin/docker-registry"
USER, PASSWORD = "alice", "s3cret-pass"


@dataclass(frozen=True)
class Registry:
    """A running registry: where it listens and where it keeps its blobs."""

    host: str
    storage: Path

    def ref(self, repository: str, tag: str = "v1") -> str:
        return f"oci://{self.host}/{repository}:{tag}"

    def blob_file(self, digest: str) -> Path:
        hexpart = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def require_tool(path: str | None, package: str) -> str:
    """``path`` when the tool is installed; else skip, or fail under ``MODELSEAL_REQUIRE_OCI=1``."""
    if path and Path(path).exists():
        return path
    message = f"{package} is missing: apt-get install {package}"
    if os.environ.get("MODELSEAL_REQUIRE_OCI") == "1":
        pytest.fail(message + " (MODELSEAL_REQUIRE_OCI=1)")
    pytest.skip(message)


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            conn.close()
            if status in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"docker-registry did not answer on port {port} within {timeout} s")


@contextlib.contextmanager
def run_registry(root: Path, auth: dict[str, Any] | None = None) -> Iterator[Registry]:
    """Start ``docker-registry serve`` with storage under ``root``; stop it on exit."""
    require_tool(REGISTRY_BINARY, "docker-registry")
    port = free_port()
    storage = root / "storage"
    storage.mkdir(parents=True)
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if auth:
        config["auth"] = auth
    config_path = root / "config.yml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_ready(port, process)
        yield Registry(f"127.0.0.1:{port}", storage)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry without the referrers API (Distribution 2.8)."""
    with run_registry(tmp_path_factory.mktemp("oci-registry")) as running:
        yield running


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that asks for HTTP basic auth (htpasswd, bcrypt) for every request."""
    import bcrypt

    root = tmp_path_factory.mktemp("oci-htpasswd")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (root / "htpasswd").write_text(f"{USER}:{hashed}\n")
    auth = {"htpasswd": {"realm": "modelseal-tests", "path": str(root / "htpasswd")}}
    with run_registry(root, auth) as running:
        yield running


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry using the token flow: 401 with ``WWW-Authenticate: Bearer realm=...``,
    the client fetches a JWT from our token service (basic auth) and retries."""
    root = tmp_path_factory.mktemp("oci-token")
    service = TokenService(root)
    with service.running() as realm:
        auth = {
            "token": {
                "realm": realm,
                "service": TokenService.SERVICE,
                "issuer": TokenService.ISSUER,
                "rootcertbundle": str(service.cert_path),
            }
        }
        with run_registry(root, auth) as running:
            yield running


class TokenService:
    """A registry token service (the Docker token spec) issuing RS256 JWTs with an x5c chain."""

    SERVICE = "modelseal-test-registry"
    ISSUER = "modelseal-test-issuer"

    def __init__(self, root: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelseal token signer")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = root / "token-cert.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[str] = []

    def issue(self, scope: str) -> str:
        import jwt
        from cryptography.hazmat.primitives import serialization

        access = []
        for item in scope.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": self.ISSUER,
            "sub": USER,
            "aud": self.SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [x5c]})

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                scope = " ".join(query.get("scope", []))
                service.requests.append(scope)
                body = json.dumps({"token": service.issue(scope)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/token"
        finally:
            server.shutdown()
            server.server_close()


class RegistryProxy:
    """Forwards every request to a registry, optionally adding the OCI 1.1 referrers API
    and injecting one-shot network faults.

    With ``referrers_api``, a manifest PUT whose body has a ``subject`` is recorded and
    answered with the ``OCI-Subject`` header (as a 1.1 registry does, so clients skip
    the fallback), and ``GET /v2/<name>/referrers/<digest>`` returns an image index of
    those manifests. ``faults`` may hold ``"patch"`` (the first upload PATCH delivers
    half its body to the registry, then the connection drops) and ``"blob"`` (the first
    full GET of a blob over 4 MiB sends half the bytes, then the connection drops).
    """

    def __init__(
        self,
        upstream: Registry,
        *,
        referrers_api: bool = True,
        faults: frozenset[str] = frozenset(),
    ) -> None:
        self.upstream = upstream
        self.referrers_api = referrers_api
        self.pending_faults = set(faults)
        self.referrers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self.referrers_calls = 0
        self.range_requests = 0
        self.status_requests = 0

    def _fault(self, kind: str) -> bool:
        with self.lock:
            if kind in self.pending_faults:
                self.pending_faults.discard(kind)
                return True
            return False

    @contextlib.contextmanager
    def running(self) -> Iterator[Registry]:
        proxy = self
        upstream_port = int(self.upstream.host.rsplit(":", 1)[1])

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                parts = urllib.parse.urlsplit(self.path).path.split("/")
                if proxy.referrers_api and self.command == "GET" and "referrers" in parts:
                    self._referrers(parts)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                if "uploads" in parts and self.command == "GET":
                    proxy.status_requests += 1
                if "blobs" in parts and self.headers.get("Range"):
                    proxy.range_requests += 1
                cut = False
                if self.command == "PATCH" and len(body) > 1 and proxy._fault("patch"):
                    body = body[: len(body) // 2]
                    headers["Content-Length"] = str(len(body))
                    start = int(headers.get("Content-Range", "0-0").split("-")[0])
                    headers["Content-Range"] = f"{start}-{start + len(body) - 1}"
                    cut = True
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if cut:
                    self.close_connection = True
                    self.connection.shutdown(2)  # the client never sees an answer
                    return
                extra: dict[str, str] = {}
                if (
                    proxy.referrers_api
                    and self.command == "PUT"
                    and "manifests" in parts
                    and response.status == 201
                    and b'"subject"' in body
                ):
                    extra["OCI-Subject"] = proxy._record(parts, body)
                send = data
                if (
                    self.command == "GET"
                    and "blobs" in parts
                    and response.status == 200
                    and len(data) > 4 * 2**20  # the client then holds some bytes to keep
                    and proxy._fault("blob")
                ):
                    send = data[: len(data) // 2]
                    self.close_connection = True
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                for name, value in extra.items():
                    self.send_header(name, value)
                declared = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", declared or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(send)

            def _referrers(self, parts: list[str]) -> None:
                at = parts.index("referrers")
                key = ("/".join(parts[2:at]), parts[at + 1])
                with proxy.lock:
                    proxy.referrers_calls += 1
                    manifests = list(proxy.referrers.get(key, []))
                media_type = "application/vnd.oci.image.index.v1+json"
                body = json.dumps(
                    {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_PATCH = do_HEAD = do_DELETE = _forward

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Registry(f"127.0.0.1:{server.server_address[1]}", self.upstream.storage)
        finally:
            server.shutdown()
            server.server_close()

    def _record(self, parts: list[str], body: bytes) -> str:
        import hashlib

        doc = json.loads(body)
        subject = doc["subject"]["digest"]
        repository = "/".join(parts[2 : parts.index("manifests")])
        entry = {
            "mediaType": doc.get("mediaType", "application/vnd.oci.image.manifest.v1+json"),
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "size": len(body),
            "artifactType": doc.get("artifactType") or doc["config"]["mediaType"],
        }
        with self.lock:
            self.referrers.setdefault((repository, subject), []).append(entry)
        return str(subject)


@pytest.fixture(scope="module")
def referrers_registry(registry: Registry) -> Iterator[tuple[Registry, RegistryProxy]]:
    """The same registry behind a proxy that has the referrers API."""
    proxy = RegistryProxy(registry)
    with proxy.running() as running:
        yield running, proxy


@pytest.fixture
def flaky_registry(registry: Registry) -> Iterator[tuple[Registry, RegistryProxy]]:
    """The registry behind a proxy that drops the first upload PATCH and the first blob
    download half way (no referrers API)."""
    proxy = RegistryProxy(registry, referrers_api=False, faults=frozenset({"patch", "blob"}))
    with proxy.running() as running:
        yield running, proxy


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("oci-keys") / "release")


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("oci-keys-other") / "mallory")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A small HF-style model directory (safetensors shards, config, tokenizer, README)."""
    return build_model_dir(tmp_path / "tiny-model")


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
