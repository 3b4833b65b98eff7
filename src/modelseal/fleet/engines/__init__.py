"""Engines run batches somewhere and hand back their results as they finish.

``local`` is a process pool on this machine; ``ray`` submits Ray tasks to a Ray
cluster. Both run the same unit of work, :func:`modelseal.fleet.work.scan_batch`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from types import TracebackType

from modelseal.errors import UsageError
from modelseal.fleet.work import Batch, ScannedFile

__all__ = ["ENGINES", "Engine", "open_engine"]

ENGINES = ("local", "ray")
#: How many times a batch whose worker died is run again.
MAX_RETRIES = 3


class Engine(ABC):
    """Runs batches; results come back in completion order, one list per batch."""

    @abstractmethod
    def run(self, batches: Iterable[Batch]) -> Iterator[list[ScannedFile]]:
        """Submit ``batches`` and yield each one's results when it is done."""

    @abstractmethod
    def close(self) -> None:
        """Release workers (a cluster this engine did not start is left running)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_engine(name: str, *, workers: int | None, address: str | None) -> Engine:
    """The engine ``name``; checks the arguments before anything starts."""
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}", advice="--engine local or --engine ray")
    if address is not None and name != "ray":
        raise UsageError("--address needs --engine ray", advice="drop --address or add it")
    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    if name == "local":
        from modelseal.fleet.engines.local import LocalEngine

        return LocalEngine(workers)
    from modelseal.fleet.engines.ray_cluster import RayEngine

    return RayEngine(address=address, workers=workers)
