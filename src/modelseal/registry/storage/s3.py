"""Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph) through boto3.

Uploads use boto3's managed multipart transfer from the staged file (streaming,
bounded memory); downloads are handed to clients as presigned URLs, so blob bytes
never pass through the API replicas.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelseal.errors import ConfigError
from modelseal.registry.names import check_digest
from modelseal.registry.storage.interface import BlobStore, is_digest

__all__ = ["S3BlobStore"]


class S3BlobStore(BlobStore):
    """Objects at ``s3://BUCKET/PREFIX/sha256/<digest>``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        presign_seconds: int = 300,
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.presign_seconds = presign_seconds
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
        )

    def _key(self, digest: str) -> str:
        return f"{self.prefix}sha256/{check_digest(digest)}"

    def _not_found(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def exists(self, digest: str) -> bool:
        """A HEAD request on the object."""
        try:
            self.size(digest)
        except FileNotFoundError:
            return False
        return True

    def put_file(self, digest: str, path: Path) -> None:
        """Multipart upload of the staged file, then remove it."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(str(path), self.bucket, self._key(digest))
        except (BotoCoreError, ClientError) as exc:
            raise ConfigError(f"cannot store blob in s3://{self.bucket}: {exc}") from exc
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def put_bytes(self, digest: str, data: bytes) -> None:
        """One PUT of small bytes."""
        self.client.put_object(Bucket=self.bucket, Key=self._key(digest), Body=data)

    def iter_bytes(self, digest: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Stream the object body."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(digest))
        except ClientError as exc:
            if self._not_found(exc):
                raise FileNotFoundError(digest) from exc
            raise
        body = response["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def size(self, digest: str) -> int:
        """ContentLength from a HEAD request."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(digest))
        except ClientError as exc:
            if self._not_found(exc):
                raise FileNotFoundError(digest) from exc
            raise
        return int(head["ContentLength"])

    def delete(self, digest: str) -> None:
        """DELETE the object."""
        self.client.delete_object(Bucket=self.bucket, Key=self._key(digest))

    def iter_digests(self) -> Iterator[tuple[str, int]]:
        """Every object under ``<prefix>sha256/`` with its size (paginated listing)."""
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = f"{self.prefix}sha256/"
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    name = item["Key"][len(prefix) :]
                    if is_digest(name):
                        yield name, int(item["Size"])
        except (BotoCoreError, ClientError) as exc:
            raise ConfigError(
                f"cannot list s3://{self.bucket}/{prefix}: {exc}",
                advice="check the bucket, the endpoint and the credentials",
            ) from exc

    def download_url(self, digest: str, *, filename: str | None = None) -> str | None:
        """A presigned GET URL valid for ``presign_seconds``."""
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._key(digest)}
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.presign_seconds
        )
        return url
