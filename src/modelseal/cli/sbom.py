"""``modelseal sbom``: write, audit and compare model SBOMs.

``modelseal sbom PATH ...`` generates (the default subcommand ``generate``);
``modelseal sbom audit BOM --advisories DIR`` and ``modelseal sbom diff OLD NEW``
work on written BOMs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from modelseal.cli._common import emit, output_option, table_or_json_option
from modelseal.cli.oci import ModelLocation, local_copies
from modelseal.errors import UsageError

__all__ = ["sbom_group"]


class _DefaultGroup(click.Group):
    """A group that runs ``generate`` when the first argument is not a subcommand."""

    default_command = "generate"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(
    "sbom",
    cls=_DefaultGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
def sbom_group() -> None:
    """Write, audit and compare model SBOMs (CycloneDX ML-BOM, SPDX 3 AI).

    \b
    modelseal sbom PATH [--format cyclonedx|spdx3] [--spec-version 1.6|1.7] -o FILE
        write the SBOM of a model directory or file (same as `sbom generate`)
    modelseal sbom audit BOM --advisories PATH
        match a BOM against offline OSV advisories (exit 1 on a hit)
    modelseal sbom diff OLD NEW
        show what changed between two BOMs (exit 1 when they differ)
    """


@sbom_group.command("generate")
@click.argument("path", type=ModelLocation())
@click.option(
    "--format",
    "-f",
    "sbom_format",
    type=click.Choice(["cyclonedx", "spdx3"]),
    default="cyclonedx",
    show_default=True,
    help="CycloneDX JSON ML-BOM or SPDX 3.0.1 JSON-LD (AI and Dataset profiles).",
)
@click.option(
    "--spec-version",
    type=click.Choice(["1.6", "1.7"]),
    default=None,
    help="CycloneDX spec version [default: 1.6]. SPDX is always 3.0.1.",
)
@output_option
@click.option("--sha512", is_flag=True, help="Record SHA-512 next to SHA-256 for every file.")
@click.option(
    "--signature",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Check this signature bundle and record the result.",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key to check --signature with.",
)
@click.option(
    "--scan/--no-scan",
    default=True,
    show_default=True,
    help="Scan the files and record findings as vulnerabilities.",
)
@click.option(
    "--repo-id",
    help="Hugging Face repo id (org/name) of the model, when the path does not tell.",
)
def generate_command(
    path: Path | str,
    sbom_format: str,
    spec_version: str | None,
    output: Path | None,
    sha512: bool,
    signature: Path | None,
    key: Path | None,
    scan: bool,
    repo_id: str | None,
) -> int:
    """Write the SBOM of the model at PATH (a directory or a single file).

    Everything is read offline from the files: the model card, config.json,
    tokenizer and generation settings, tensor headers, format metadata, hashes.
    What could not be read is printed as a warning and recorded in the SBOM.

    \b
    Examples:
      modelseal sbom ./my-model -o my-model.cdx.json
      modelseal sbom ./my-model --format spdx3 -o my-model.spdx3.json
      modelseal sbom ./my-model --spec-version 1.7 --sha512
    """
    from modelseal.sbom import build_sbom

    if sbom_format == "spdx3" and spec_version is not None:
        raise UsageError("--spec-version applies to CycloneDX only (SPDX is 3.0.1)")
    if key is not None and signature is None:
        raise UsageError("--key needs --signature")
    with local_copies([path]) as (local, _):
        result = build_sbom(
            local[0],
            format=sbom_format,
            spec_version=spec_version,
            sha512=sha512,
            signature=signature,
            key=key,
            scan=scan,
            repo_id=repo_id,
        )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    emit(json.dumps(result.document, indent=2, ensure_ascii=False), output)
    return 0


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    widths[-1] = min(widths[-1], 80)

    def line(cells: list[str]) -> str:
        return "  ".join(c[:w].ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


@sbom_group.command("audit")
@click.argument("bom", type=click.Path(path_type=Path))
@click.option(
    "--advisories",
    required=True,
    type=click.Path(path_type=Path),
    help="OSV advisories: a JSON file or a directory of them.",
)
@table_or_json_option()
@click.option(
    "--strict",
    is_flag=True,
    help="Also fail on possible hits (packages whose version the BOM does not pin).",
)
@output_option
def audit_command(
    bom: Path, advisories: Path, output_format: str, strict: bool, output: Path | None
) -> int:
    """Match BOM components against offline OSV advisories.

    PyPI packages are matched by name and version ranges, models by repo id or
    file SHA-256, datasets by name. Exit 1 when something is affected.
    """
    from modelseal.sbom import audit_sbom, load_bom

    report = audit_sbom(load_bom(bom), advisories)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output_format == "json":
        emit(json.dumps(report.to_dict(), indent=2), output)
    elif report.hits:
        rows = [
            [
                h.advisory,
                h.severity,
                h.kind,
                h.component,
                h.version or "-",
                ("" if h.certain else "possible: ") + (h.reason or h.summary),
            ]
            for h in report.hits
        ]
        headers = ["ADVISORY", "SEVERITY", "KIND", "COMPONENT", "VERSION", "WHY"]
        emit(_table(headers, rows), output)
    else:
        emit(
            f"no advisory matches ({report.components} components, {report.advisories} advisories)",
            output,
        )
    return 1 if report.failed(include_possible=strict) else 0


@sbom_group.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@table_or_json_option()
@output_option
def diff_command(old: Path, new: Path, output_format: str, output: Path | None) -> int:
    """Show what changed between two BOMs (any mix of CycloneDX and SPDX 3).

    Compares files and their hashes, the scan findings recorded for them, base
    models, datasets, licenses and dependencies. Exit 0 when nothing differs, 1
    when something does.
    """
    from modelseal.sbom import diff_sbom, load_bom

    result = diff_sbom(load_bom(old), load_bom(new))
    if output_format == "json":
        emit(json.dumps(result.to_dict(), indent=2), output)
    elif result.identical:
        emit("no differences", output)
    else:
        rows: list[list[str]] = []
        for change in result.changes:
            detail: Any = {
                "added": change.new,
                "removed": change.old,
                "changed": f"{change.old} -> {change.new}",
            }[change.change]
            rows.append([change.change, change.kind, change.name, str(detail)])
        emit(_table(["CHANGE", "KIND", "NAME", "DETAIL"], rows), output)
    return 0 if result.identical else 1
