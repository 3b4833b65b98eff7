"""Training provenance: SLSA Provenance v1 attestations bound to a model's manifest root digest.

``attest`` writes the same Sigstore bundle / DSSE form as a signature; the
in-toto Statement's subject is the model (name + manifest root digest, the one
the model's signature also commits to) and its predicate is SLSA Provenance v1::

    buildDefinition: {buildType: "https://modelseal.dev/training/v1",
                      externalParameters: {"hyperparameters": {KEY: VALUE...}},
                      resolvedDependencies: [{name, uri, digest, annotations: {role}}...]}
    runDetails: {builder: {id}, metadata: {invocationId?, startedOn, finishedOn}}

Roles are ``base_model``, ``dataset`` and ``code``. References are written
``ID@ALGO:HEX`` / ``ID@HEX`` (sha256 assumed) for models and datasets and
``REPO@COMMIT`` for code (a git commit, recorded as ``gitCommit``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelseal._io import atomic_write
from modelseal.errors import SignatureError, UsageError, VerificationError
from modelseal.integrity.bundle import IN_TOTO_PAYLOAD_TYPE, Bundle
from modelseal.integrity.manifest import STATEMENT_TYPE
from modelseal.integrity.results import ProvenanceCheck
from modelseal.integrity.signing.interface import Verifier

__all__ = [
    "BUILD_TYPE",
    "SLSA_PREDICATE_TYPE",
    "AttestResult",
    "Dependency",
    "Provenance",
    "attest",
    "check_provenance",
    "parse_reference",
    "read_provenance",
]

SLSA_PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://modelseal.dev/training/v1"
DEFAULT_BUILDER = "https://modelseal.dev/builders/local"
_HEX = re.compile(r"^[0-9a-fA-F]{7,128}$")


@dataclass(frozen=True)
class Dependency:
    """A resolved dependency: base model, dataset or training code."""

    role: str
    name: str
    #: algorithm -> hex digest (``gitCommit`` for code).
    digest: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        """SLSA ResourceDescriptor."""
        return {
            "name": self.name,
            "uri": self.name,
            "digest": dict(self.digest),
            "annotations": {"role": self.role},
        }

    def __str__(self) -> str:
        algo, value = next(iter(self.digest.items()))
        return f"{self.name}@{algo}:{value}"


def parse_reference(text: str, role: str) -> Dependency:
    """Parse ``NAME@[ALGO:]HEX`` (raises :class:`UsageError`)."""
    name, sep, digest = text.rpartition("@")
    if not sep or not name or not digest:
        raise UsageError(f"{role} reference {text!r} must be NAME@DIGEST")
    algo, colon, value = digest.partition(":")
    if not colon:
        algo, value = ("gitCommit" if role == "code" else "sha256"), digest
    if not _HEX.match(value):
        raise UsageError(
            f"{role} reference {text!r}: the digest must be 7 to 128 hexadecimal characters, "
            "as NAME@HEX (a git commit for code, SHA-256 otherwise) or NAME@ALGO:HEX"
        )
    return Dependency(role, name, {algo: value.lower()})


@dataclass(frozen=True)
class Provenance:
    """A parsed provenance statement."""

    model_name: str
    root_digest: str
    builder: str
    dependencies: tuple[Dependency, ...]
    parameters: Mapping[str, str]
    started_on: str | None
    finished_on: str | None

    def of_role(self, role: str) -> tuple[Dependency, ...]:
        """Dependencies with ``role``."""
        return tuple(d for d in self.dependencies if d.role == role)

    def to_statement(self) -> dict[str, Any]:
        """The in-toto Statement v1 with a SLSA Provenance v1 predicate."""
        metadata = {
            k: v for k, v in (("startedOn", self.started_on), ("finishedOn", self.finished_on)) if v
        }
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.model_name, "digest": {"sha256": self.root_digest}}],
            "predicateType": SLSA_PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {
                        "hyperparameters": dict(sorted(self.parameters.items()))
                    },
                    "resolvedDependencies": [d.to_json() for d in self.dependencies],
                },
                "runDetails": {"builder": {"id": self.builder}, "metadata": metadata},
            },
        }

    @classmethod
    def from_payload(cls, payload: bytes) -> Provenance:
        """Parse a payload (raises :class:`SignatureError`)."""
        try:
            data = json.loads(payload)
            if (
                data.get("_type") != STATEMENT_TYPE
                or data.get("predicateType") != SLSA_PREDICATE_TYPE
            ):
                raise SignatureError(
                    "not a provenance attestation (expected predicate type "
                    f"{SLSA_PREDICATE_TYPE}, got {data.get('predicateType')!r})"
                )
            subject = data["subject"][0]
            build = data["predicate"]["buildDefinition"]
            run = data["predicate"]["runDetails"]
            deps = tuple(
                Dependency(
                    str(d.get("annotations", {}).get("role", "unknown")),
                    str(d.get("name") or d.get("uri")),
                    {str(k): str(v) for k, v in d.get("digest", {}).items()},
                )
                for d in build.get("resolvedDependencies", [])
            )
            params = build.get("externalParameters", {}).get("hyperparameters", {})
            meta = run.get("metadata", {})
            return cls(
                str(subject["name"]),
                str(subject["digest"]["sha256"]),
                str(run["builder"]["id"]),
                deps,
                {str(k): str(v) for k, v in params.items()},
                meta.get("startedOn"),
                meta.get("finishedOn"),
            )
        except SignatureError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise SignatureError(f"provenance attestation is malformed ({exc})") from exc


@dataclass(frozen=True)
class AttestResult:
    """What ``attest`` wrote."""

    output: Path
    provenance: Provenance


def attest(
    path: str | os.PathLike[str],
    *,
    key: Any,
    output: str | os.PathLike[str] | None = None,
    base_model: Sequence[str] | str = (),
    datasets: Sequence[str] = (),
    code: Sequence[str] | str = (),
    params: Mapping[str, str] | Sequence[str] = (),
    builder: str = DEFAULT_BUILDER,
    started_on: str | None = None,
    signature: str | os.PathLike[str] | None = None,
    passphrase: str | bytes | None = None,
    method: str = "files",
    hash_algorithm: str = "sha256",
    shard_size: int | None = None,
) -> AttestResult:
    """Sign the training provenance of the model at ``path``.

    The subject digest is the model's manifest root digest: taken from
    ``signature`` (verified with the same key) when given, else computed with
    ``method``/``hash_algorithm`` (match them to the model's signature).
    """
    from modelseal.integrity.manifest import Manifest
    from modelseal.integrity.operations import make_signer, read_bundle, read_signed_manifest
    from modelseal.integrity.serialization import (
        DEFAULT_IGNORED,
        DEFAULT_SHARD_SIZE,
        Serialization,
        hash_files,
        list_model,
    )
    from modelseal.integrity.signing.key import KeyVerifier

    root = Path(path)
    signer = make_signer(key, passphrase=passphrase)
    out = Path(output) if output is not None else Path(str(root.resolve()) + ".provenance.sig")
    if signature is not None:
        manifest = read_signed_manifest(read_bundle(signature), KeyVerifier(signer.public_key))
        name, digest = manifest.model_name, manifest.root_digest
    else:
        ser = Serialization(
            method=method,
            hash_type=hash_algorithm,
            shard_size=(shard_size or DEFAULT_SHARD_SIZE) if method == "shards" else None,
            ignore_paths=DEFAULT_IGNORED,
        )
        listing = list_model(root, ignore_paths=ser.ignore_paths)
        built = Manifest.build(root.resolve().name, ser, hash_files(listing.files, ser))
        name, digest = built.model_name, built.root_digest
    deps = [
        *(parse_reference(r, "base_model") for r in _as_list(base_model)),
        *(parse_reference(r, "dataset") for r in datasets),
        *(parse_reference(r, "code") for r in _as_list(code)),
    ]
    parameters = dict(params) if isinstance(params, Mapping) else _parse_params(params)
    now = (
        _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )
    provenance = Provenance(name, digest, builder, tuple(deps), parameters, started_on, now)
    payload = json.dumps(provenance.to_statement(), indent=2).encode("utf-8")
    atomic_write(out, signer.sign(payload, IN_TOTO_PAYLOAD_TYPE).to_json())
    return AttestResult(out, provenance)


def _as_list(value: Sequence[str] | str) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _parse_params(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"parameter {item!r} must be KEY=VALUE")
        out[key] = value
    return out


def read_provenance(bundle: Bundle, verifier: Verifier | None) -> Provenance:
    """Parse a provenance bundle, authenticating it first when ``verifier`` is given."""
    if verifier is not None:
        payload_type, payload = verifier.verify(bundle)
    else:
        payload_type, payload = bundle.envelope.payload_type, bundle.envelope.payload
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise SignatureError(f"provenance payload has type {payload_type!r}")
    return Provenance.from_payload(payload)


def _matches(dep: Dependency, expected: str) -> bool:
    if "@" not in expected:
        return dep.name == expected
    want = parse_reference(expected, dep.role)
    return dep.name == want.name and all(dep.digest.get(k) == v for k, v in want.digest.items())


def check_provenance(
    bundle: Bundle,
    verifier: Verifier,
    root_digest: str,
    *,
    expect_base_model: str | None = None,
    expect_dataset: Sequence[str] = (),
) -> ProvenanceCheck:
    """Check a provenance bundle: signed, bound to ``root_digest``, matching expectations."""
    try:
        prov = read_provenance(bundle, verifier)
    except (VerificationError, SignatureError) as exc:
        return ProvenanceCheck(False, (exc.message,))
    reasons = []
    if prov.root_digest != root_digest:
        reasons.append(
            f"binds other weights (root digest {prov.root_digest[:16]}..., "
            f"model has {root_digest[:16]}...)"
        )
    bases = prov.of_role("base_model")
    if expect_base_model is not None and not any(_matches(d, expect_base_model) for d in bases):
        reasons.append(
            f"base model is {', '.join(map(str, bases)) or 'not recorded'}, "
            f"expected {expect_base_model}"
        )
    datasets = prov.of_role("dataset")
    for want in expect_dataset:
        if not any(_matches(d, want) for d in datasets):
            reasons.append(f"dataset {want} is not among the recorded datasets")
    return ProvenanceCheck(
        not reasons,
        tuple(reasons),
        builder=prov.builder,
        base_models=tuple(map(str, bases)),
        datasets=tuple(map(str, datasets)),
        code=tuple(map(str, prov.of_role("code"))),
        parameters=tuple(sorted(prov.parameters.items())),
    )
