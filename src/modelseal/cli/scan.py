"""``modelseal scan``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelseal.cli._common import emit_report, format_option, output_option
from modelseal.cli.oci import ModelLocation, local_copies, relabel
from modelseal.config import load_settings
from modelseal.errors import UsageError
from modelseal.formats.inventory import Limits
from modelseal.scan import ScanOptions, ScanReport, Severity, scan

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["scan_command"]


@click.command("scan")
@click.argument("paths", nargs=-1, type=ModelLocation())
@format_option
@output_option
@click.option(
    "--strict",
    is_flag=True,
    help="Deny by default: pickle globals that are not known to be safe count as malicious.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also inspect weight values: hidden payloads, injected values (see `modelseal weights`).",
)
@click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity if s is not Severity.INFO]),
    default=Severity.MEDIUM.value,
    show_default=True,
    help="Lowest finding severity that makes the exit code 1 (errors always do).",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Settings file (modelseal.toml or pyproject.toml). Default: the nearest one found.",
)
@click.option(
    "--max-depth",
    type=click.IntRange(0, 16),
    default=Limits.max_depth,
    show_default=True,
    help="How many archives deep to open nested archives.",
)
@click.option(
    "--max-member-bytes",
    type=click.IntRange(1),
    default=Limits.max_member_bytes,
    show_default=True,
    help="Refuse to decompress any member or stream beyond this size.",
)
@click.option(
    "--hf-cache",
    "hf_cache",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[REPO_ID]",
    help="Also scan the local Hugging Face cache: every cached model, or only REPO_ID "
    "(org/name; write --hf-cache=org/name before other arguments). Honours HF_HUB_CACHE "
    "and HF_HOME.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar on standard error (default: when it is a terminal).",
)
def scan_command(
    paths: tuple[Path | str, ...],
    output_format: str,
    output: Path | None,
    strict: bool,
    deep: bool,
    fail_on: str,
    config: Path | None,
    max_depth: int,
    max_member_bytes: int,
    hf_cache: str | None,
    progress: bool | None,
) -> int:
    """Scan model files, directories and archives without executing anything.

    Every pickle (also inside PyTorch, joblib and NumPy files), Keras config,
    TensorFlow graph, ONNX model, GGUF chat template and SafeTensors header is
    read statically and checked for code that would run when the model is loaded.

    \b
    Exit codes: 0 all clean, 1 something is not clean (a finding at or above
    --fail-on, or a file that could not be analysed), 2 usage error.

    \b
    Examples:
      modelseal scan model.pt
      modelseal scan ./my-model --format json -o report.json
      modelseal scan ./models --strict --format sarif -o modelseal.sarif
      modelseal scan --hf-cache=meta-llama/Llama-3.2-1B
      modelseal scan oci://registry.example/models/bert:1.0
    """
    if hf_cache is not None:
        from modelseal.scan.hf_cache import hf_cache_paths

        paths = (*paths, *hf_cache_paths(hf_cache or None))
    if not paths:
        raise UsageError(
            "no PATH given", advice="modelseal scan PATH... or --hf-cache (see --help)"
        )
    options = ScanOptions(
        strict=strict,
        deep=deep,
        limits=Limits(max_depth=max_depth, max_member_bytes=max_member_bytes),
        settings=load_settings(config),
    )
    with local_copies(paths) as (local, labels):
        report = relabel(_run(local, options, progress), labels)
    emit_report(report, output_format, output)
    return 0 if report.is_clean(Severity(fail_on)) else 1


def _run(paths: list[Path], options: ScanOptions, progress: bool | None) -> ScanReport:
    show = sys.stderr.isatty() if progress is None else progress
    if show:
        from rich.progress import Progress

        with Progress(transient=True, console=_stderr_console()) as bar:
            task = bar.add_task("scanning", total=None)

            def on_progress(done: int, total: int, path: str) -> None:
                bar.update(
                    task, completed=done, total=total, description=f"scanning {Path(path).name}"
                )

            return scan(paths, options=options, progress=on_progress)
    return scan(paths, options=options)


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)
