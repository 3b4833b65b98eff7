"""Validation of every name and path a client sends: namespaces, models, versions,
tags, digests and file paths inside a model.

Everything here is a pure function used by both the server and the client, so a
bad name is refused before any byte is sent and again before any byte is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelseal.registry.errors import BadRequestError

__all__ = [
    "ModelRef",
    "check_digest",
    "check_file_path",
    "check_name",
    "check_version",
    "parse_ref",
    "path_key",
]

_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]|\.(?!\.)){0,62}")
_VERSION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_+-]|\.(?!\.)){0,127}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_MAX_PATH = 1024
_MAX_COMPONENT = 255


def check_name(value: str, what: str = "name") -> str:
    """A namespace or model name: lowercase letters, digits, ``._-``, 1-63 characters."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise BadRequestError(
            f"invalid {what} {value!r}",
            advice="use 1-63 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '..')",
        )
    return value


def check_version(value: str, what: str = "version") -> str:
    """A version or tag: letters, digits, ``._+-``, 1-128 characters."""
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        raise BadRequestError(
            f"invalid {what} {value!r}",
            advice="use 1-128 characters: letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit (no '..')",
        )
    return value


def check_digest(value: str) -> str:
    """A SHA-256 digest as 64 lowercase hex digits (an optional ``sha256:`` prefix is removed)."""
    if isinstance(value, str) and value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise BadRequestError(
            f"invalid digest {value!r}", advice="digests are 64 lowercase hex digits of SHA-256"
        )
    return value


def check_file_path(value: str) -> str:
    """A relative POSIX path inside a model: no ``..``, no absolute path, no control characters.

    Returned unchanged when valid; anything that could escape the model directory,
    collide on case-sensitive/insensitive file systems in surprising ways (``.``,
    empty components, backslashes) or break a terminal (control characters) is refused.
    """
    problem = _path_problem(value)
    if problem:
        raise BadRequestError(
            f"invalid file path {value!r}: {problem}",
            advice="file paths must be relative, use '/' and stay inside the model directory",
        )
    return value


#: Right-to-left/left-to-right embeddings, overrides, isolates and marks.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Device names Windows reserves in every directory, with any extension.
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{stem}{n}" for stem in ("com", "lpt") for n in "123456789¹²³"}
)


def _looks_like_separator(ch: str) -> bool:
    import unicodedata

    folded = unicodedata.normalize("NFKC", ch)
    return any(c in "./\\" for c in folded)


def path_key(path: str) -> str:
    """What a path is on the most forgiving file system: NFC-normalised and case-folded
    (macOS normalises names and Windows ignores case, so two paths with one key collide)."""
    import unicodedata

    return unicodedata.normalize("NFC", path).casefold()


def _path_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "empty"
    if len(value.encode("utf-8", "surrogatepass")) > _MAX_PATH:
        return "too long"
    if value.startswith("/") or re.match(r"[A-Za-z]:", value):
        return "absolute"
    if "\\" in value:
        return "backslash"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "control character"
    if any(ch in _BIDI_CONTROLS for ch in value):
        return "bidirectional control character (it can disguise the name)"
    for part in value.split("/"):
        if part in ("", ".", ".."):
            return f"component {part!r}"
        if len(part.encode("utf-8", "surrogatepass")) > _MAX_COMPONENT:
            return "component too long"
        if any(ch not in "./\\" and _looks_like_separator(ch) for ch in part):
            return "a look-alike of '.', '/' or '\\' (e.g. a fullwidth dot)"
        if part.split(".", 1)[0].rstrip(" ").casefold() in _WINDOWS_RESERVED:
            return f"{part!r} is a reserved device name on Windows"
        if part[-1] in ". ":
            return "a component ending in '.' or ' ' (Windows drops it)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    return None


@dataclass(frozen=True)
class ModelRef:
    """``NS/MODEL``, ``NS/MODEL:VERSION_OR_TAG`` or ``NS/MODEL@sha256:DIGEST``."""

    namespace: str
    model: str
    reference: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.model}"
        if self.digest:
            return f"{base}@sha256:{self.digest}"
        if self.reference:
            return f"{base}:{self.reference}"
        return base


def parse_ref(text: str) -> ModelRef:
    """Parse a model reference as typed on the command line."""
    digest = None
    reference = None
    rest = text
    if "@" in rest:
        rest, _, raw = rest.partition("@")
        digest = check_digest(raw)
    if ":" in rest:
        rest, _, raw = rest.partition(":")
        reference = check_version(raw, "version or tag")
    namespace, sep, model = rest.partition("/")
    if not sep:
        raise BadRequestError(
            f"invalid model reference {text!r}",
            advice="write NAMESPACE/MODEL[:VERSION] or NAMESPACE/MODEL@sha256:DIGEST",
        )
    return ModelRef(
        check_name(namespace, "namespace"), check_name(model, "model name"), reference, digest
    )
