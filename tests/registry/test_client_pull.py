"""Client pulls whose signature is checked the long way: a bundle that is not a ``files``
/ SHA-256 manifest (here: shards) is verified by re-hashing the downloaded files, with the
trusted or pinned key loaded in memory from its PEM text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from modelseal.errors import VerificationError
from tests.samples.registry import write_model

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def sharded(registry: Any, keypair: Any, tmp_path: Path) -> Any:
    """``acme/m:1.0`` signed with a ``shards`` manifest (``check_signature_digests`` cannot
    compare it by file digest)."""
    from modelseal import integrity

    registry.namespace("acme")
    registry.user("pub", roles={"acme": "publisher"})
    registry.user("reader", roles={"acme": "reader"})
    registry.trust("acme", keypair.public_key)
    model = write_model(tmp_path / "model", seed=5)
    signature = tmp_path / "model.sig"
    integrity.sign(model, key=keypair.private_key, output=signature, method="shards")
    with registry.client(registry.token("pub")) as client:
        client.push(model, "acme/m:1.0", signature=signature)
    registry.reader = registry.token("reader")
    return registry


@pytest.fixture
def verified_keys(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ``key`` of every ``integrity.verify`` call the client makes."""
    from modelseal import integrity

    keys: list[Any] = []
    real = integrity.verify

    def spy(path: Any, **options: Any) -> Any:
        keys.append(options.get("key"))
        return real(path, **options)

    monkeypatch.setattr(integrity, "verify", spy)
    return keys


def _in_memory(keys: list[Any]) -> bool:
    return bool(keys) and not any(isinstance(k, str | os.PathLike) for k in keys)


def test_a_shards_bundle_verifies_with_the_trusted_key_in_memory(
    sharded: Any, verified_keys: list[Any], tmp_path: Path
) -> None:
    with sharded.client(sharded.reader) as client:
        result = client.pull("acme/m:1.0", tmp_path / "out")
    assert any(c.startswith("signature verifies with trusted key") for c in result.checks)
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert _in_memory(verified_keys), verified_keys  # a key object, not a file written out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.pull-")] == []


def test_a_shards_bundle_and_a_pinned_key(
    sharded: Any, verified_keys: list[Any], keypair: Any, other_keypair: Any, tmp_path: Path
) -> None:
    with sharded.client(sharded.reader) as client:
        with pytest.raises(VerificationError, match="does not verify with any trusted key"):
            client.pull("acme/m:1.0", tmp_path / "bad", keys=[other_keypair.public_key])
        result = client.pull("acme/m:1.0", tmp_path / "ok", keys=[keypair.public_key])
    assert result.signed_by == str(keypair.public_key)
    assert not (tmp_path / "bad").exists()
    # the wrong key already fails on the signed statement, before any file is hashed
    assert len(verified_keys) == 1 and _in_memory(verified_keys)
