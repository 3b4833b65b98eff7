"""What a registry client keeps between runs, under ``$MODELSEAL_HOME``.

``credentials.json`` (mode 0600): tokens per registry URL. ``registry-state.json``:
per registry the transparency-log key (pinned by ``modelseal login --log-key`` or
trusted on first use), the last accepted tree head, and per tag (``ns/model:tag``)
and per model (``ns/model``, bare pulls) the newest version pulled — only serials and
log indexes taken from verified transparency-log entries, never from a server's
document — plus where each pull was written (read by the deploy gate).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelseal._io import atomic_write
from modelseal.errors import UsageError

if TYPE_CHECKING:
    from modelseal.transparency.client import TreeHeadState

__all__ = ["ClientState", "LogKeyRecord", "Seen", "modelseal_home"]

#: Key of the transparency-log public key under a registry URL in the state file.
_LOG_KEY = "transparency-log-key"
#: How that key came to be trusted.
_LOG_KEY_SOURCE = "transparency-log-key-source"
#: Section of the state file recording pulled destinations.
_PULLS = "pulled-into"

#: ``pinned``: given by the operator (``login --log-key``); ``first-use``: fetched from the
#: registry on first contact.
LogKeySource = Literal["pinned", "first-use"]


def modelseal_home() -> Path:
    """``$MODELSEAL_HOME``, default ``~/.modelseal``."""
    return Path(os.environ.get("MODELSEAL_HOME") or Path.home() / ".modelseal")


@dataclass(frozen=True)
class LogKeyRecord:
    """A remembered log key: its PEM and how it was trusted."""

    pem: str
    source: LogKeySource


@dataclass(frozen=True)
class Seen:
    """The newest version this client pulled for a tag or a bare model name."""

    serial: int
    version: str
    digest: str
    #: Index of the verified log entry the serial came from (``None``: older state).
    log_index: int | None


class ClientState:
    """Login credentials and seen versions under ``home`` (default ``$MODELSEAL_HOME``)."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home) if home is not None else modelseal_home()
        self._lock = threading.Lock()

    @property
    def credentials_path(self) -> Path:
        """Where tokens are kept."""
        return self.home / "credentials.json"

    @property
    def state_path(self) -> Path:
        """Where log keys, tree heads and the newest version seen per tag are kept."""
        return self.home / "registry-state.json"

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"{path}: unreadable client state ({exc})", advice="fix or delete the file"
            ) from exc
        return data if isinstance(data, dict) else {}

    def _update(self, path: Path, change: Any) -> None:
        """Read-modify-write ``path`` under the lock, atomically, mode 0600."""
        with self._lock:
            data = self._read(path)
            change(data)
            self.home.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps(data, indent=2, sort_keys=True), mode=0o600)

    def _section(self, url: str) -> dict[str, Any]:
        section = self._read(self.state_path).get(url, {})
        return section if isinstance(section, dict) else {}

    def save_login(self, url: str, token: str, user: str) -> None:
        """Remember ``token`` for ``url`` and make it the default registry."""

        def change(data: dict[str, Any]) -> None:
            data.setdefault("registries", {})[url] = {"token": token, "user": user}
            data["default"] = url

        self._update(self.credentials_path, change)

    def login_for(self, url: str | None) -> tuple[str, str | None]:
        """The registry URL (given or default) and its stored token, if any."""
        data = self._read(self.credentials_path)
        url = url or data.get("default")
        if not url:
            raise UsageError(
                "no registry given and none logged in",
                advice="run `modelseal login URL --token TOKEN` or pass --registry URL",
            )
        url = url.rstrip("/")
        entry = data.get("registries", {}).get(url, {})
        return url, entry.get("token") if isinstance(entry, dict) else None

    @property
    def tree_heads(self) -> TreeHeadState:
        """The last transparency-log tree head accepted per registry (same file and lock)."""
        from modelseal.transparency.client import TreeHeadState

        return TreeHeadState(self.state_path, lock=self._lock)

    def log_key(self, url: str) -> LogKeyRecord | None:
        """The transparency-log public key remembered for ``url``, if any."""
        section = self._section(url)
        pem = section.get(_LOG_KEY)
        if not isinstance(pem, str):
            return None
        pinned = section.get(_LOG_KEY_SOURCE) == "pinned"
        return LogKeyRecord(pem, "pinned" if pinned else "first-use")

    def pin_log_key(self, url: str, pem: str, source: LogKeySource) -> None:
        """Remember ``url``'s transparency-log public key and how it was trusted."""

        def change(data: dict[str, Any]) -> None:
            section = data.setdefault(url, {})
            section[_LOG_KEY] = pem
            section[_LOG_KEY_SOURCE] = source

        self._update(self.state_path, change)

    def record_pull(self, destination: Path, url: str, subject: str, digest: str) -> None:
        """Remember where the model at ``destination`` was pulled from (read by the deploy
        gate's ``registry.required_origin``)."""

        def change(data: dict[str, Any]) -> None:
            data.setdefault(_PULLS, {})[str(destination.resolve())] = {
                "registry": url,
                "model": subject,
                "digest": digest,
            }

        self._update(self.state_path, change)

    def pulled(self, destination: Path) -> dict[str, str] | None:
        """What was pulled into ``destination``: registry URL, model reference, version digest."""
        entry = self._read(self.state_path).get(_PULLS, {}).get(str(destination.resolve()))
        return entry if isinstance(entry, dict) else None

    def seen(self, url: str, key: str) -> Seen | None:
        """The newest version recorded for ``key`` (``ns/model:tag`` or ``ns/model``)."""
        entry = self._section(url).get(key)
        if not isinstance(entry, dict):
            return None
        serial, index = entry.get("serial"), entry.get("log_index")
        if not isinstance(serial, int):
            return None
        return Seen(
            serial,
            str(entry.get("version", "?")),
            str(entry.get("digest", "")),
            index if isinstance(index, int) else None,
        )

    def record(self, url: str, key: str, seen: Seen) -> None:
        """Record that ``key`` resolved to ``seen`` (taken from verified log entries; a
        record never moves to an older log entry)."""

        def change(data: dict[str, Any]) -> None:
            section = data.setdefault(url, {})
            current = section.get(key)
            newer = isinstance(current, dict) and isinstance(current.get("log_index"), int)
            if newer and seen.log_index is not None and current["log_index"] > seen.log_index:
                return
            section[key] = {
                "serial": seen.serial,
                "version": seen.version,
                "digest": seen.digest,
                "log_index": seen.log_index,
            }

        self._update(self.state_path, change)
