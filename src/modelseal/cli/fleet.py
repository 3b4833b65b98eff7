"""``modelseal fleet scan`` and ``modelseal fleet report``."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import click

from modelseal.cli._common import emit, emit_report, output_option
from modelseal.config import load_settings
from modelseal.errors import UsageError
from modelseal.formats.inventory import Limits
from modelseal.render import OutputFormat
from modelseal.scan import ScanOptions, Verdict

__all__ = ["fleet_group"]


@click.group("fleet")
def fleet_group() -> None:
    """Scan whole mirrors and object-store prefixes, incrementally, on a cluster."""


@fleet_group.command("scan")
@click.argument("sources", nargs=-1)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: a process pool here; ray: tasks on a Ray cluster.",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster to join (auto, ray://HOST:10001, HOST:PORT); default: start one.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Processes (local) or CPUs of the local Ray cluster (default: all CPUs).",
)
@click.option(
    "--cache",
    default=None,
    metavar="PATH|s3://BUCKET/PREFIX",
    help="A SQLite file or an S3 Parquet dataset: re-runs scan only new or changed content.",
)
@click.option("--s3-endpoint", default=None, help="S3 endpoint URL (MinIO, Ceph, test servers).")
@click.option("--strict", is_flag=True, help="Unknown pickle globals count as malicious.")
@click.option("--deep", is_flag=True, help="Also inspect weight values.")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Settings file (modelseal.toml or pyproject.toml). Default: the nearest one found.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The Parquet results file (one row per file).",
)
@click.option(
    "--format",
    "-f",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How the summary is printed.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar on standard error (default: when it is a terminal).",
)
def scan_command(
    sources: tuple[str, ...],
    engine: str,
    address: str | None,
    workers: int | None,
    cache: str | None,
    s3_endpoint: str | None,
    strict: bool,
    deep: bool,
    config: Path | None,
    output: Path,
    output_format: str,
    progress: bool | None,
) -> int:
    """Scan every model under SOURCE... (directories or s3://bucket/prefix).

    A model is a directory holding model files (Hugging Face layout) or a
    standalone file. Per-file verdicts are those `modelseal scan` gives.

    \b
    Exit codes: 0 every file clean, 1 something is not clean, 2 usage error.

    \b
    Examples:
      modelseal fleet scan ./mirror -o results.parquet --cache fleet.db
      modelseal fleet scan s3://models/hub --engine ray --address auto -o r.parquet
    """
    from modelseal.fleet import FleetOptions, run_fleet

    if not sources:
        raise UsageError("no SOURCE given", advice="modelseal fleet scan DIR|s3://B/P -o OUT")
    options = FleetOptions(
        scan=ScanOptions(strict=strict, deep=deep, limits=Limits(), settings=load_settings(config)),
        engine=engine,
        address=address,
        workers=workers,
        cache=cache,
        s3_endpoint=s3_endpoint,
    )
    if sys.stderr.isatty() if progress is None else progress:
        from rich.console import Console
        from rich.progress import Progress

        with Progress(transient=True, console=Console(stderr=True)) as bar:
            task = bar.add_task("scanning", total=None)

            def on_progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = run_fleet(list(sources), output, options, progress=on_progress)
    else:
        summary = run_fleet(list(sources), output, options)
    if output_format == "json":
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        data = summary.to_dict()["summary"]
        click.echo(
            f"models {data['models']}  files {data['files']}  "
            f"scanned {data['scanned']}  cached {data['cached']}"
        )
        click.echo("  ".join(f"{v} {data[v]}" for v in (x.value for x in Verdict)))
        click.echo(f"results: {summary.output}")
    return 0 if summary.is_clean else 1


@fleet_group.command("report")
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "-f",
    "output_format",
    type=click.Choice(["table", "json", "sarif"]),
    default="table",
    show_default=True,
    help="table: models worst first; json/sarif: the `modelseal scan` report of the subset.",
)
@output_option
@click.option(
    "--model", "models", multiple=True, help="Only models matching this glob (repeatable)."
)
@click.option(
    "--verdict",
    "verdicts",
    multiple=True,
    type=click.Choice([v.value for v in Verdict]),
    help="Only models whose worst verdict is this (repeatable).",
)
@click.option("--top", type=click.IntRange(1), default=None, help="Only the N worst models.")
def report_command(
    results: Path,
    output_format: str,
    output: Path | None,
    models: tuple[str, ...],
    verdicts: tuple[str, ...],
    top: int | None,
) -> int:
    """Show a fleet results file: the worst models first, or a subset as scan JSON/SARIF.

    \b
    Exit codes: 0 every selected file clean, 1 something is not clean, 2 usage error.

    \b
    Examples:
      modelseal fleet report results.parquet --top 20
      modelseal fleet report results.parquet --verdict malicious -f sarif -o fleet.sarif
    """
    from modelseal.fleet.results import model_rows, read_rows, scan_report

    rows = read_rows(results)
    ranked = [
        m
        for m in model_rows(rows)
        if (not models or any(fnmatch.fnmatchcase(m.model, g) for g in models))
        and (not verdicts or m.verdict in verdicts)
    ][:top]
    chosen = {(m.source, m.model) for m in ranked}
    subset = sorted(
        (r for r in rows if (r.source, r.model) in chosen), key=lambda r: (r.source, r.path)
    )
    if output_format == "table":
        lines = [f"{'verdict':<11} {'files':>6} {'not clean':>9}  model"]
        for m in ranked:
            bad = m.files - m.counts.get(Verdict.CLEAN.value, 0)
            name = m.model or m.source
            lines.append(f"{m.verdict:<11} {m.files:>6} {bad:>9}  {name}")
        lines.append(f"{len(ranked)} models, {len(subset)} files")
        emit("\n".join(lines), output)
    else:
        emit_report(scan_report(subset), OutputFormat(output_format).value, output)
    clean = all(r.verdict == Verdict.CLEAN.value for r in subset)
    if output is not None:
        click.echo(f"wrote {output}", err=True)
    return 0 if clean else 1
