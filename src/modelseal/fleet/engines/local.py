"""The local engine: a process pool on this machine.

A worker that dies (killed, out of memory) breaks the pool; the pool is then
started again and the batches that had not finished are submitted again, at most
:data:`~modelseal.fleet.engines.MAX_RETRIES` times.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from modelseal.fleet.engines import MAX_RETRIES, Engine
from modelseal.fleet.errors import FleetError
from modelseal.fleet.work import Batch, ScannedFile, scan_batch

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    """Batches on ``workers`` processes (default: one per CPU)."""

    def __init__(self, workers: int | None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._context = multiprocessing.get_context("spawn")

    def close(self) -> None:
        """Nothing to release: each run's pool is shut down when the run ends."""

    def run(self, batches: Iterable[Batch]) -> Iterator[list[ScannedFile]]:
        pending = list(batches)
        for _attempt in range(MAX_RETRIES + 1):
            if not pending:
                return
            pool = ProcessPoolExecutor(self.workers, mp_context=self._context)
            try:
                futures: dict[Future[list[ScannedFile]], Batch] = {
                    pool.submit(scan_batch, batch): batch for batch in pending
                }
                pending = []
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        batch = futures.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            pending.append(batch)
                            continue
                        yield result
            finally:
                # An interrupted run (Ctrl-C, an error in the caller) does not wait for
                # the batches that had not started.
                pool.shutdown(wait=True, cancel_futures=True)
        if pending:
            raise FleetError(
                f"{len(pending)} batches lost: workers kept dying",
                advice="run again with --cache to resume from what finished (a script "
                "calling run_fleet needs an `if __name__ == '__main__':` guard: workers "
                "are spawned and import it)",
            )
