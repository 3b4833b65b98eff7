"""Builders for transparency-log tests: CT test vectors, entries, signed logs, exports."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from modelseal.transparency.entries import EntryKind, LogEntry
from modelseal.transparency.log import TransparencyLog
from modelseal.transparency.sth import SignedTreeHead, TreeHeadSigner

# The 8-leaf tree of the Certificate Transparency reference test suites (RFC 6962).
CT_LEAVES: tuple[bytes, ...] = tuple(
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
)
# MTH(D[n]) for n = 1..8.
CT_ROOTS: tuple[str, ...] = (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)
# (0-based leaf index, tree size, audit path) from the CT suites (which count leaves from 1).
CT_INCLUSION: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 1, ()),
    (
        0,
        8,
        (
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        (
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, ("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",)),
    (
        1,
        5,
        (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
)
# (old size, new size, consistency proof) from the CT suites.
CT_CONSISTENCY: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (1, 1, ()),
    (
        1,
        8,
        (
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        (
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        (
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        (
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
)


def publish_entry(i: int, *, time: str | None = None) -> LogEntry:
    """A publish record of version ``1.<i>`` of ``acme/bert``."""
    return LogEntry(
        EntryKind.PUBLISH,
        {
            "namespace": "acme",
            "model": "bert",
            "version": f"1.{i}",
            "digest": hashlib.sha256(f"model {i}".encode()).hexdigest(),
        },
        time or f"2026-01-01T00:00:{i % 60:02d}.000000Z",
    )


def mixed_entries(n: int) -> list[LogEntry]:
    """``n`` entries cycling through every kind."""
    out: list[LogEntry] = []
    for i in range(n):
        kind = list(EntryKind)[i % len(EntryKind)]
        t = f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000000Z"
        fields: dict[str, Any]
        if kind in (EntryKind.PUBLISH, EntryKind.QUARANTINE):
            fields = {"namespace": "acme", "model": "m", "version": f"v{i}", "digest": f"{i:064x}"}
            if kind is EntryKind.QUARANTINE:
                fields["reasons"] = ["pickle: os.system"]
        elif kind is EntryKind.TAG_MOVE:
            fields = {"namespace": "acme", "model": "m", "tag": "latest", "version": f"v{i}"}
        elif kind in (EntryKind.KEY_TRUST, EntryKind.KEY_REVOKE):
            fields = {"namespace": "acme", "name": f"k{i}", "fingerprint": f"{i:064x}"}
        else:
            fields = {"user": "alice", "token": f"ms_{i:08x}"}
        out.append(LogEntry(kind, fields, t))
    return out


def signer() -> TreeHeadSigner:
    """A fresh EC P-256 tree-head signer."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return TreeHeadSigner(ec.generate_private_key(ec.SECP256R1()))


def grow_and_sign(
    log: TransparencyLog,
    tree_signer: TreeHeadSigner,
    sizes: Sequence[int],
) -> list[SignedTreeHead]:
    """Append entries so the log reaches each size in turn, signing a head at each."""
    heads: list[SignedTreeHead] = []
    for n, size in enumerate(sizes):
        while log.size < size:
            log.append(publish_entry(log.size))
        heads.append(tree_signer.sign(size, log.root(size), timestamp=1_700_000_000_000 + n))
    return heads
