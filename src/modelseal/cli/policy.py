"""``modelseal check`` and ``modelseal policy``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from modelseal.cli._common import emit, format_option, output_option
from modelseal.errors import UsageError
from modelseal.policy import PRESETS, check, load_policy_file, resolve_policy
from modelseal.render import OutputFormat
from modelseal.render.decision import render_decisions

__all__ = ["check_command", "policy_group"]


@click.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--policy",
    "-p",
    "policy_name",
    default="standard",
    show_default=True,
    help=f"A built-in policy ({', '.join(PRESETS)}) or a YAML/TOML policy file.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A trusted public key (PEM), added to the policy's keys. Repeatable.",
)
@click.option(
    "--signature",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The signature bundle (default: PATH.sig next to the model).",
)
@format_option
@output_option
@click.option(
    "--sarif",
    "sarif_output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the failed checks as SARIF 2.1.0 to this file (for code scanning).",
)
def check_command(
    paths: tuple[Path, ...],
    policy_name: str,
    keys: tuple[Path, ...],
    signature: Path | None,
    output_format: str,
    output: Path | None,
    sarif_output: Path | None,
) -> int:
    """Decide whether the models at PATH... may be deployed: one answer, every reason.

    Runs the scan, the signature check, the format, license, SBOM and lineage
    rules of the policy in one go, for each PATH (a model directory or file).

    \b
    Exit codes: 0 allow (all of them), 1 deny (any of them), 2 usage error.

    \b
    Examples:
      modelseal check ./my-model
      modelseal check ./my-model --policy strict --key publisher.pub
      modelseal check ./my-model --policy team-policy.yaml --sarif gate.sarif
    """
    if signature is not None and len(paths) > 1:
        raise UsageError("--signature applies to one PATH; give one path or rely on PATH.sig")
    policy = resolve_policy(policy_name)
    decisions = [check(path, policy, keys=keys, signature=signature) for path in paths]
    fmt = OutputFormat(output_format)
    color = output is None and fmt is OutputFormat.TABLE and sys.stdout.isatty()
    emit(render_decisions(decisions, fmt, color=color), output)
    if sarif_output is not None:
        emit(render_decisions(decisions, OutputFormat.SARIF), sarif_output)
    return 0 if all(d.allowed for d in decisions) else 1


@click.group("policy")
def policy_group() -> None:
    """Show the built-in policies and validate policy files."""


@policy_group.command("show")
@click.argument("name", type=click.Choice(sorted(PRESETS)))
def show_command(name: str) -> None:
    """Print a built-in policy as YAML (a starting point for your own)."""
    import yaml

    click.echo(yaml.safe_dump(PRESETS[name].to_dict(), sort_keys=False).rstrip())


@policy_group.command("list")
def list_command() -> None:
    """List the built-in policies."""
    for name, policy in PRESETS.items():
        click.echo(f"{name:<11} {policy.description}")


@policy_group.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate_command(path: Path) -> None:
    """Check that a policy file is valid (exit 2 with the problems if not)."""
    policy = load_policy_file(path)
    click.echo(f"{path}: valid policy '{policy.name}'")
