"""One error hierarchy for modelseal.

Every error a user can cause (a missing file, a bad key, a broken model file, a
refused upload) is a :class:`ModelsealError`. The CLI catches this base class once
and prints :meth:`ModelsealError.diagnostics`; library callers catch it (or a
subclass) the same way. Subsystems subclass the bases below in their own modules.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "FormatError",
    "IntegrityError",
    "LimitExceededError",
    "ModelsealError",
    "MonitorError",
    "PolicyError",
    "RegistryError",
    "SbomError",
    "ScanError",
    "SignatureError",
    "UsageError",
    "VerificationError",
    "WeightsError",
]


class ModelsealError(Exception):
    """Base of every error modelseal raises on purpose.

    ``advice`` tells the user what to do next; it is printed under the message.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def diagnostics(self) -> str:
        """The text shown to a user: the message, then the advice if any."""
        if self.advice:
            return f"{self.message}\n  hint: {self.advice}"
        return self.message


class UsageError(ModelsealError):
    """The caller asked for something that cannot be done as asked."""


class ConfigError(ModelsealError):
    """A configuration file (pyproject.toml, modelseal.toml, a policy) is invalid."""


class FormatError(ModelsealError):
    """A file could not be parsed as the format its bytes claim to be."""


class LimitExceededError(FormatError):
    """A file exceeds a safety limit (header size, nesting depth, decompressed size)."""


class ScanError(ModelsealError):
    """The scanner could not run (not: the scanned file is bad, which is a result)."""


class IntegrityError(ModelsealError):
    """Hashing, manifests or signing failed."""


class SignatureError(IntegrityError):
    """A signature bundle is malformed or a key cannot be used."""


class VerificationError(IntegrityError):
    """A model does not match its signature (tampered, wrong key, wrong bundle)."""

    exit_code = 1


class SbomError(ModelsealError):
    """An SBOM could not be generated, read or audited."""


class WeightsError(ModelsealError):
    """Weight values could not be read or compared."""


class MonitorError(ModelsealError):
    """The runtime monitor could not calibrate, attach or check."""


class RegistryError(ModelsealError):
    """The registry refused a request or could not be reached."""


class AuthError(RegistryError):
    """Authentication or authorisation failed."""


class PolicyError(ModelsealError):
    """A policy file is invalid or a policy decision could not be made."""
