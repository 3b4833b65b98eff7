"""One deploy gate: scan, signature, formats, license, SBOM and lineage under one policy.

>>> from modelseal.policy import check, resolve_policy
>>> decision = check("path/to/model", resolve_policy("standard"))   # doctest: +SKIP
>>> decision.allowed, [r.message for _, r in decision.reasons]      # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from modelseal.policy.checks import ALL_CHECKS
from modelseal.policy.decision import CheckOutcome, Decision, Reason
from modelseal.policy.presets import PRESETS, resolve_policy
from modelseal.policy.schema import Policy, load_policy_file
from modelseal.policy.subject import Subject

__all__ = [
    "PRESETS",
    "CheckOutcome",
    "Decision",
    "Policy",
    "Reason",
    "check",
    "load_policy_file",
    "resolve_policy",
]


def check(
    path: str | os.PathLike[str],
    policy: Policy,
    *,
    keys: Sequence[str | os.PathLike[str]] = (),
    signature: str | os.PathLike[str] | None = None,
) -> Decision:
    """Decide whether the model at ``path`` may be deployed under ``policy``.

    ``keys`` add trusted public keys to the policy's own; ``signature`` is the bundle
    (default ``<path>.sig``). Every applicable check runs, so the decision lists
    every reason at once. A key that cannot be read or is not a PEM public key is an
    error (``UsageError``/``SignatureError``), never silently unused, whether or not the
    policy requires a signature.
    """
    from modelseal.integrity.signing.keys import load_public_key

    for key in (*policy.signature.keys, *keys):
        load_public_key(key)
    subject = Subject(
        Path(path),
        keys=tuple(Path(k) for k in keys),
        signature=Path(signature) if signature is not None else None,
    )
    outcomes = tuple(
        outcome for c in ALL_CHECKS if (outcome := c.evaluate(subject, policy)) is not None
    )
    return Decision(str(path), policy.name, outcomes)
