"""Built-in policies: ``permissive``, ``standard`` and ``strict``."""

from __future__ import annotations

from pathlib import Path

from modelseal.errors import PolicyError
from modelseal.policy.schema import Policy, load_policy_file

__all__ = ["PRESETS", "resolve_policy"]

PRESETS: dict[str, Policy] = {
    "permissive": Policy.from_mapping(
        {
            "name": "permissive",
            "description": "Deny only what is known to be malicious or cannot be analysed.",
            "scan": {"max_severity": "high"},
        }
    ),
    "standard": Policy.from_mapping(
        {
            "name": "standard",
            "description": "Deny anything suspicious; the model card must name a license.",
            "scan": {"max_severity": "low"},
            "license": {"require": True},
        }
    ),
    "strict": Policy.from_mapping(
        {
            "name": "strict",
            "description": (
                "Deny-by-default pickle analysis, weight forensics, no pickle-based formats, "
                "a valid signature by a trusted key (give --key) and a license in the SBOM."
            ),
            "scan": {"max_severity": "low", "strict": True, "deep": True},
            "formats": {"deny": ["pickle-based"]},
            "signature": {"required": True},
            "license": {"require": True},
            "sbom": {"required_fields": ["license"]},
        }
    ),
}


def resolve_policy(name_or_path: str) -> Policy:
    """A preset by name, or a policy file by path."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if not path.exists():
        raise PolicyError(
            f"{name_or_path}: neither a built-in policy nor a file",
            advice=f"built-in policies: {', '.join(PRESETS)}",
        )
    return load_policy_file(path)
