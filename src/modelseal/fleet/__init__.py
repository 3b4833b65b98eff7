"""Fleet scanning: a whole hub mirror or object-store prefix, incrementally, on a cluster.

The same scanner as ``modelseal scan`` runs in every task; an engine (a local
process pool, or Ray) only schedules batches of files. Ray, pyarrow and boto3 are
imported when a run needs them, never by ``import modelseal``.

>>> from modelseal.fleet import FleetOptions, run_fleet
>>> summary = run_fleet(["mirror/"], Path("results.parquet"))   # doctest: +SKIP
"""

from modelseal.fleet.errors import FleetError
from modelseal.fleet.results import FleetSummary, Row, read_rows
from modelseal.fleet.run import FleetOptions, run_fleet, scanner_version

__all__ = [
    "FleetError",
    "FleetOptions",
    "FleetSummary",
    "Row",
    "read_rows",
    "run_fleet",
    "scanner_version",
]
