"""Every tampering of a signed model is caught and named."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from modelseal.errors import UsageError, VerificationError
from modelseal.integrity import sign, verify
from modelseal.integrity.results import ChangeKind
from modelseal.integrity.signing.keys import KeyPair
from tests.samples.models import build_model_dir

SHARD = "model-00001-of-00002.safetensors"


@pytest.fixture(params=["files", "shards"])
def signed(request: pytest.FixtureRequest, model: Path, tmp_path: Path, ec_keys: KeyPair) -> Path:
    sig = tmp_path / "model.sig"
    sign(model, key=ec_keys.private_key, output=sig, method=request.param, shard_size=256)
    return sig


def _verify(model: Path, sig: Path, keys: KeyPair, **kw: object):  # type: ignore[no-untyped-def]
    return verify(model, key=keys.public_key, signature=sig, **kw)


def test_untouched_model_is_valid(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    result = _verify(model, signed, ec_keys)
    assert result.ok, result.reasons
    assert result.files_checked == 6


def test_byte_flip(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    target = model / SHARD
    data = bytearray(target.read_bytes())
    data[-3] ^= 0x01
    target.write_bytes(bytes(data))
    result = _verify(model, signed, ec_keys)
    assert not result.ok
    assert [c.path for c in result.changed] == [SHARD]
    change = result.changed[0]
    assert change.expected and change.actual and change.expected != change.actual
    assert "changed" in result.reasons[0]


def test_rename(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    os.rename(model / "config.json", model / "config2.json")
    result = _verify(model, signed, ec_keys)
    assert not result.ok
    assert [(c.renamed_from, c.path, c.kind) for c in result.renamed] == [
        ("config.json", "config2.json", ChangeKind.RENAMED)
    ]
    assert not result.added and not result.removed


def test_add_and_delete(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    (model / "extra.txt").write_text("new")
    (model / "tokenizer.json").unlink()
    result = _verify(model, signed, ec_keys)
    assert [c.path for c in result.added] == ["extra.txt"]
    assert [c.path for c in result.removed] == ["tokenizer.json"]
    assert result.added[0].actual is not None and result.removed[0].expected is not None


def test_added_empty_file_fails(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    (model / "sub").mkdir()
    (model / "sub" / "empty").write_bytes(b"")
    result = _verify(model, signed, ec_keys)
    assert not result.ok
    assert [c.path for c in result.added] == ["sub/empty"]


def test_swap_two_files(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    a, b = model / "config.json", model / "tokenizer.json"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    result = _verify(model, signed, ec_keys)
    assert sorted(c.path for c in result.changed) == ["config.json", "tokenizer.json"]


def _edit_payload(sig: Path, edit) -> None:  # type: ignore[no-untyped-def]
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    edit(statement)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))


def test_edited_dsse_payload(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    (model / "config.json").write_text('{"evil": true}')

    def edit(statement: dict) -> None:  # an attacker "fixes" the digest of the changed file
        import hashlib

        for r in statement["predicate"]["resources"]:
            if r["name"].startswith("config.json"):
                r["digest"] = hashlib.sha256(b'{"evil": true}').hexdigest()

    _edit_payload(signed, edit)
    result = _verify(model, signed, ec_keys)
    assert not result.ok
    assert result.reasons == (
        "invalid signature: the payload was altered or signed by another key",
    )


def test_wrong_key(model: Path, signed: Path, ec_keys: KeyPair, other_keys: KeyPair) -> None:
    result = _verify(model, signed, other_keys)
    assert not result.ok
    assert result.reasons[0].startswith("wrong key")


def test_wrong_key_without_hint(model: Path, signed: Path, other_keys: KeyPair) -> None:
    bundle = json.loads(signed.read_text())
    bundle["verificationMaterial"]["publicKey"]["hint"] = ""
    signed.write_text(json.dumps(bundle))
    result = _verify(model, signed, other_keys)
    assert not result.ok
    assert "invalid signature" in result.reasons[0]


def test_bundle_from_another_model(
    tmp_path: Path, model: Path, ec_keys: KeyPair, signed: Path
) -> None:
    other = build_model_dir(tmp_path / "other-model", seed=7)
    result = _verify(other, signed, ec_keys)
    assert not result.ok
    assert {c.path for c in result.changed} >= {SHARD}


@pytest.mark.parametrize(
    "text", ["", "not json", "[]", '{"mediaType": "x"}', '{"mediaType": '
     '"application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": {"payload": "@@"}}'],
)  # fmt: skip
def test_broken_bundle_is_one_line_error(
    model: Path, tmp_path: Path, ec_keys: KeyPair, text: str
) -> None:
    sig = tmp_path / "broken.sig"
    sig.write_text(text)
    with pytest.raises(VerificationError) as caught:
        _verify(model, sig, ec_keys)
    assert caught.value.message and "\n" not in caught.value.message


def test_unsigned_code_fails_unless_allowed(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    (model / ".github").mkdir()
    (model / ".github" / "x.py").write_text("print('hi')\n")
    (model / ".gitignore").write_text("*.tmp\n")
    result = _verify(model, signed, ec_keys)
    assert not result.ok
    assert {(u.path, u.is_code) for u in result.unsigned} == {
        (".github/x.py", True),
        (".gitignore", False),
    }
    assert "unsigned code" in result.reasons[0]
    assert _verify(model, signed, ec_keys, allow_unsigned=True).ok


def test_symlink_refused_unless_allowed(model: Path, signed: Path, ec_keys: KeyPair) -> None:
    (model / "link.json").symlink_to(model / "config.json")
    result = _verify(model, signed, ec_keys)
    assert not result.ok
    assert result.symlinks == ("link.json",)
    allowed = _verify(model, signed, ec_keys, allow_symlinks=True)
    assert [c.path for c in allowed.added] == ["link.json"]


def test_signature_cannot_ignore_everything(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    from modelseal.integrity.bundle import IN_TOTO_PAYLOAD_TYPE
    from modelseal.integrity.manifest import Manifest
    from modelseal.integrity.serialization import Serialization
    from modelseal.integrity.signing.key import KeySigner
    from modelseal.integrity.signing.keys import load_private_key

    with pytest.raises(UsageError):
        sign(model, key=ec_keys.private_key, output=tmp_path / "x.sig", ignore=["."])
    # A (validly signed) manifest claiming to ignore "." covers nothing: all files are added.
    manifest = Manifest("toy-model", Serialization(ignore_paths=(".",)), ())
    bundle = KeySigner(load_private_key(ec_keys.private_key)).sign(
        manifest.to_payload(), IN_TOTO_PAYLOAD_TYPE
    )
    sig = tmp_path / "dot.sig"
    sig.write_text(bundle.to_json())
    result = _verify(model, sig, ec_keys)
    assert not result.ok and len(result.added) == 6


def test_ignore_globs_are_recorded_and_shown(model: Path, tmp_path: Path, ec_keys: KeyPair) -> None:
    (model / "notes.tmp").write_text("scratch")
    sig = tmp_path / "g.sig"
    signed = sign(model, key=ec_keys.private_key, output=sig, ignore=["*.tmp", "README.md"])
    assert signed.ignored == ("README.md", "notes.tmp")
    (model / "later.tmp").write_text("added after signing, matches the glob")
    result = _verify(model, sig, ec_keys)
    assert result.ok, result.reasons
    assert "README.md" in result.ignore_paths
    assert {u.path for u in result.unsigned} == {"README.md", "notes.tmp", "later.tmp"}


def test_unsigned_pickle_under_ignored_path_is_code(
    model: Path, tmp_path: Path, ec_keys: KeyPair
) -> None:
    import pickle

    sig = tmp_path / "m.sig"
    sign(model, key=ec_keys.private_key, output=sig, ignore=["extras"])
    (model / "extras").mkdir()
    (model / "extras" / "weights.bin").write_bytes(pickle.dumps({"a": 1}))  # pickle, not by name
    (model / "extras" / "notes.bin").write_bytes(b"\x00\x01 plain bytes")
    (model / "extras" / "run").write_text("#!/bin/sh\ntrue\n")
    result = _verify(model, sig, ec_keys)
    assert {(u.path, u.is_code) for u in result.unsigned} == {
        ("extras/weights.bin", True),
        ("extras/notes.bin", False),
        ("extras/run", True),
    }
    assert not result.ok
