"""Benchmark: the registry's web pages on loopback against the 200 ms page budget.

The web-page tests check that every page renders; how fast is measured here, because a
test that asserts a wall-clock time fails on a busy machine. The registry is seeded with
the web tests' data (``tests/samples/registry_web.py``: 60 public models, a model with 80
versions, a version with 600 findings), served by ``modelseal serve`` on 127.0.0.1, and
every page of ``tests/registry/web/test_pages.py::PAGES`` is fetched once to warm up and
then ``--repeat`` times. Reported per page: the median server time (its ``Server-Timing``
header) and the median wall time of the request on loopback, and whether both are under
the budget. Run: ``.venv/bin/python bench/bench_registry_web.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["PAGE_BUDGET_MS", "main"]

#: Every page should be served within this many milliseconds (server time and loopback wall).
PAGE_BUDGET_MS = 200.0


def _seed(data: Path) -> dict[str, str]:
    """Seed a SQLite registry under ``data``; returns a session cookie per seeded user."""
    from fastapi.testclient import TestClient
    from tests.registry.web.conftest import login
    from tests.samples.registry_web import seed_web_data

    from modelseal.registry.app import create_app
    from modelseal.registry.db.session import migrate
    from modelseal.registry.settings import RegistrySettings

    settings = RegistrySettings(data_dir=data)
    migrate(settings.database_url)
    app = create_app(settings)
    try:
        seeded = seed_web_data(app.state.sessions, app.state.store)
        cookies = {}
        for user, token in seeded.tokens.items():
            # the session key lives in the data directory, so the cookie works for `serve` too
            with TestClient(app, base_url="https://testserver", follow_redirects=False) as web:
                login(web, token)
                cookies[user] = web.cookies["modelseal_session"]
        return cookies
    finally:
        app.state.engine.dispose()


def _time_page(http: Any, path: str, cookie: str | None, repeat: int) -> dict[str, Any]:
    headers = {"cookie": f"modelseal_session={cookie}"} if cookie else {}
    http.get(path, headers=headers)  # warm the connection and the server's caches
    walls, servers = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        response = http.get(path, headers=headers)
        walls.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}")
        found = re.fullmatch(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
        servers.append(float(found.group(1)) if found else float("nan"))
    server, wall = statistics.median(servers), statistics.median(walls)
    return {
        "server_ms": round(server, 1),
        "wall_ms": round(wall, 1),
        "within_budget": server < PAGE_BUDGET_MS and wall < PAGE_BUDGET_MS,
    }


def main(argv: list[str] | None = None) -> int:
    """Time every page; print JSON; exit 1 when a page is over the budget."""
    import httpx
    from tests.registry.web.test_pages import PAGES

    from bench.bench_registry_load import RegistryServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per page")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        data = Path(tmp) / "data"
        cookies = _seed(data)
        with (
            RegistryServer(data) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            pages = {
                f"{user or 'anonymous'} {path}": _time_page(
                    http, path, cookies[user] if user else None, args.repeat
                )
                for user, path in PAGES
            }
    slow = sorted(name for name, page in pages.items() if not page["within_budget"])
    print(
        json.dumps(
            {
                "budget_ms": PAGE_BUDGET_MS,
                "repeat": args.repeat,
                "load_average_1min": round(os.getloadavg()[0], 1),
                "worst_server_ms": max(p["server_ms"] for p in pages.values()),
                "worst_wall_ms": max(p["wall_ms"] for p in pages.values()),
                "over_budget": slow,
                "pages": pages,
            },
            indent=2,
        )
    )
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
