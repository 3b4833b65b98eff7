"""`modelseal fleet scan s3://...` against a moto S3 server on loopback."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from modelseal.fleet import read_rows, sources
from tests.fleet.conftest import report_json, scan_json
from tests.samples.fleet import EVIL_PICKLE, build_mirror

Fleet = Callable[..., tuple[int, str, str]]


def _upload(endpoint: str, root: Path, bucket: str, prefix: str) -> Any:
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=bucket)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}/{path.relative_to(root).as_posix()}",
            Body=path.read_bytes(),
        )
    return client


def _relabel(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_relabel(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _relabel(v, old, new) for k, v in value.items()}
    return value


@pytest.mark.usefixtures("s3_env")
def test_s3_prefix_same_verdicts_and_cached_by_etag(
    fleet: Fleet,
    mirror: tuple[Path, dict[str, str]],
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, expected = mirror
    client = _upload(moto_endpoint, root, "models", "hub-mirror")
    monkeypatch.setattr(sources, "PAGE_SIZE", 50)  # listing must follow the pages
    results, cache = tmp_path / "r.parquet", tmp_path / "c.db"
    source = "s3://models/hub-mirror"
    args = ("scan", source, "--s3-endpoint", moto_endpoint, "-o", results, "--cache", cache)
    code, out, err = fleet(*args, "--workers", "2", "-f", "json")
    assert code == 1, err
    summary = json.loads(out)["summary"]
    assert summary["files"] == len(expected) and summary["models"] == 200
    rows = read_rows(results)
    prefix = f"{source}/"
    assert {r.path.removeprefix(prefix): r.verdict for r in rows} == expected
    # Exactly what `modelseal scan` says about the same files on disk, paths aside.
    assert report_json(fleet, results) == _relabel(scan_json(root), str(root), source)

    _, out, _ = fleet(*args, "-f", "json")
    assert json.loads(out)["summary"]["scanned"] == 0

    # A copy of a model under a new name: same ETags, same layout, so nothing is read.
    model = "hub-mirror/hub/org3/model003/"
    listed = client.list_objects_v2(Bucket="models", Prefix=model)["Contents"]
    for obj in listed:
        target = obj["Key"].replace("model003", "model003-copy")
        client.copy_object(
            Bucket="models", Key=target, CopySource={"Bucket": "models", "Key": obj["Key"]}
        )
    _, out, _ = fleet(*args, "-f", "json")
    summary = json.loads(out)["summary"]
    assert (summary["models"], summary["scanned"]) == (201, 0)
    assert summary["malicious"] == Counter(expected.values())["malicious"] + 1
    for obj in listed:
        client.delete_object(Bucket="models", Key=obj["Key"].replace("model003", "model003-copy"))

    key = "hub-mirror/hub/org2/model011/config.json"
    client.put_object(Bucket="models", Key=key, Body=EVIL_PICKLE)
    _, out, _ = fleet(*args, "-f", "json")
    # The new ETag makes the object be read again; its new size changes the model's
    # layout (what sibling checks see), so the model's other files are scanned again too.
    model011 = [p for p in expected if p.startswith("hub/org2/model011/")]
    assert json.loads(out)["summary"]["scanned"] == len(model011) < len(expected)
    changed = next(r for r in read_rows(results) if r.path == f"s3://models/{key}")
    assert changed.verdict == "malicious"


@pytest.mark.usefixtures("s3_env")
def test_s3_missing_bucket_is_a_usage_error(
    fleet: Fleet, moto_endpoint: str, tmp_path: Path
) -> None:
    code, _, err = fleet(
        "scan", "s3://nope/x", "--s3-endpoint", moto_endpoint, "-o", tmp_path / "r.parquet"
    )
    assert code == 2 and "no such bucket" in err


@pytest.mark.usefixtures("s3_env")
def test_cache_as_a_parquet_dataset_on_s3(fleet: Fleet, moto_endpoint: str, tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    expected = build_mirror(root, models=20, standalone=4)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket="state")
    args = ("scan", root, "-o", tmp_path / "r.parquet", "-f", "json", "--workers", "2")
    args += ("--cache", "s3://state/fleet-cache", "--s3-endpoint", moto_endpoint)
    _, out, _ = fleet(*args)
    assert json.loads(out)["summary"]["scanned"] == len(expected)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="state")["Contents"]}
    assert keys == {"fleet-cache/results.parquet", "fleet-cache/listing.parquet"}
    _, out, _ = fleet(*args)
    assert json.loads(out)["summary"]["scanned"] == 0
    assert json.loads(out)["summary"]["cached"] == len(expected)
