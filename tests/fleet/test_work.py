"""Batching and the unit of work."""

from __future__ import annotations

from pathlib import Path

from modelseal.fleet.sources import parse_source
from modelseal.fleet.work import ModelWork, decode_results, make_batches, scan_batch
from modelseal.scan import ScanOptions, scan
from tests.samples.fleet import EVIL_PICKLE


def test_batches_bound_files_and_bytes_and_keep_every_file_once(tmp_path: Path) -> None:
    spec = parse_source(str(tmp_path))
    small = ModelWork(tuple((f"s{i}/f", 10) for i in range(3)), tuple(f"s{i}/f" for i in range(3)))
    big = ModelWork(tuple((f"big/{i}", 400) for i in range(5)), tuple(f"big/{i}" for i in range(5)))
    batches = list(make_batches(spec, ScanOptions(), [small, big], max_files=4, max_bytes=1000))
    files = [f for b in batches for m in b.models for f in m.files]
    assert sorted(files) == sorted(small.files + big.files)
    sizes = {**dict(small.listing), **dict(big.listing)}
    for batch in batches:
        count = sum(len(m.files) for m in batch.models)
        assert count <= 4
        assert count == 1 or sum(sizes[f] for m in batch.models for f in m.files) <= 1000
        # A part of a split model still carries the model's whole listing.
        assert all(m.listing in (small.listing, big.listing) for m in batch.models)
    assert len(batches) == 3


def test_unit_of_work_gives_the_scanner_result_under_any_location(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.bin").write_bytes(EVIL_PICKLE)
    spec = parse_source(str(tmp_path))
    work = ModelWork((("m/model.bin", len(EVIL_PICKLE)),), ("m/model.bin",))
    (scanned,) = scan_batch(next(make_batches(spec, ScanOptions(), [work])))
    assert str(tmp_path) not in scanned.payload  # stored with placeholders
    here = decode_results(scanned.payload, str(tmp_path / "m" / "model.bin"))
    assert here == list(scan([tmp_path / "m" / "model.bin"]).results)
    elsewhere = decode_results(scanned.payload, "s3://b/p/m/model.bin")
    assert elsewhere[0].path == "s3://b/p/m/model.bin"
    assert elsewhere[0].verdict.value == "malicious"
