"""The Ray engine: every batch is a Ray task; Ray schedules, retries and moves data.

With ``address`` (``auto``, ``ray://head:10001`` or ``host:port``) it joins an
existing cluster (KubeRay, ``ray start``; token authentication as Ray configures
it); without one it starts a local cluster on loopback with ``workers`` CPUs and
no dashboard, and stops it afterwards. In a process where Ray is already
initialised, that cluster is used and left running.
Tasks run with ``max_retries``: when a worker process dies (``kill -9``, OOM
killer, a lost node) Ray runs its batch again elsewhere. At most a few batches per
CPU are in flight, so a huge listing never sits in the object store at once.

Workers import :mod:`modelseal`: on a remote cluster it must be installed there
(in the image or via a ``runtime_env``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from modelseal.fleet.engines import MAX_RETRIES, Engine
from modelseal.fleet.errors import FleetError
from modelseal.fleet.work import Batch, ScannedFile, scan_batch

__all__ = ["RayEngine"]

_IN_FLIGHT_PER_CPU = 4
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class RayEngine(Engine):
    """Batches as Ray tasks on a cluster that is joined or started here."""

    def __init__(self, *, address: str | None, workers: int | None) -> None:
        if address is None:
            # A cluster started here listens on loopback only (Ray otherwise picks the
            # host's routable address); read by Ray when it is first imported.
            os.environ.setdefault(_LOOPBACK_ENV, "0")
        try:
            import ray
        except ImportError as exc:
            raise FleetError(
                "--engine ray needs Ray", advice="pip install 'modelseal[fleet]'"
            ) from exc
        self._ray: Any = ray
        self._owned = False
        if not ray.is_initialized():
            try:
                if address is not None:
                    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
                else:
                    ray.init(
                        num_cpus=workers or os.cpu_count() or 1,
                        include_dashboard=False,
                        _node_ip_address="127.0.0.1",
                        logging_level=logging.WARNING,
                        log_to_driver=False,
                    )
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
                raise FleetError(f"cannot start or join the Ray cluster: {exc}") from exc
            self._owned = True
        self._task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(scan_batch)
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        self._window = max(2, cpus * _IN_FLIGHT_PER_CPU)

    def run(self, batches: Iterable[Batch]) -> Iterator[list[ScannedFile]]:
        ray = self._ray
        todo = iter(batches)
        in_flight: list[Any] = []
        while True:
            for batch in todo:
                in_flight.append(self._task.remote(batch))
                if len(in_flight) >= self._window:
                    break
            if not in_flight:
                return
            done, in_flight = ray.wait(in_flight, num_returns=1)
            try:
                result: list[ScannedFile] = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                raise FleetError(
                    f"a batch failed after {MAX_RETRIES} retries: {exc}",
                    advice="run again with --cache to resume from what finished",
                ) from exc
            yield result

    def close(self) -> None:
        if self._owned:
            self._ray.shutdown()
            self._owned = False
