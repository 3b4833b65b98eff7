"""Benchmark: many concurrent clients pushing and pulling against `modelseal serve` on PostgreSQL.

Issue 9 asks for 50 clients for 60 s; that is the default. Every client is a thread with
its own :class:`~modelseal.registry.client.RegistryClient` (and its own client state, so
rollback protection is active) doing a random mix of:

* **push distinct**: a signed model of its own (``load/c<N>:<n>``, unique bytes);
* **push shared**: a signed version of ``load/shared`` whose weights are the *same*
  bytes for every client (concurrent deduplication of one blob) and which moves the
  ``latest`` tag (concurrent tag moves);
* **pull**: a version someone published (or ``load/shared:latest``), fully verified
  by the client (digests, signature, scan), then checked against what was pushed;
* **info**: a version document.

Afterwards every published version is pulled again and compared with what was pushed,
the database is compared with the list of versions the clients were told exist (none
lost, none extra), the transparency log must audit clean with the server's key and
prove every published version included, and ``modelseal admin fsck`` must find no
problem. The figures: throughput and p50/p95/p99 latency per operation, and the CPU
time the server and the (in-process) clients used, as JSON.

Run: ``.venv/bin/python bench/bench_registry_load.py [--clients 50] [--seconds 60]``
(PostgreSQL from ``--db``, ``$MODELSEAL_TEST_POSTGRES_URL`` or ``scripts/start-postgres.sh``).
The CI test ``tests/registry/test_load.py`` runs the same driver, shorter.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LoadConfig",
    "LoadResult",
    "Published",
    "RegistryServer",
    "database_versions",
    "fresh_database",
    "main",
    "percentiles",
    "prepare_registry",
    "run_load",
    "summarise",
    "verify_log",
    "verify_published",
    "write_model",
]

NAMESPACE = "load"
SHARED = "shared"
_EXE = [sys.executable, "-m", "modelseal"]
#: Generous bound on ``run_load(midway=...)`` once the clients have stopped.
_MIDWAY_TIMEOUT = 600.0


# -- model builder ------------------------------------------------------------------------------


def write_model(root: Path, *, seed: int, values: int, weights: bytes | None = None) -> Path:
    """A small clean safetensors model + config; ``weights`` (a whole safetensors file)
    replaces the generated one, to share its bytes between models."""
    root.mkdir(parents=True, exist_ok=True)
    if weights is None:
        rng = random.Random(seed)
        data = array.array("f", (rng.uniform(-1, 1) for _ in range(values))).tobytes()
        header = json.dumps(
            {"w": {"dtype": "F32", "shape": [values], "data_offsets": [0, len(data)]}}
        ).encode()
        header += b" " * (-len(header) % 8)
        weights = struct.pack("<Q", len(header)) + header + data
    (root / "model.safetensors").write_bytes(weights)
    (root / "config.json").write_text(json.dumps({"model_type": "load", "seed": seed}))
    return root


def _file_digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- server -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RegistryServer:
    """`modelseal serve` as a subprocess on 127.0.0.1 that can be killed and restarted
    (SQLite under ``data`` unless ``db_url`` names another database)."""

    def __init__(self, data: Path, db_url: str | None = None, *, port: int | None = None) -> None:
        self.data = data
        self.db_url = db_url
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait (bounded) until ``/health`` answers."""
        import httpx

        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    *_EXE,
                    "serve",
                    "--data",
                    str(self.data),
                    *(["--db", self.db_url] if self.db_url else []),
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"modelseal serve exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"modelseal serve did not answer within {timeout} s")

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None, "not started"
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Terminate (bounded), then kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> RegistryServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server at ``server_url``; dropped afterwards."""
    import sqlalchemy as sa

    name = f"modelseal_load_{secrets.token_hex(4)}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        base, _, _ = server_url.rpartition("/")
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare_registry(db_url: str, public_key: Path, clients: int) -> list[str]:
    """Migrate, create user and namespace ``load`` trusting ``public_key``; one token per client."""
    import datetime as dt

    from modelseal.registry import identity
    from modelseal.registry.db.session import create_engine_for, migrate, session_factory

    migrate(db_url)
    engine = create_engine_for(db_url)
    try:
        with session_factory(engine)() as session:
            user = identity.create_user(session, NAMESPACE, admin=True)
            identity.trust_key(
                session,
                identity.get_namespace(session, NAMESPACE),
                public_key.read_text(),
                "load",
            )
            return [
                identity.create_token(
                    session,
                    user,
                    namespaces=("*",),
                    actions=("read", "push"),
                    expires_in=dt.timedelta(hours=2),
                )[1]
                for _ in range(clients)
            ]
    finally:
        engine.dispose()


# -- the load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    """How many clients, how long, what mix (weights of each operation)."""

    clients: int = 50
    seconds: float = 60.0
    seed: int = 9
    #: float32 values in a distinct model's weights (16 Ki values = 64 KiB).
    distinct_values: int = 16 * 1024
    #: float32 values in the shared weights (256 Ki values = 1 MiB).
    shared_values: int = 256 * 1024
    mix: tuple[tuple[str, int], ...] = (
        ("push", 3),
        ("push_shared", 2),
        ("pull", 4),
        ("info", 3),
    )
    #: Upload/download threads per client.
    workers: int = 2
    #: ``run_load(midway=...)`` runs once this many versions are published.
    midway_after: int = 5


@dataclass(frozen=True)
class Published:
    """A version a client was told is published, and what it pushed."""

    ref: str
    digest: str
    files: dict[str, str]


@dataclass
class LoadResult:
    """Everything the clients did: per-operation latencies, errors, published versions."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    bytes_pushed: int = 0
    bytes_pulled: int = 0
    errors: list[str] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    #: What ``run_load(midway=...)`` returned (``None`` when there was none or it failed).
    midway: Any = None
    #: Published versions when ``midway`` started, and whether the clients were still running.
    midway_published: int = 0
    midway_during_load: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, op: str, seconds: float) -> None:
        """Add one successful operation."""
        with self._lock:
            self.latencies.setdefault(op, []).append(seconds)


