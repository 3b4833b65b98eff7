"""User settings: ``[tool.modelseal]`` in pyproject.toml, or a ``modelseal.toml``.

Users extend the scanner's lists here instead of editing code::

    [tool.modelseal.scan.dangerous-globals]
    "mypkg.evil" = "*"                 # every name in the module (and submodules)
    "mypkg.utils" = ["run", "spawn"]

    [tool.modelseal.scan.safe-globals]
    "mylib.layers" = ["Block", "Head"]

In ``modelseal.toml`` the same tables are written without the ``tool.modelseal`` prefix.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelseal.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["WILDCARD", "GlobalsTable", "Settings", "load_settings"]

#: Marks a whole module (and its submodules) in a globals table.
WILDCARD: Literal["*"] = "*"

#: module -> the names in it, or the wildcard for all of them.
GlobalsTable = Mapping[str, frozenset[str] | Literal["*"]]


@dataclass(frozen=True)
class Settings:
    """Settings read from the user's configuration file (empty by default)."""

    #: Extra pickle globals to treat as dangerous (critical).
    dangerous_globals: GlobalsTable = field(default_factory=dict)
    #: Extra pickle globals to treat as safe.
    safe_globals: GlobalsTable = field(default_factory=dict)
    #: Where these settings came from, for messages.
    source: str | None = None

    @classmethod
    def from_file(cls, path: Path) -> Settings:
        """Read settings from a pyproject.toml or modelseal.toml file."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("modelseal", {})
        scan = data.get("scan", {})
        if not isinstance(scan, dict):
            raise ConfigError(f"{path}: [scan] must be a table")
        return cls(
            dangerous_globals=_globals_table(scan.get("dangerous-globals", {}), path, "dangerous"),
            safe_globals=_globals_table(scan.get("safe-globals", {}), path, "safe"),
            source=str(path),
        )


def load_settings(config: Path | None = None, *, start: Path | None = None) -> Settings:
    """Settings from ``config`` if given, else from the nearest ``modelseal.toml`` or
    ``pyproject.toml`` with a ``[tool.modelseal]`` table in ``start`` or its parents."""
    if config is not None:
        return Settings.from_file(config)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "modelseal.toml"
        if candidate.is_file():
            return Settings.from_file(candidate)
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and b"[tool.modelseal" in pyproject.read_bytes():
            return Settings.from_file(pyproject)
    return Settings()


def _globals_table(raw: Any, path: Path, which: str) -> dict[str, frozenset[str] | Literal["*"]]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {which}-globals must be a table of module = names")
    table: dict[str, frozenset[str] | Literal["*"]] = {}
    for module, names in raw.items():
        if names == WILDCARD:
            table[module] = WILDCARD
        elif isinstance(names, list) and all(isinstance(n, str) for n in names):
            table[module] = frozenset(names)
        else:
            raise ConfigError(
                f'{path}: {which}-globals.{module} must be "*" or a list of names',
                advice=f'for example: "{module}" = ["name1", "name2"]',
            )
    return table
