"""``modelseal log``: audit the registry's transparency log."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelseal.cli._common import emit, output_option

__all__ = ["log_group", "verify_command"]


@click.group("log")
def log_group() -> None:
    """Audit the registry's transparency log (RFC 6962 Merkle log)."""


@log_group.command("verify")
@click.argument("export", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "-k", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The registry's tree-head public key (PEM).")  # fmt: skip
@click.option("--format", "-f", "output_format", type=click.Choice(["table", "json"]),
              default="table", show_default=True, help="Output format.")  # fmt: skip
@output_option
def verify_command(export: Path, key: Path, output_format: str, output: Path | None) -> int:
    """Audit an exported log offline: EXPORT.json holds its entries and signed tree heads.

    Recomputes the root of every signed size from the entries, checks every tree
    head's signature and that later heads are consistent with earlier ones.

    \b
    Exit codes: 0 the log is intact, 1 it is not, 2 usage error.
    """
    from modelseal.integrity.signing.keys import load_public_key
    from modelseal.transparency.audit import audit_export, load_export

    report = audit_export(load_export(export), load_public_key(key))
    if output_format == "json":
        emit(json.dumps(report.to_json(), indent=2), output)
    else:
        lines = [
            f"entries:     {report.entries}",
            f"tree heads:  {report.tree_heads}",
            f"root hash:   {report.root_hash.hex()}",
        ]
        if report.latest is not None:
            lines.append(
                f"latest head: size {report.latest.tree_size}, root {report.latest.root_hash.hex()}"
            )
        lines += [f"PROBLEM {p.where}: {p.message}" for p in report.problems]
        lines.append("log OK" if report.ok else f"log INVALID: {len(report.problems)} problem(s)")
        emit("\n".join(lines), output)
    return 0 if report.ok else 1
