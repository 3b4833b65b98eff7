"""``oci://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]`` references, parsed and checked once.

The grammar follows the OCI distribution spec: a repository name is lower-case
path components of ``[a-z0-9]`` separated by ``.``, ``_``, ``__`` or ``-``; a tag
is ``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``; a digest is ``sha256:`` and 64 hex
characters (the only algorithm we accept: every registry speaks it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelseal.errors import UsageError

__all__ = ["SCHEME", "OciReference", "is_oci_reference", "parse_oci_reference"]

SCHEME = "oci://"

_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_REPO = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class OciReference:
    """One artifact in one repository of one registry."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def is_loopback(self) -> bool:
        """True for a registry on this machine (the only place ``--plain-http`` is allowed)."""
        import ipaddress

        if self.host.startswith("["):
            name = self.host[1 : self.host.index("]")]
        else:
            name = self.host.rsplit(":", 1)[0]
        if name.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False  # a DNS name such as 127.example.com is not this machine

    def with_digest(self, digest: str) -> OciReference:
        """The same repository pinned to ``digest``."""
        return OciReference(self.host, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = f"{SCHEME}{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_oci_reference(text: str) -> bool:
    """True when ``text`` names an OCI artifact rather than a local path or registry model."""
    return text.startswith(SCHEME)


def parse_oci_reference(text: str) -> OciReference:
    """Parse ``oci://HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]``; :class:`UsageError` if malformed."""
    if not is_oci_reference(text):
        raise UsageError(f"not an OCI reference: {text!r}", advice="write oci://HOST/REPO:TAG")
    rest = text[len(SCHEME) :]
    host, slash, path = rest.partition("/")
    if not slash or not host or not path:
        raise UsageError(
            f"OCI reference {text!r} has no repository", advice="write oci://HOST[:PORT]/REPO:TAG"
        )
    if not _HOST.match(host):
        raise UsageError(f"OCI reference {text!r}: invalid registry host {host!r}")
    digest = None
    if "@" in path:
        path, _, digest = path.partition("@")
        if not _DIGEST.match(digest):
            raise UsageError(
                f"OCI reference {text!r}: invalid digest {digest!r}",
                advice="a digest is sha256: followed by 64 lower-case hex characters",
            )
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, _, tag = path.rpartition(":")
        if not _TAG.match(tag):
            raise UsageError(f"OCI reference {text!r}: invalid tag {tag!r}")
    if not _REPO.match(path) or len(path) > 255:
        raise UsageError(
            f"OCI reference {text!r}: invalid repository name {path!r}",
            advice="repository names are lower-case letters, digits and . _ - separated by /",
        )
    return OciReference(host=host, repository=path, tag=tag, digest=digest)
