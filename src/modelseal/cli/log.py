"""``modelseal log``: audit the registry's transparency log, offline or against a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelseal.cli._common import emit, output_option, table_or_json_option

if TYPE_CHECKING:
    from modelseal.transparency.audit import AuditReport

__all__ = ["export_command", "log_group", "verify_command"]

_registry_option = click.option(
    "--registry",
    "registry_url",
    default=None,
    envvar="MODELSEAL_REGISTRY",
    help="Registry URL (default: the last one you logged in to).",
)


@click.group("log")
def log_group() -> None:
    """Audit the registry's transparency log (RFC 6962 Merkle log)."""


@log_group.command("verify")
@click.argument("export", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "-k", type=click.Path(dir_okay=False, path_type=Path),
              help="The registry's tree-head public key (PEM). Online: default the key pinned "
                   "on first contact.")  # fmt: skip
@click.option("--registry", "online", default=None, metavar="URL",
              help="Audit this running registry instead of an export.")  # fmt: skip
@table_or_json_option()
@output_option
def verify_command(
    export: Path | None,
    key: Path | None,
    online: str | None,
    output_format: str,
    output: Path | None,
) -> int:
    """Audit a whole log: an EXPORT.json (offline) or a registry (--registry URL).

    Recomputes the root of every signed size from the entries, checks every tree
    head's signature and that later heads are consistent with earlier ones. Online,
    it also checks the registry's newest head against the last one this client
    accepted (a rewritten or forked history is reported) and remembers it.

    \b
    Exit codes: 0 the log is intact, 1 it is not, 2 usage error.
    """
    from modelseal.errors import UsageError

    if (export is None) == (online is None):
        raise UsageError(
            "give either an EXPORT.json or --registry URL",
            advice="modelseal log verify EXPORT.json --key KEY.pem, or --registry URL",
        )
    if export is not None:
        from modelseal.integrity.signing.keys import load_public_key
        from modelseal.transparency.audit import audit_export, load_export

        if key is None:
            raise UsageError("an offline audit needs --key (the registry's log public key)")
        report = audit_export(load_export(export), load_public_key(key))
    else:
        from modelseal.registry.client import RegistryClient

        with RegistryClient.from_login(online, log_key=key) as client:
            report = client.audit_log()
    _emit(report, output_format, output)
    return 0 if report.ok else 1


def _emit(report: AuditReport, output_format: str, output: Path | None) -> None:
    if output_format == "json":
        emit(json.dumps(report.to_json(), indent=2), output)
        return
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


@log_group.command("export")
@_registry_option
@click.option("--key", "-k", type=click.Path(dir_okay=False, path_type=Path),
              help="Pin the registry's tree-head public key (PEM).")  # fmt: skip
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the export (atomically).")  # fmt: skip
def export_command(registry_url: str | None, key: Path | None, output: Path) -> None:
    """Download a registry's whole log (entries and signed tree heads) for an offline audit.

    The newest tree head is checked against the last one this client accepted first.
    Audit the file later with `modelseal log verify FILE --key LOG-KEY.pem`.
    """
    from modelseal._io import atomic_write
    from modelseal.registry.client import RegistryClient

    with RegistryClient.from_login(registry_url, log_key=key) as client:
        export = client.log_export()
    atomic_write(output, json.dumps(export, indent=1) + "\n")
    click.echo(
        f"exported {len(export['entries'])} entries and {len(export['tree_heads'])} "
        f"tree heads to {output}",
        err=True,
    )
