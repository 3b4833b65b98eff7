"""Options and helpers shared by several commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from modelseal._io import atomic_write
from modelseal.render import OutputFormat, renderer_for
from modelseal.scan.model import ScanReport

__all__ = [
    "emit",
    "emit_report",
    "format_option",
    "output_option",
    "table_or_json_option",
]

format_option = click.option(
    "--format",
    "-f",
    "output_format",
    type=click.Choice([f.value for f in OutputFormat]),
    default=OutputFormat.TABLE.value,
    show_default=True,
    help="Output: a table for people, JSON (stable contract) or SARIF 2.1.0 for code scanning.",
)


def table_or_json_option(
    help: str = "A table for people, or JSON for tools.",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--format table|json`` for commands whose results are not scan-shaped."""
    return click.option(
        "--format",
        "-f",
        "output_format",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help=help,
    )


output_option = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the output to this file (atomically) instead of standard output.",
)


def emit(text: str, output: Path | None) -> None:
    """Print ``text``, or write it to ``output`` atomically."""
    if output is None:
        click.echo(text)
    else:
        atomic_write(output, text + "\n")


def emit_report(report: ScanReport, output_format: str, output: Path | None) -> None:
    """Render a scan-shaped report in the chosen format and emit it."""
    fmt = OutputFormat(output_format)
    color = output is None and fmt is OutputFormat.TABLE and sys.stdout.isatty()
    emit(renderer_for(fmt).render(report, color=color), output)
