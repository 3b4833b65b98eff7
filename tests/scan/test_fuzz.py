"""Hostile input never crashes the scanner, and what cannot be read is never clean."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelseal.demo import build_malicious_model, build_safe_model
from modelseal.scan import Verdict, scan
from tests.samples.pickles import BENIGN, MALICIOUS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    """Real samples of every family to mutate: pickles, torch files, zips, safetensors..."""
    root = tmp_path_factory.mktemp("corpus")
    files: list[Path] = []
    for name, build in [*list(MALICIOUS.items())[::7], *BENIGN.items()]:
        folder = root / name
        folder.mkdir()
        built = build(folder)
        files.extend(
            [built] if built.is_file() else sorted(p for p in built.rglob("*") if p.is_file())
        )
    for model in (build_safe_model(root / "safe"), build_malicious_model(root / "evil")):
        files.extend(sorted(p for p in model.iterdir() if p.is_file()))
    return [(path.name, path.read_bytes()) for path in files]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_files_never_crash_the_scanner(
    corpus: list[tuple[str, bytes]], tmp_path: Path, data: st.DataObject
) -> None:
    name, original = data.draw(st.sampled_from(corpus), label="sample")
    mutation = data.draw(st.sampled_from(["truncate", "flip", "insert", "zero-tail"]))
    position = data.draw(st.integers(0, max(len(original) - 1, 0)), label="position")
    if mutation == "truncate":
        mutated = original[:position]
    elif mutation == "flip":
        mutated = bytearray(original)
        if mutated:
            mutated[position] ^= data.draw(st.integers(1, 255), label="mask")
        mutated = bytes(mutated)
    elif mutation == "insert":
        inserted = data.draw(st.binary(min_size=1, max_size=64))
        mutated = original[:position] + inserted + original[position:]
    else:
        mutated = original[:position] + b"\x00" * (len(original) - position)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    target = folder / name
    target.write_bytes(mutated)
    report = scan([target])  # must not raise
    assert report.results
    for result in report.results:
        assert result.verdict in set(Verdict)
        if result.error is not None:
            assert result.verdict is not Verdict.CLEAN
