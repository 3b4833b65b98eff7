"""oci:// references: the grammar, and which hosts count as this machine."""

from __future__ import annotations

import pytest

from modelseal.errors import UsageError
from modelseal.oci import parse_oci_reference
from modelseal.oci.operations import connect

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "host", "repository", "tag", "digest"),
    [
        ("oci://ghcr.io/org/models/bert:1.0", "ghcr.io", "org/models/bert", "1.0", None),
        ("oci://127.0.0.1:5000/bert", "127.0.0.1:5000", "bert", None, None),
        (f"oci://reg.example:443/a/b@{DIGEST}", "reg.example:443", "a/b", None, DIGEST),
        (f"oci://[::1]:5000/a:v1@{DIGEST}", "[::1]:5000", "a", "v1", DIGEST),
        ("oci://localhost/my_model-x.y:Tag_1", "localhost", "my_model-x.y", "Tag_1", None),
    ],
)
def test_references_parse(
    text: str, host: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_oci_reference(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repository, tag, digest)
    assert parse_oci_reference(str(ref)) == ref
    assert ref.reference == (digest or tag or "latest")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("oci://ghcr.io", "no repository"),
        ("oci://ghcr.io/Org/Model:1", "invalid repository"),
        ("oci://ghcr.io/a/../b:1", "invalid repository"),
        ("oci://ghcr.io/a:-bad", "invalid tag"),
        ("oci://ghcr.io/a@sha256:1234", "invalid digest"),
        ("oci://ghcr.io/a@md5:" + "0" * 32, "invalid digest"),
        ("oci://bad_host!/a:1", "invalid registry host"),
    ],
)
def test_malformed_references_are_usage_errors(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_oci_reference(text)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.9.9.9", True),
        ("[::1]:5000", True),
        ("127.example.com", False),  # a DNS name that merely starts like a loopback address
        ("localhost.example.com:5000", False),
        ("10.0.0.1:5000", False),
        ("ghcr.io", False),
    ],
)
def test_only_this_machine_counts_as_loopback(host: str, loopback: bool) -> None:
    assert parse_oci_reference(f"oci://{host}/a:1").is_loopback is loopback


def test_plain_http_is_refused_for_a_remote_registry() -> None:
    with pytest.raises(UsageError, match="only allowed for a registry on this machine"):
        connect(parse_oci_reference("oci://127.example.com/a:1"), plain_http=True)
