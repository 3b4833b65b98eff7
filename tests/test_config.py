"""User settings from pyproject.toml or modelseal.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.config import WILDCARD, Settings, load_settings
from modelseal.errors import ConfigError


def test_pyproject_tables(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n'
        "[tool.modelseal.scan.dangerous-globals]\n"
        '"evilpkg" = "*"\n'
        '"mypkg.utils" = ["run"]\n'
        "[tool.modelseal.scan.safe-globals]\n"
        '"mylib.layers" = ["Block"]\n'
    )
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    settings = load_settings(start=nested)
    assert settings.dangerous_globals == {"evilpkg": WILDCARD, "mypkg.utils": frozenset({"run"})}
    assert settings.safe_globals == {"mylib.layers": frozenset({"Block"})}


def test_modelseal_toml_without_prefix(tmp_path: Path) -> None:
    path = tmp_path / "modelseal.toml"
    path.write_text('[scan.safe-globals]\n"mylib" = "*"\n')
    assert Settings.from_file(path).safe_globals == {"mylib": WILDCARD}


def test_no_config_means_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_settings(start=tmp_path) == Settings()


@pytest.mark.parametrize(
    "body",
    ['[scan.safe-globals]\n"m" = 3\n', "[scan\n", '[scan.safe-globals]\n"m" = [1]\n'],
)
def test_invalid_config_is_a_clear_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "modelseal.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=str(path)):
        Settings.from_file(path)
