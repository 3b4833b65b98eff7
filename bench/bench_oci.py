"""OCI push/pull benchmark: modelseal vs skopeo, side by side in one run.

Starts the CNCF Distribution registry (Debian ``docker-registry``) on loopback, builds a
~1 GiB model (four 256 MiB safetensors shards and a config) and measures, alternating
the tools, each repetition into a fresh repository so nothing is deduplicated:

- push: ``modelseal push DIR oci://...`` (unsigned, and signed with ``--key``) vs
  ``skopeo copy oci:LAYOUT docker://...`` of an OCI layout holding the same files as
  layers (hard links, so building it costs nothing);
- pull: ``modelseal pull --allow-unsigned`` (digests checked, scan) and
  ``modelseal pull --key`` (plus the signature) vs ``skopeo copy docker://... oci:DIR``.

Figures: median wall time of the repetitions, MB/s, peak RSS of the process.
Run: ``python -m bench oci`` (``MODELSEAL_BENCH_MIB`` changes the shard size,
``MODELSEAL_BENCH_REPEAT`` the repetitions, default 3).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["main"]

_SHARDS = 4


def _run(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one child process; raises when it fails."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{output}")
    return elapsed, usage.ru_maxrss * 1024


def _write_model(root: Path, shard_mib: int) -> int:
    root.mkdir(parents=True)
    size = shard_mib * 2**20
    total = 0
    for shard in range(_SHARDS):
        header = json.dumps(
            {"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}
        ).encode()
        header += b" " * (-len(header) % 8)
        path = root / f"model-{shard + 1:05d}-of-{_SHARDS:05d}.safetensors"
        with path.open("wb") as handle:
            handle.write(len(header).to_bytes(8, "little") + header)
            for _ in range(shard_mib):
                handle.write(os.urandom(2**20))
        total += path.stat().st_size
    (root / "config.json").write_text(json.dumps({"model_type": "bench"}))
    return total + (root / "config.json").stat().st_size


def _layout(model: Path, layout: Path) -> None:
    """The same files as an OCI image layout (ModelPack media types), blobs hard-linked."""
    from modelseal.oci.distribution import OCI_MANIFEST, canonical_json
    from modelseal.oci.modelpack import ARTIFACT_TYPE, CONFIG_TYPE, media_type_for

    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = []
    for file in sorted(model.iterdir()):
        with file.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        os.link(file, blobs / digest)
        layers.append(
            {
                "mediaType": media_type_for(file.name),
                "digest": f"sha256:{digest}",
                "size": file.stat().st_size,
                "annotations": {"org.cncf.model.filepath": file.name},
            }
        )
    config = canonical_json({"descriptor": {"name": "bench"}})
    config_digest = hashlib.sha256(config).hexdigest()
    (blobs / config_digest).write_bytes(config)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": {
                "mediaType": CONFIG_TYPE,
                "digest": f"sha256:{config_digest}",
                "size": len(config),
            },
            "layers": layers,
        }
    )
    digest = hashlib.sha256(manifest).hexdigest()
    (blobs / digest).write_bytes(manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entry = {"mediaType": OCI_MANIFEST, "digest": f"sha256:{digest}", "size": len(manifest)}
    entry["annotations"] = {"org.opencontainers.image.ref.name": "v1"}  # type: ignore[assignment]
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def main() -> None:
    """Run the benchmark and print the figures."""
    from tests.oci.conftest import run_registry

    from modelseal.integrity import generate_keypair

    skopeo = shutil.which("skopeo")
    if skopeo is None:
        print("skopeo is not installed (apt-get install skopeo): nothing to compare with")
        return
    shard_mib = int(os.environ.get("MODELSEAL_BENCH_MIB", "256"))
    repeat = int(os.environ.get("MODELSEAL_BENCH_REPEAT", "3"))
    exe = [sys.executable, "-m", "modelseal"]
    with tempfile.TemporaryDirectory(prefix="bench-oci-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        model = work / "model"
        size = _write_model(model, shard_mib)
        _layout(model, work / "layout")
        keys = generate_keypair(work / "keys" / "bench")
        with run_registry(work / "registry") as registry:
            host = registry.host
            runs: dict[str, list[tuple[float, int]]] = {}
            out = work / "out"

            def timed(label: str, argv: list[str], after: Callable[[], None] | None = None) -> None:
                runs.setdefault(label, []).append(_run(argv))
                if after:
                    after()

            def clean() -> None:
                shutil.rmtree(out, ignore_errors=True)

            for i in range(repeat):
                ours, signed, theirs = f"ours{i}", f"signed{i}", f"theirs{i}"
                timed(
                    "push  skopeo copy oci: -> docker://",
                    [skopeo, "copy", "-q", "--dest-tls-verify=false",
                     f"oci:{work / 'layout'}:v1", f"docker://{host}/bench/{theirs}:v1"],
                )  # fmt: skip
                timed(
                    "push  modelseal push (unsigned)",
                    [*exe, "push", str(model), f"oci://{host}/bench/{ours}:v1", "--plain-http"],
                )
                timed(
                    "push  modelseal push --key (sign + push)",
                    [*exe, "push", str(model), f"oci://{host}/bench/{signed}:v1",
                     "--plain-http", "--key", str(keys.private_key)],
                )  # fmt: skip
                timed(
                    "pull  skopeo copy docker:// -> oci:",
                    [skopeo, "copy", "-q", "--src-tls-verify=false",
                     f"docker://{host}/bench/{theirs}:v1", f"oci:{out}:v1"],
                    clean,
                )  # fmt: skip
                timed(
                    "pull  modelseal pull --allow-unsigned",
                    [*exe, "pull", f"oci://{host}/bench/{ours}:v1", str(out),
                     "--plain-http", "--allow-unsigned"],
                    clean,
                )  # fmt: skip
                timed(
                    "pull  modelseal pull --key (+ signature)",
                    [*exe, "pull", f"oci://{host}/bench/{signed}:v1", str(out),
                     "--plain-http", "--key", str(keys.public_key)],
                    clean,
                )  # fmt: skip
    print(f"model: {size / 2**30:.2f} GiB in {_SHARDS} shards; {repeat} repetitions; median")
    print(f"  {'run':<44} {'wall':>8} {'MB/s':>7} {'peak RSS':>9}")
    for label, values in runs.items():
        seconds = statistics.median(v[0] for v in values)
        rss = max(v[1] for v in values)
        print(f"  {label:<44} {seconds:6.2f} s {size / seconds / 1e6:7.0f} {rss / 2**20:6.0f} MiB")


if __name__ == "__main__":
    main()
