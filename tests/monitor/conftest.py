"""Fixtures of the monitor tests: torch is optional, threads are few (2 shared CPU cores)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> Iterator[None]:
    """One BLAS/torch thread: small models are fastest so, and CI cores are shared."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(previous)
