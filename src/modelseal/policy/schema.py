"""The policy file schema (version 1), validated with pydantic.

A policy is YAML or TOML. Every section is optional; an absent section asks for
nothing. Example::

    version: 1
    name: my-team
    scan: {max_severity: low, strict: true, deep: false}
    formats: {deny: [pickle-based]}
    signature: {required: true, keys: [keys/publisher.pub]}
    license: {allow: [Apache-2.0, MIT], require: true}
    sbom: {required_fields: [license, base_model]}
    lineage: {allowed_base_models: ["meta-llama/*", "mistralai/*"]}
    registry: {required_origin: "https://models.example.com"}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelseal.errors import PolicyError
from modelseal.formats.format import PICKLE_FORMATS, Format

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "FORMAT_GROUPS",
    "FormatPolicy",
    "LicensePolicy",
    "LineagePolicy",
    "Policy",
    "RegistryPolicy",
    "SbomPolicy",
    "ScanPolicy",
    "SignaturePolicy",
    "load_policy_file",
]

#: Names that stand for several formats in ``formats.allow`` / ``formats.deny``.
FORMAT_GROUPS: dict[str, frozenset[Format]] = {"pickle-based": PICKLE_FORMATS}

Severity = Literal["info", "low", "medium", "high", "critical"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScanPolicy(_Section):
    """What the static scan may find."""

    #: The most severe finding still allowed; anything above denies. Errors always deny.
    max_severity: Severity = "low"
    #: Deny-by-default for pickle globals not known to be safe.
    strict: bool = False
    #: Also inspect weight values (hidden payloads, injected values).
    deep: bool = False


class FormatPolicy(_Section):
    """Which formats may appear (names as in scan reports, or a group: ``pickle-based``)."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()

    @field_validator("allow", "deny")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        known = {f.value for f in Format} | set(FORMAT_GROUPS)
        unknown = sorted(set(value or ()) - known)
        if unknown:
            raise ValueError(f"unknown format(s) {unknown}; known: {sorted(known)}")
        return value

    def expanded(self, names: tuple[str, ...]) -> frozenset[str]:
        """Format names with groups expanded."""
        out: set[str] = set()
        for name in names:
            group = FORMAT_GROUPS.get(name)
            out |= {f.value for f in group} if group is not None else {name}
        return frozenset(out)


class SignaturePolicy(_Section):
    """Who must have signed the model."""

    required: bool = False
    #: Trusted public keys (PEM); paths are relative to the policy file.
    keys: tuple[Path, ...] = ()
    #: Files the signature leaves out are refused unless this is true.
    allow_unsigned_files: bool = False


class LicensePolicy(_Section):
    """Licenses from the model card (SPDX ids, compared case-insensitively)."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()
    #: Deny when no license can be found.
    require: bool = False


class SbomPolicy(_Section):
    """Facts the model's SBOM must contain."""

    required_fields: tuple[
        Literal["license", "base_model", "datasets", "architecture", "parameters"], ...
    ] = ()


class LineagePolicy(_Section):
    """Which base models a model may derive from (glob patterns on repo ids)."""

    allowed_base_models: tuple[str, ...] | None = None


class RegistryPolicy(_Section):
    """Where the model must have been pulled from (recorded by ``modelseal pull``)."""

    required_origin: str | None = None


class Policy(_Section):
    """A deploy policy: every section is optional."""

    version: Literal[1] = 1
    name: str = "custom"
    description: str = ""
    scan: ScanPolicy = Field(default_factory=ScanPolicy)
    formats: FormatPolicy = Field(default_factory=FormatPolicy)
    signature: SignaturePolicy = Field(default_factory=SignaturePolicy)
    license: LicensePolicy = Field(default_factory=LicensePolicy)
    sbom: SbomPolicy = Field(default_factory=SbomPolicy)
    lineage: LineagePolicy = Field(default_factory=LineagePolicy)
    registry: RegistryPolicy = Field(default_factory=RegistryPolicy)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "policy") -> Policy:
        """Validate a parsed document; errors name the offending field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise PolicyError(
                f"{source}: invalid policy ({problems})",
                advice="see `modelseal policy show standard` for a valid example",
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        """A plain document (paths as strings), e.g. to print as YAML."""
        data: dict[str, Any] = json.loads(self.model_dump_json())
        return data


def load_policy_file(path: Path) -> Policy:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) policy; key paths are resolved
    relative to the policy file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"{path}: not a policy file (not UTF-8 text: byte {exc.start} is invalid)",
            advice="a policy is a YAML or TOML file; see `modelseal policy show standard`",
        ) from exc
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml and toml raise their own error types
        raise PolicyError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'} ({exc})") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy must be a mapping of sections")
    policy = Policy.from_mapping(data, source=str(path))
    keys = tuple(k if k.is_absolute() else (path.parent / k) for k in policy.signature.keys)
    return policy.model_copy(
        update={"signature": policy.signature.model_copy(update={"keys": keys})}
    )