def _client(url: str, token: str, home: Path, workers: int, log_key: Path | None = None) -> Any:
    from modelseal.registry.client import ClientState, RegistryClient

    return RegistryClient(
        url, token, state=ClientState(home), workers=workers, timeout=120, log_key=log_key
    )


def run_load(
    url: str,
    tokens: Sequence[str],
    private_key: Path,
    workdir: Path,
    config: LoadConfig,
    *,
    midway: Callable[[], Any] | None = None,
) -> LoadResult:
    """Run ``config.clients`` client threads against ``url`` for ``config.seconds``.

    Every thread stops starting operations at the deadline and finishes the one in
    flight (each bounded by the client's timeouts). ``midway`` (e.g. an fsck of the live
    registry) runs once, in its own thread, as soon as ``config.midway_after`` versions are
    published: triggered by progress, not by the clock, so on a slow machine it still sees
    versions. When the load ends first it runs then. Its exception is one of the errors.
    """
    result = LoadResult()
    enough = threading.Event()
    load_over = threading.Event()
    shared_weights = write_model(
        workdir / "shared-source", seed=-1, values=config.shared_values
    ).joinpath("model.safetensors")
    shared_bytes = shared_weights.read_bytes()
    ops = [name for name, _ in config.mix]
    weights = [w for _, w in config.mix]
    started = time.monotonic()
    deadline = started + config.seconds

    def worker(number: int) -> None:
        rng = random.Random(config.seed * 1000 + number)
        home = workdir / f"client-{number}"
        counter = 0
        with _client(url, tokens[number % len(tokens)], home / "state", config.workers) as client:
            while time.monotonic() < deadline:
                op = rng.choices(ops, weights)[0]
                counter += 1
                begun = time.perf_counter()
                try:
                    moved = _operation(
                        op, client, number, counter, rng, home, private_key, shared_bytes, config,
                        result,
                    )  # fmt: skip
                except Exception as exc:  # every failure is a finding of the load test
                    with result._lock:
                        result.errors.append(f"client {number} {op}: {type(exc).__name__}: {exc}")
                    continue
                if moved is None:
                    continue
                result.record(op, time.perf_counter() - begun)
                if len(result.published) >= config.midway_after:
                    enough.set()

    def run_midway() -> None:
        assert midway is not None
        enough.wait()
        with result._lock:
            result.midway_published = len(result.published)
        result.midway_during_load = not load_over.is_set()
        try:
            result.midway = midway()
        except Exception as exc:
            with result._lock:
                result.errors.append(f"midway: {type(exc).__name__}: {exc}")

    checker = threading.Thread(target=run_midway, daemon=True) if midway else None
    if checker:
        checker.start()
    try:
        with ThreadPoolExecutor(max_workers=config.clients) as pool:
            for future in [pool.submit(worker, n) for n in range(config.clients)]:
                future.result()
    finally:
        result.seconds = time.monotonic() - started
        load_over.set()
        enough.set()
    if checker:
        checker.join(_MIDWAY_TIMEOUT)
        if checker.is_alive():
            result.errors.append(f"midway: still running {_MIDWAY_TIMEOUT:.0f} s after the load")
    return result


