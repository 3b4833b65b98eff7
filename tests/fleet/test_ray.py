"""`--engine ray` on a real local Ray cluster (2 CPUs, loopback, no dashboard)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from modelseal.fleet import FleetOptions, Row, read_rows, run_fleet
from tests.fleet.conftest import SRC
from tests.samples.fleet import build_mirror

# Ray binds a local cluster to loopback only with this (read when ray is imported).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, Path]]:
    """One Ray head for the module (starting one costs about 10 s here): its address
    and the authentication token file Ray wrote for it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
        try:
            address = str(ray.get_runtime_context().gcs_address)
            assert address.startswith("127.0.0.1:")
            yield address, Path.home() / ".ray" / "auth_token"
        finally:
            ray.shutdown()


def _view(rows: list[Row]) -> list[tuple[str, str, str, str, str | None, str]]:
    return sorted((r.path, r.sha256, r.verdict, r.findings, r.error, r.members) for r in rows)


def _verdicts(rows: list[Row], root: Path) -> dict[str, str]:
    return {Path(r.path).relative_to(root).as_posix(): r.verdict for r in rows}


def test_ray_results_equal_local_engine(cluster: tuple[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    expected = build_mirror(root)
    ray_summary = run_fleet([str(root)], tmp_path / "ray.parquet", FleetOptions(engine="ray"))
    local = FleetOptions(engine="local", workers=2)
    local_summary = run_fleet([str(root)], tmp_path / "local.parquet", local)
    assert ray_summary.to_dict()["summary"] == local_summary.to_dict()["summary"]
    ray_rows = read_rows(tmp_path / "ray.parquet")
    assert _view(ray_rows) == _view(read_rows(tmp_path / "local.parquet"))
    assert _verdicts(ray_rows, root) == expected
    assert ray.is_initialized()  # a cluster the run did not start is left running


def _kill_busy_workers(stop: threading.Event, killed: list[int], most: int) -> None:
    """SIGKILL Ray worker processes while they run a batch (bounded: 120 s, ``most`` kills)."""
    deadline = time.monotonic() + 120
    while not stop.is_set() and len(killed) < most and time.monotonic() < deadline:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            title = " ".join(proc.info["cmdline"] or [])
            if title.startswith("ray::scan_batch") and proc.info["pid"] not in killed:
                try:
                    os.kill(proc.info["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(proc.info["pid"])
                time.sleep(0.3)
                break
        time.sleep(0.01)


def test_killed_ray_worker_loses_nothing(cluster: tuple[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    expected = build_mirror(root)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_busy_workers, args=(stop, killed, 3), daemon=True)
    killer.start()
    try:
        options = FleetOptions(engine="ray", batch_files=16)
        summary = run_fleet([str(root)], tmp_path / "r.parquet", options)
    finally:
        stop.set()
        killer.join(10)
    assert killed, "no busy Ray worker was seen to kill"
    assert summary.scanned == summary.files == len(expected)
    assert _verdicts(read_rows(tmp_path / "r.parquet"), root) == expected


def test_cli_joins_an_existing_cluster(cluster: tuple[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    expected = build_mirror(root, models=12, standalone=4)
    out = tmp_path / "r.parquet"
    command = [sys.executable, "-m", "modelseal", "fleet", "scan", str(root)]
    address, token = cluster
    command += ["--engine", "ray", "--address", address, "-o", str(out), "-f", "json"]
    env = {**os.environ, "RAY_AUTH_TOKEN_PATH": str(token)}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["summary"]["files"] == len(expected)
    assert _verdicts(read_rows(out), root) == expected
