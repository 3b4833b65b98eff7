"""Server settings: one frozen object, built from the CLI or the environment.

The FastAPI app gets it through the cached :func:`get_settings` dependency;
:func:`~modelseal.registry.app.create_app` overrides that dependency with the
settings it was given, and tests swap it the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = ["DEFAULT_DATA_DIR", "RegistrySettings", "get_settings"]

#: Where ``modelseal serve`` keeps its SQLite database and blobs by default.
DEFAULT_DATA_DIR = Path("modelseal-registry")


@dataclass(frozen=True)
class RegistrySettings:
    """Everything the server needs to know; nothing is read at import time."""

    #: Directory for the embedded SQLite database, local blobs and upload staging.
    data_dir: Path = DEFAULT_DATA_DIR
    #: SQLAlchemy URL; ``None`` means SQLite at ``data_dir/registry.db``.
    db_url: str | None = None
    #: A directory, or ``s3://bucket/prefix``; ``None`` means ``data_dir/blobs``.
    blobs: str | None = None
    #: S3 endpoint (MinIO, Ceph, a test server); ``None`` uses AWS.
    s3_endpoint_url: str | None = None
    #: Largest single file accepted in an upload.
    max_file_bytes: int = 64 * 1024**3
    #: Largest number of files in one version.
    max_files: int = 10_000
    #: Largest signature bundle accepted at commit.
    max_signature_bytes: int = 1024 * 1024
    #: Unfinished upload sessions expire after this many seconds.
    upload_ttl_seconds: int = 24 * 3600
    #: Declared bytes one user may have in open uploads at once (a quota on what the
    #: server agrees to stage).
    max_user_upload_bytes: int = 1024**4
    #: Bytes the publish gate scans for one commit (each distinct blob counted once).
    max_scan_bytes_per_commit: int = 256 * 1024**3
    #: Bytes the publish gate scans for one user in a sliding hour.
    max_scan_bytes_per_user_hour: int = 1024**4
    #: Gate runs at once; commits waiting for or running the gate (more get 503);
    #: gate runs of one user at once (that user's other commits wait their turn).
    gate_workers: int = 2
    gate_capacity: int = 256
    gate_commits_per_user: int = 2
    #: How long a commit request waits for its gate run before it gives up (the upload
    #: stays open, so the client can commit again).
    gate_timeout_seconds: int = 3600
    #: Failed authentications allowed per client address within the window.
    auth_failures_allowed: int = 10
    auth_failure_window_seconds: int = 300
    #: Whether a version needs an SBOM to be published (switch off only where the
    #: SBOM generator is not installed).
    require_sbom: bool = True
    #: Lifetime of presigned S3 download URLs.
    presign_seconds: int = 300
    #: Namespace names whose anonymous read is allowed are those marked public;
    #: this switches anonymous access off entirely.
    allow_anonymous_read: bool = True
    #: The transparency log's tree-head signing key (PEM private key); ``None`` means
    #: ``data_dir/log-key.priv.pem``, generated on first start. Replicas must share one.
    log_key: Path | None = None
    #: Extra settings for tests and operators, as (name, value) pairs.
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL actually used."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'registry.db').resolve()}"

    @property
    def blob_location(self) -> str:
        """The blob store location actually used (a directory or an ``s3://`` URL)."""
        return self.blobs or str((self.data_dir / "blobs").resolve())

    @property
    def staging_dir(self) -> Path:
        """Where partial uploads are kept until their digest is checked."""
        return self.data_dir / "staging"

    @classmethod
    def from_env(cls) -> RegistrySettings:
        """Settings from ``MODELSEAL_REGISTRY_*`` environment variables."""
        env = os.environ
        return cls(
            data_dir=Path(env.get("MODELSEAL_REGISTRY_DATA", str(DEFAULT_DATA_DIR))),
            db_url=env.get("MODELSEAL_REGISTRY_DB") or None,
            blobs=env.get("MODELSEAL_REGISTRY_BLOBS") or None,
            s3_endpoint_url=env.get("MODELSEAL_REGISTRY_S3_ENDPOINT") or None,
            log_key=Path(env["MODELSEAL_REGISTRY_LOG_KEY"])
            if env.get("MODELSEAL_REGISTRY_LOG_KEY")
            else None,
        )


@lru_cache(maxsize=1)
def get_settings() -> RegistrySettings:
    """The settings dependency (cached); overridden by ``create_app(settings)``."""
    return RegistrySettings.from_env()