def _operation(
    op: str,
    client: Any,
    number: int,
    counter: int,
    rng: random.Random,
    home: Path,
    private_key: Path,
    shared_bytes: bytes,
    config: LoadConfig,
    result: LoadResult,
) -> int | None:
    """One operation; returns the bytes it moved, or ``None`` when it had nothing to do."""
    if op in ("push", "push_shared"):
        model_dir = home / f"m{counter}"
        if op == "push":
            ref = f"{NAMESPACE}/c{number}:{counter}"
            write_model(model_dir, seed=number * 100_000 + counter, values=config.distinct_values)
            tags: list[str] = []
        else:
            ref = f"{NAMESPACE}/{SHARED}:{number}-{counter}"
            write_model(model_dir, seed=number * 100_000 + counter, values=0, weights=shared_bytes)
            tags = ["latest"]
        try:
            files = _file_digests(model_dir)
            pushed = client.push(model_dir, ref, key=private_key, tags=tags)
        finally:
            shutil.rmtree(model_dir, ignore_errors=True)
        doc = pushed.version
        with result._lock:
            result.published.append(Published(ref, doc["digest"], files))
            result.bytes_pushed += pushed.bytes_uploaded
        return pushed.bytes_uploaded
    with result._lock:
        candidates = list(result.published[-200:])
    if not candidates:
        return None
    if op == "info":
        target = rng.choice(candidates)
        doc = client.info(target.ref)
        if doc["digest"] != target.digest:
            with result._lock:
                result.mismatches.append(f"info {target.ref}: digest {doc['digest']}")
        return 0
    shared_latest = rng.random() < 0.3
    target = None if shared_latest else rng.choice(candidates)
    ref = f"{NAMESPACE}/{SHARED}:latest" if target is None else target.ref
    dest = home / f"pull-{counter}"
    try:
        pulled = client.pull(ref, dest)
        _compare(pulled.version, dest, target, result)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    with result._lock:
        result.bytes_pulled += pulled.bytes_downloaded
    return int(pulled.bytes_downloaded)


def _compare(doc: dict[str, Any], dest: Path, target: Published | None, result: LoadResult) -> None:
    """The pulled files must be what was pushed (for a tag: what was pushed as that version)."""
    ref = f"{doc['namespace']}/{doc['model']}:{doc['version']}"
    if target is None:
        with result._lock:
            target = next((p for p in result.published if p.ref == ref), None)
        if target is None:
            return  # pushed by a client whose push answer has not been recorded yet
    got = _file_digests(dest)
    if got != target.files or doc["digest"] != target.digest:
        with result._lock:
            result.mismatches.append(f"pull {ref}: files differ from what was pushed")


