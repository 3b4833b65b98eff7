"""Who may see which transparency-log entry: one rule for the API and the web log page.

Tree heads, proofs and leaf hashes are public (they are hashes). An entry's contents
name namespaces, models, users and key fingerprints, so a caller sees the contents
only of entries about namespaces it may read (token revocations: only their owner
and site admins). Every other entry shows its index and leaf hash, which is enough
to check inclusion and consistency proofs without learning what it records.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelseal.registry.auth import allowed_actions
from modelseal.registry.db.models import Namespace
from modelseal.transparency.merkle import leaf_hash

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelseal.registry.identity import Principal

__all__ = ["LogVisibility", "entry_fields"]


def entry_fields(data: bytes) -> dict[str, Any]:
    """The entry's JSON object (``{}`` when it is not one)."""
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return fields if isinstance(fields, dict) else {}


class LogVisibility:
    """Which entries ``viewer`` may read (namespace answers cached per instance)."""

    def __init__(self, session: Session, viewer: Principal | None) -> None:
        self.session = session
        self.viewer = viewer
        self._cache: dict[str, bool] = {}

    def namespace(self, name: str) -> bool:
        """Whether the viewer may read namespace ``name``."""
        if name not in self._cache:
            row = self.session.scalars(select(Namespace).where(Namespace.name == name)).first()
            self._cache[name] = row is not None and "read" in allowed_actions(
                self.session, self.viewer, row
            )
        return self._cache[name]

    def entry(self, fields: dict[str, Any]) -> bool:
        """Whether the viewer may read the entry with these fields."""
        if self.viewer is None:
            return False
        if fields.get("kind") == "token-revoke":
            return self.viewer.is_admin or fields.get("user") == self.viewer.name
        namespace = fields.get("namespace")
        return isinstance(namespace, str) and self.namespace(namespace)

    def document(self, index: int, data: bytes) -> dict[str, Any]:
        """The API form of entry ``index``: its text when visible, else only its leaf hash."""
        visible = self.entry(entry_fields(data))
        return {
            "index": index,
            "leaf_hash": leaf_hash(data).hex(),
            "hidden": not visible,
            "entry": data.decode("utf-8") if visible else None,
        }
