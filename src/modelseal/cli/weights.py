"""``modelseal weights``: inspect weight values (payloads, injected values, edits, lineage)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelseal.cli._common import (
    emit,
    emit_report,
    format_option,
    output_option,
    table_or_json_option,
)
from modelseal.errors import UsageError
from modelseal.scan.model import Severity

__all__ = ["weights_group"]

_fail_on_option = click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity if s is not Severity.INFO]),
    default=Severity.MEDIUM.value,
    show_default=True,
    help="Lowest finding severity that makes the exit code 1 (errors always do).",
)
_workers_option = click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Threads to use (default: one per CPU core).",
)


@click.group("weights")
def weights_group() -> None:
    """Inspect weight values: hidden payloads, injected values, surgical edits, lineage.

    \b
    Exit codes: 0 clean, 1 findings at or above --fail-on (or unreadable files), 2 usage error.
    """


@weights_group.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option
@output_option
@_fail_on_option
@_workers_option
def scan_command(
    paths: tuple[Path, ...],
    output_format: str,
    output: Path | None,
    fail_on: str,
    workers: int | None,
) -> int:
    """Look inside weight values for hidden payloads and injected values.

    Reads safetensors, PyTorch (zip, legacy, TorchScript), GGUF, ONNX, .npy/.npz and
    Keras .weights.h5 files. Detects executables, archives and scripts hidden in the low
    bytes or bits of the weights, structured low-order bits, random bytes over
    fp16/bf16-origin values, NaN/Inf, subnormal floods, exponent
    bit flips and constant or duplicated tensors.

    \b
    Examples:
      modelseal weights scan model.safetensors
      modelseal weights scan ./my-model --format json -o weights.json
    """
    from modelseal.weights import scan_weights

    if not paths:
        raise UsageError("no PATH given", advice="modelseal weights scan PATH... (see --help)")
    report = scan_weights(paths, workers=workers)
    emit_report(report, output_format, output)
    return 0 if report.is_clean(Severity(fail_on)) else 1


@weights_group.command("diff")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@table_or_json_option("A table for people or JSON (stable contract).")
@output_option
@_fail_on_option
@_workers_option
def diff_command(
    base: Path,
    new: Path,
    output_format: str,
    output: Path | None,
    fail_on: str,
    workers: int | None,
) -> int:
    """Compare two versions of a model tensor by tensor.

    Reports each tensor's change, relative norm and effective rank, and names what
    happened: a dtype conversion, a fine-tune, or a surgical low-rank edit
    (ROME/MEMIT-style) of a few tensors, plus tensors added, removed or renamed.
    """
    from modelseal.weights import diff_weights

    result = diff_weights(base, new, workers=workers)
    if output_format == "json":
        emit(json.dumps(result.to_dict(), indent=2), output)
    else:
        emit(_diff_table(result), output)
    return 0 if result.is_clean(Severity(fail_on)) else 1


@weights_group.command("stats")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@output_option
@_workers_option
def stats_command(paths: tuple[Path, ...], output: Path | None, workers: int | None) -> int:
    """Write per-tensor statistics (mean, std, kurtosis, quantiles, low-bit entropy) as JSON."""
    from modelseal.weights import weight_stats

    if not paths:
        raise UsageError("no PATH given", advice="modelseal weights stats PATH -o stats.json")
    stats = weight_stats(paths, workers=workers)
    document = {"version": 1, "tensors": [s.to_dict() for s in stats]}
    emit(json.dumps(document, indent=1), output)
    return 0


@weights_group.command("fingerprint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@output_option
@click.option("--label", help="Name stored in the fingerprint (default: the file names).")
def fingerprint_command(paths: tuple[Path, ...], output: Path | None, label: str | None) -> int:
    """Write a compact weight fingerprint, robust to dtype conversion and fine-tuning."""
    from modelseal.weights import fingerprint

    if not paths:
        raise UsageError("no PATH given", advice="modelseal weights fingerprint PATH -o fp.json")
    emit(fingerprint(paths, label=label).to_json(), output)
    return 0


@weights_group.command("identify")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--against",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of fingerprint files (*.json) of known models.",
)
@table_or_json_option()
@output_option
def identify_command(
    paths: tuple[Path, ...], against: Path, output_format: str, output: Path | None
) -> int:
    """Rank known models by similarity: is this model derived from one of them?

    Exit code 0 when a known model matches (derived), 1 when none does. A file in
    DIR that is not a fingerprint is skipped with a warning.
    """
    from modelseal.weights import identify

    if not paths:
        raise UsageError("no PATH given", advice="modelseal weights identify PATH --against DIR")
    matches = identify(
        paths, against, on_skip=lambda exc: click.echo(f"warning: {exc.message}; skipped", err=True)
    )
    if output_format == "json":
        emit(json.dumps({"matches": [m.to_dict() for m in matches]}, indent=2), output)
    else:
        lines = [f"{'score':>7}  {'derived':<7}  {'tensors':>7}  model"]
        for m in matches:
            derived = "yes" if m.derived else "no"
            lines.append(f"{m.score:7.3f}  {derived:<7}  {m.matched:7d}  {m.label}")
        emit("\n".join(lines), output)
    return 0 if any(m.derived for m in matches) else 1


def _diff_table(result) -> str:  # type: ignore[no-untyped-def]
    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.3g}"

    rows = [t for t in result.tensors if t.status != "unchanged"]
    lines = [f"verdict: {result.verdict}  ({len(result.tensors)} tensors compared)"]
    if rows:
        width = max(len(t.name) for t in rows)
        lines.append(f"{'tensor':<{width}}  {'status':<9}  {'max|d|':>9}  {'rel':>9}  rank")
        for t in rows:
            rank = "-" if t.effective_rank is None else str(t.effective_rank)
            lines.append(
                f"{t.name:<{width}}  {t.status:<9}  {number(t.max_abs_delta):>9}  "
                f"{number(t.rel_delta_norm):>9}  {rank}"
            )
    for finding in result.findings:
        lines.append(f"[{finding.severity.value}] {finding.rule}: {finding.message}")
    return "\n".join(lines)
