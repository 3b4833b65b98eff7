"""Blob stores: the local content-addressed directory and S3 against a moto server."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from modelseal.errors import ConfigError
from modelseal.registry.errors import BadRequestError
from modelseal.registry.storage import open_store
from modelseal.registry.storage.local import LocalBlobStore
from tests.samples.registry import write_model


def _staged(tmp_path: Path, data: bytes) -> tuple[str, Path]:
    path = tmp_path / f"staged-{len(data)}"
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest(), path


def test_local_store_is_content_addressed_and_read_only(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "blobs"))
    assert isinstance(store, LocalBlobStore)
    digest, staged = _staged(tmp_path, b"weights" * 1000)
    store.put_file(digest, staged)
    assert not staged.exists()
    path = store.local_path(digest)
    assert path is not None and path.name == digest and path.parent.name == digest[:2]
    assert path.stat().st_mode & 0o222 == 0
    assert store.exists(digest) and store.size(digest) == 7000
    assert b"".join(store.iter_bytes(digest, 100)) == b"weights" * 1000
    store.delete(digest)
    assert not store.exists(digest)
    with pytest.raises(FileNotFoundError):
        list(store.iter_bytes(digest))


def test_local_store_refuses_non_digests(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "blobs"))
    for bad in ("../../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(BadRequestError):
            store.exists(bad)


def test_unknown_blob_location_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        open_store("ftp://host/blobs")
    with pytest.raises(ConfigError):
        open_store("s3://")


@pytest.fixture
def bucket(moto_endpoint: str, s3_env: None) -> str:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=moto_endpoint, config=Config(signature_version="s3v4"))
    client.create_bucket(Bucket="models")
    return "models"


def test_s3_store_round_trip_and_presigned_download(
    bucket: str, moto_endpoint: str, tmp_path: Path
) -> None:
    import httpx

    store = open_store(f"s3://{bucket}/prod", endpoint_url=moto_endpoint)
    digest, staged = _staged(tmp_path, b"tensor bytes " * 5000)
    assert not store.exists(digest)
    store.put_file(digest, staged)
    assert not staged.exists()
    assert store.exists(digest) and store.size(digest) == 65000
    assert b"".join(store.iter_bytes(digest)) == b"tensor bytes " * 5000
    url = store.download_url(digest)
    assert url is not None and "X-Amz-Signature" in url and "/prod/sha256/" in url
    assert httpx.get(url).content == b"tensor bytes " * 5000
    store.delete(digest)
    assert not store.exists(digest)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_registry_on_s3_pulls_through_presigned_urls(
    make_registry: Any, bucket: str, moto_endpoint: str, keypair: Any, tmp_path: Path
) -> None:
    registry = make_registry(blobs=f"s3://{bucket}/reg", s3_endpoint_url=moto_endpoint)
    registry.user("alice")
    registry.trust("alice", keypair.public_key)
    token = registry.token("alice")
    model = write_model(tmp_path / "m", size=2000)
    with registry.client(token) as client:
        doc = client.push(model, "alice/m:1.0", key=keypair.private_key).version
        assert doc["state"] == "published", doc["reasons"]
        client.pull("alice/m:1.0", tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == (
        model / "model.safetensors"
    ).read_bytes()
    with registry.http(token) as http:
        blob = doc["files"][0]["digest"]
        response = http.get(f"/namespaces/alice/blobs/{blob}")
    assert response.status_code == 307
    assert response.headers["location"].startswith(moto_endpoint)
    assert "authorization" not in {k.lower() for k in response.headers}
