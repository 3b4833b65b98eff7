"""The registry client: login state, push with resumable parallel uploads, verified pull.

>>> client = RegistryClient.from_login()                      # doctest: +SKIP
>>> client.push("my-model", "acme/bert:1.0", key="release.priv.pem")   # doctest: +SKIP
>>> client.pull("acme/bert:latest", "models/bert")            # doctest: +SKIP

A pull downloads into a temporary directory next to ``DEST``, checks every file's
SHA-256, the version digest, the signature against the namespace's trusted keys
(each backed by a verified ``key-trust`` log entry; or the keys the caller pins), the
server's scan verdict and a local re-scan, and only then renames the directory to
``DEST``. What a reference resolves to is decided by the client from verified
transparency-log entries (:mod:`.pull`), and pulling a tag (or a bare model name)
refuses a version older than the newest this client has seen for it (TUF-style
rollback protection, with serials from the log). Layout: :mod:`.state` (what is
kept in ``$MODELSEAL_HOME``), :mod:`.http` (one httpx stack), :mod:`.trust` (the
log), :mod:`.push`, :mod:`.pull`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelseal.registry.client.http import Progress
from modelseal.registry.client.pull import PullResult, RegistryPull
from modelseal.registry.client.push import PushResult, RegistryPush
from modelseal.registry.client.state import ClientState, modelseal_home
from modelseal.registry.names import ModelRef, parse_ref
from modelseal.registry.schemas import ModelDoc, Page, ResolvedVersionDoc, WhoAmIDoc

__all__ = [
    "ClientState",
    "Progress",
    "PullResult",
    "PushResult",
    "RegistryClient",
    "modelseal_home",
]


class RegistryClient(RegistryPush, RegistryPull):
    """An HTTP client for one registry."""

    @classmethod
    def from_login(
        cls, url: str | None = None, *, home: Path | None = None, **kwargs: Any
    ) -> RegistryClient:
        """A client for ``url`` (default: the last registry logged in to) with its stored token."""
        state = ClientState(home)
        resolved, token = state.login_for(url)
        return cls(resolved, token, state=state, **kwargs)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def whoami(self) -> WhoAmIDoc:
        """The identity behind the token."""
        return self._get(WhoAmIDoc, "/whoami", "whoami")

    def search(self, query: str = "", *, limit: int = 50) -> list[ModelDoc]:
        """Models whose names contain ``query``."""
        return list(
            self._get(
                Page[ModelDoc], "/search", "the search", params={"q": query, "limit": limit}
            ).items
        )

    def info(self, ref: ModelRef | str) -> ModelDoc | ResolvedVersionDoc:
        """A model (no version given) or a version."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        if ref.reference is None and ref.digest is None:
            return self.model_info(ref.namespace, ref.model)
        return self.resolve(ref)