def verify_published(
    url: str, token: str, published: Sequence[Published], workdir: Path, *, workers: int = 4
) -> list[str]:
    """Pull every published version again (fully verified) and compare with what was pushed."""
    problems: list[str] = []
    lock = threading.Lock()

    def check(index: int, item: Published) -> None:
        dest = workdir / f"verify-{index}"
        try:
            with _client(url, token, workdir / f"verify-state-{index % workers}", 2) as client:
                pulled = client.pull(item.ref, dest)
            got = _file_digests(dest)
            if pulled.version["digest"] != item.digest or got != item.files:
                raise AssertionError("files differ from what was pushed")
        except Exception as exc:
            with lock:
                problems.append(f"{item.ref}: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(check, i, p) for i, p in enumerate(published)]:
            future.result()
    return problems


def verify_log(
    url: str, token: str, published: Sequence[Published], state_dir: Path, log_key: Path
) -> list[str]:
    """The transparency log, seen by a client pinning the server's key ``log_key``: the
    whole log audits clean (every signed root recomputes, every head consistent with the
    earlier ones) and every published version's publish entry is proven included."""
    problems: list[str] = []
    with _client(url, token, state_dir, 2, log_key) as client:
        report = client.audit_log()
        problems += [f"log audit: {p.where}: {p.message}" for p in report.problems]
        if report.entries < len(published):
            problems.append(f"the log holds {report.entries} entries for {len(published)} versions")
        for item in published:
            try:
                client.verify_logged(client.resolve(item.ref))
            except Exception as exc:
                problems.append(f"{item.ref}: {type(exc).__name__}: {exc}")
    return problems


def database_versions(db_url: str) -> dict[str, tuple[str, str]]:
    """Every version in the database: ``ns/model:version`` -> (state, digest)."""
    from sqlalchemy import select

    from modelseal.registry.db.models import Model, Namespace, Version
    from modelseal.registry.db.session import create_engine_for, session_factory

    engine = create_engine_for(db_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(Namespace.name, Model.name, Version.name, Version.state, Version.digest)
                .join(Model, Model.id == Version.model_id)
                .join(Namespace, Namespace.id == Model.namespace_id)
            ).all()
    finally:
        engine.dispose()
    return {f"{ns}/{m}:{v}": (state, digest) for ns, m, v, state, digest in rows}


# -- figures ------------------------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 and max in milliseconds (nearest-rank)."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(p: float) -> float:
        index = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
        return round(ordered[index] * 1000, 1)

    return {"p50_ms": rank(50), "p95_ms": rank(95), "p99_ms": rank(99), "max_ms": rank(100)}


def summarise(result: LoadResult) -> dict[str, Any]:
    """Throughput and latency percentiles per operation."""
    operations = {
        op: {"count": len(values), "per_s": round(len(values) / result.seconds, 2)}
        | percentiles(values)
        for op, values in sorted(result.latencies.items())
    }
    total = sum(len(v) for v in result.latencies.values())
    return {
        "seconds": round(result.seconds, 1),
        "operations": operations,
        "ops_per_s": round(total / result.seconds, 2),
        "published_versions": len(result.published),
        "pushed_MB": round(result.bytes_pushed / 1e6, 1),
        "pulled_MB": round(result.bytes_pulled / 1e6, 1),
        "errors": len(result.errors),
        "mismatches": len(result.mismatches),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    """Run the load, check every invariant, print a JSON report; exit 1 on any failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--db", default=None, help="PostgreSQL server URL (a database is created)")
    parser.add_argument("--dir", default=None, help="Working directory (default: system temp)")
    args = parser.parse_args(argv)

    with _postgres_server(args.db or os.environ.get("MODELSEAL_TEST_POSTGRES_URL")) as url:
        return _run(args, url)


@contextlib.contextmanager
def _postgres_server(url: str | None) -> Iterator[str]:
    """``url``, or a cluster from ``scripts/start-postgres.sh`` that is stopped afterwards
    when this call started it (a server that was already running is left alone)."""
    if url:
        yield url
        return
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    with tempfile.NamedTemporaryFile(prefix="modelseal-pg-started-") as started:
        url = subprocess.run(
            [str(scripts / "start-postgres.sh")],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ | {"MODELSEAL_PG_STARTED_FILE": started.name},
        ).stdout.strip()
        try:
            yield url
        finally:
            subprocess.run([str(scripts / "stop-postgres.sh"), started.name], timeout=60)


def _run(args: argparse.Namespace, server_url: str) -> int:
    from modelseal.integrity import generate_keypair
    from modelseal.registry.fsck import fsck_registry
    from modelseal.registry.settings import RegistrySettings

    config = LoadConfig(clients=args.clients, seconds=args.seconds)
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-", dir=args.dir) as tmp,
        fresh_database(server_url) as db_url,
    ):
        base = Path(tmp)
        keys = generate_keypair(base / "release")
        tokens = prepare_registry(db_url, keys.public_key, config.clients)
        with RegistryServer(base / "data", db_url) as server:
            own_cpu = _cpu_seconds(os.getpid())
            server_cpu = _cpu_seconds(server.pid)
            settings = RegistrySettings(data_dir=base / "data", db_url=db_url)
            result = run_load(
                server.url,
                tokens,
                keys.private_key,
                base / "work",
                config,
                midway=lambda: fsck_registry(settings),
            )
            own_cpu = _cpu_seconds(os.getpid()) - own_cpu
            server_cpu = _cpu_seconds(server.pid) - server_cpu
            verify_started = time.perf_counter()
            lost = verify_published(server.url, tokens[0], result.published, base / "verify")
            verify_seconds = time.perf_counter() - verify_started
            log_problems = verify_log(
                server.url,
                tokens[0],
                result.published,
                base / "log-auditor",
                base / "data" / "log-key.pub.pem",
            )
        in_db = database_versions(db_url)
        told = {p.ref: p.digest for p in result.published}
        extra = sorted(set(in_db) - set(told))
        missing = sorted(set(told) - set(in_db))
        report = fsck_registry(settings)
        server_log = server.log.read_text(errors="replace")
    summary = summarise(result) | {
        "clients": config.clients,
        "verify_seconds": round(verify_seconds, 1),
        "lost_or_corrupted": len(lost) + len(missing),
        "log_problems": len(log_problems),
        "unexpected_versions": len(extra),
        "fsck": {"ok": report.ok, "clean": report.clean, "problems": len(report.problems)},
        "fsck_during_load": None
        if result.midway is None
        else {
            "ok": result.midway.ok,
            "versions": result.midway.stats.versions,
            "while_clients_ran": result.midway_during_load,
        },
        "cpus": os.cpu_count(),
        "cpu_seconds_during_load": {
            "server": round(server_cpu, 1),
            "clients": round(own_cpu, 1),
        },
        "load_average_1min_after": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(summary, indent=2))
    for line in (result.errors + result.mismatches + lost + missing + extra + log_problems)[:20]:
        print("PROBLEM", line, file=sys.stderr)
    if result.errors and "Traceback" in server_log:
        print("server log (tail):\n" + server_log[-6000:], file=sys.stderr)
    failed = (
        result.errors
        or result.mismatches
        or lost
        or missing
        or extra
        or log_problems
        or not report.clean
        or (result.midway is not None and not result.midway.ok)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
