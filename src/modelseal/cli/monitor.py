"""``modelseal monitor``: calibrate a runtime-monitor baseline and check inputs against it.

MODEL_DIR is a model directory (``modelseal-model.json`` + ``model.safetensors``; see
:mod:`modelseal.monitor.modeldir` and docs/monitor.md). Inputs are ``.npy``/``.npz`` arrays of
shape (N, *input_shape), read without pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from modelseal.cli._common import emit, output_option, table_or_json_option

__all__ = ["monitor_group"]

_model_dir = click.argument(
    "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
_inputs = click.option(
    "--inputs",
    "inputs_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Inputs as a .npy or .npz array of shape (N, *input_shape).",
)
_signature = click.option(
    "--signature",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Signature bundle of MODEL_DIR: load every tensor verified against it.",
)
_key = click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key to check --signature with.",
)


def _load(model_dir: Path, signature: Path | None, key: Path | None) -> Any:
    from modelseal.errors import UsageError
    from modelseal.monitor.modeldir import load_model_dir

    if signature is not None and key is None:
        raise UsageError("--signature needs --key", advice="pass the publisher's public key")
    return load_model_dir(model_dir, signature=signature, key=key)


@click.group("monitor", context_settings={"help_option_names": ["-h", "--help"]})
def monitor_group() -> None:
    """Calibrate and check the runtime integrity monitor.

    \b
    modelseal monitor calibrate MODEL_DIR --inputs CLEAN.npy -o baseline.json
        record what clean inputs look like inside the model
    modelseal monitor check MODEL_DIR --baseline baseline.json --inputs X.npy
        score inputs (exit 1 if any is anomalous)

    MODEL_DIR holds modelseal-model.json (the layers of a torch.nn.Sequential and the input
    shape) and model.safetensors. Other models are monitored from Python:
    modelseal.monitor.watch(model, baseline=...). Needs the torch extra.
    """


@monitor_group.command("calibrate")
@_model_dir
@_inputs
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Baseline file to write (.json, or .npz for compressed arrays).",
)
@click.option(
    "--layer",
    "layers",
    multiple=True,
    help="Module to monitor (repeatable; default: the penultimate layer with weights).",
)
@click.option(
    "--target-far",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.01,
    show_default=True,
    help="False-alert rate on clean inputs the threshold is set for.",
)
@_signature
@_key
def calibrate_command(
    model_dir: Path,
    inputs_path: Path,
    output: Path,
    layers: tuple[str, ...],
    target_far: float,
    signature: Path | None,
    key: Path | None,
) -> None:
    """Record a baseline of MODEL_DIR on clean inputs and write it to --output."""
    from modelseal.monitor import calibrate, save_baseline
    from modelseal.monitor.modeldir import load_inputs

    loaded = _load(model_dir, signature, key)
    inputs = load_inputs(inputs_path, loaded.input_shape)
    baseline = calibrate(loaded.model, inputs, layers=layers or None, target_far=target_far)
    save_baseline(baseline, output)
    summary = baseline.summary()
    click.echo(
        f"wrote {output}: {summary['n_samples']} inputs, layer(s) {', '.join(baseline.layers)}, "
        f"{summary['classes']} class(es), threshold {baseline.threshold:.6g}",
        err=True,
    )


@monitor_group.command("check")
@_model_dir
@click.option(
    "--baseline",
    "baseline_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Baseline written by `modelseal monitor calibrate`.",
)
@_inputs
@table_or_json_option("A table of the anomalous inputs for people, or JSON with every score.")
@output_option
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, min_open=True),
    default=None,
    help="Alert above this score instead of the baseline's calibrated threshold.",
)
@_signature
@_key
def check_command(
    model_dir: Path,
    baseline_path: Path,
    inputs_path: Path,
    output_format: str,
    output: Path | None,
    threshold: float | None,
    signature: Path | None,
    key: Path | None,
) -> int:
    """Score every input of --inputs against the baseline; list the anomalous ones.

    \b
    Exit codes: 0 no anomaly, 1 at least one anomalous input, 2 usage error.
    """
    from modelseal.monitor import check, load_baseline
    from modelseal.monitor.modeldir import load_inputs

    loaded = _load(model_dir, signature, key)
    baseline = load_baseline(baseline_path)
    inputs = load_inputs(inputs_path, loaded.input_shape)
    report = check(loaded.model, baseline, inputs, threshold=threshold)
    document = {
        "version": 1,
        "model": str(model_dir),
        "verified": signature is not None,
        "baseline": {**baseline.summary(), "path": str(baseline_path)},
        "threshold": report.threshold,
        "inputs": len(report.results),
        "alerts": len(report.alerts),
        "results": [r.to_dict() for r in report.results],
    }
    if output_format == "json":
        emit(json.dumps(document, indent=2), output)
    else:
        emit(_table(document, report), output)
    return 1 if report.alerts else 0


def _table(document: dict[str, Any], report: Any) -> str:
    lines = [
        f"{document['inputs']} input(s) scored against {document['baseline']['path']} "
        f"(threshold {report.threshold:.6g}); {document['alerts']} anomalous"
        + ("" if document["verified"] else " [weights not verified: pass --signature/--key]")
    ]
    if report.alerts:
        lines.append(f"{'index':>7}  {'score':>12}  {'x threshold':>11}  predicted")
        for result in report.alerts:
            ratio = result.score / report.threshold if result.score == result.score else None
            lines.append(
                f"{result.index:>7}  {result.score:>12.6g}  "
                f"{'non-finite' if ratio is None else f'{ratio:.2f}':>11}  "
                f"{'-' if result.predicted is None else result.predicted}"
            )
    return "\n".join(lines)
