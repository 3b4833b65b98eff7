"""Log entries: canonical JSON records of what happened in the registry.

An entry is one JSON object ``{"kind": ..., <fields>..., "time": ...}`` serialised
canonically (sorted keys, no insignificant whitespace, UTF-8, no floats), so the same
record always has the same bytes and therefore the same leaf hash. Parsing an entry
checks that its bytes are exactly the canonical form: a re-encoded or padded entry
is refused rather than silently accepted under another hash.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelseal.transparency.errors import LogError

__all__ = ["REQUIRED_FIELDS", "EntryKind", "LogEntry", "canonical_json", "utc_timestamp"]


class EntryKind(str, enum.Enum):
    """What a log entry records."""

    PUBLISH = "publish"
    TAG_MOVE = "tag-move"
    QUARANTINE = "quarantine"
    KEY_TRUST = "key-trust"
    KEY_REVOKE = "key-revoke"
    TOKEN_REVOKE = "token-revoke"


#: Fields every entry of a kind must carry (more are allowed).
REQUIRED_FIELDS: Mapping[EntryKind, frozenset[str]] = {
    EntryKind.PUBLISH: frozenset({"namespace", "model", "version", "digest"}),
    EntryKind.TAG_MOVE: frozenset({"namespace", "model", "tag", "version"}),
    EntryKind.QUARANTINE: frozenset({"namespace", "model", "version", "digest"}),
    EntryKind.KEY_TRUST: frozenset({"namespace", "name", "fingerprint"}),
    EntryKind.KEY_REVOKE: frozenset({"namespace", "name", "fingerprint"}),
    EntryKind.TOKEN_REVOKE: frozenset({"user", "token"}),
}

_RESERVED = frozenset({"kind", "time"})
_MAX_DEPTH = 8
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")


def utc_timestamp(when: dt.datetime | None = None) -> str:
    """An RFC 3339 UTC time with microseconds, e.g. ``2026-01-02T03:04:05.000006Z``."""
    when = when or dt.datetime.now(dt.timezone.utc)
    if when.tzinfo is None:
        raise LogError("entry time must be timezone-aware")
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_value(value: Any, where: str, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise LogError(f"{where}: nested too deeply")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise LogError(f"{where}: floats have no canonical JSON form; use an int or a string")
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LogError(f"{where}: object keys must be strings")
            _check_value(item, f"{where}.{key}", depth + 1)
        return
    raise LogError(f"{where}: {type(value).__name__} cannot be logged")


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, compact separators, UTF-8, no floats."""
    _check_value(value, "value")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


@dataclass(frozen=True)
class LogEntry:
    """One record of the log: its kind, its fields and when it happened."""

    kind: EntryKind
    fields: Mapping[str, Any] = field(default_factory=dict)
    time: str = ""

    def __post_init__(self) -> None:
        try:
            kind = EntryKind(self.kind)
        except ValueError:
            raise LogError(
                f"unknown log entry kind {self.kind!r}",
                advice=f"use one of {', '.join(k.value for k in EntryKind)}",
            ) from None
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "fields", dict(self.fields))
        if not self.time:
            object.__setattr__(self, "time", utc_timestamp())
        clash = _RESERVED & set(self.fields)
        if clash:
            raise LogError(f"log entry fields may not be named {', '.join(sorted(clash))}")
        missing = REQUIRED_FIELDS[kind] - set(self.fields)
        if missing:
            raise LogError(f"{kind.value} entry lacks {', '.join(sorted(missing))}")
        _check_value(self.fields, "entry")
        if not isinstance(self.time, str) or not _TIME.fullmatch(self.time):
            raise LogError(
                f"entry time {self.time!r} is not an RFC 3339 UTC time",
                advice="use modelseal.transparency.entries.utc_timestamp()",
            )

    @classmethod
    def create(cls, kind: EntryKind | str, /, **fields: Any) -> LogEntry:
        """An entry of ``kind`` with ``fields``, timestamped now."""
        return cls(EntryKind(kind), fields)

    def to_json(self) -> dict[str, Any]:
        """The entry as one flat JSON object."""
        return {"kind": self.kind.value, **self.fields, "time": self.time}

    def to_bytes(self) -> bytes:
        """The canonical bytes that are hashed into the log."""
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> LogEntry:
        """Parse canonical entry bytes (raises :class:`LogError` if not canonical)."""
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LogError(f"log entry is not JSON ({exc})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
            raise LogError("log entry is not an object with a kind")
        fields = {k: v for k, v in obj.items() if k not in _RESERVED}
        entry = cls(obj["kind"], fields, obj.get("time") or "")
        if "time" not in obj or entry.to_bytes() != data:
            raise LogError("log entry is not in canonical form (sorted keys, compact, with time)")
        return entry
