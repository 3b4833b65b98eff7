"""Policy files: validation, presets, YAML and TOML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelseal.errors import PolicyError
from modelseal.policy import PRESETS, Policy, load_policy_file, resolve_policy


def test_presets_round_trip_through_files(tmp_path: Path) -> None:
    for name, policy in PRESETS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(policy.to_dict()))
        assert load_policy_file(path) == policy


def test_toml_policy_and_relative_keys(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    path = tmp_path / "team.toml"
    path.write_text(
        'name = "team"\n[signature]\nrequired = true\nkeys = ["keys/pub.pem"]\n'
        '[formats]\ndeny = ["pickle-based"]\n'
    )
    policy = load_policy_file(path)
    assert policy.name == "team"
    assert policy.signature.keys == (tmp_path / "keys" / "pub.pem",)
    assert "pytorch-zip" in policy.formats.expanded(policy.formats.deny)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("scan: {max_severity: extreme}\n", "scan.max_severity"),
        ("formats: {deny: [exe]}\n", "unknown format"),
        ("signatures: {required: true}\n", "signatures"),
        ("version: 2\n", "version"),
        ("- just\n- a list\n", "mapping"),
        ("scan: [unclosed\n", "not valid"),
    ],
)
def test_invalid_policies_name_the_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(PolicyError, match=problem):
        load_policy_file(path)


def test_resolve_unknown_name() -> None:
    with pytest.raises(PolicyError, match="neither a built-in policy nor a file"):
        resolve_policy("no-such-policy")
    assert resolve_policy("strict") is PRESETS["strict"]
    assert isinstance(PRESETS["permissive"], Policy)
