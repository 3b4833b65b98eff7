"""Names, references, paths and file lists: pure validation shared by server and client."""

from __future__ import annotations

import pytest

from modelseal.registry.errors import BadRequestError, TooLargeError
from modelseal.registry.manifest import FileEntry, check_file_list, version_digest
from modelseal.registry.names import (
    ModelRef,
    check_file_path,
    check_name,
    check_version,
    parse_ref,
)


@pytest.mark.parametrize("name", ["acme", "a", "bert-base", "x.y_z", "0abc"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Acme", "-a", ".a", "a..b", "a/b", "a b", "ä", "a" * 64, "a%2e"]
)
def test_bad_names(name: str) -> None:
    with pytest.raises(BadRequestError, match="invalid"):
        check_name(name)


@pytest.mark.parametrize("version", ["1.0", "v2", "1.0.0+build.5", "RC_1"])
def test_good_versions(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize("version", ["", "1..0", ".1", "1/2", "1:2", "a" * 129])
def test_bad_versions(version: str) -> None:
    with pytest.raises(BadRequestError):
        check_version(version)


@pytest.mark.parametrize(
    "path", ["model.safetensors", "sub/dir/file.bin", "unicodé/файл.json", ".gitattributes"]
)
def test_good_paths(path: str) -> None:
    assert check_file_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs",
        "../up",
        "a/../b",
        "a/./b",
        "a//b",
        "a/",
        "a\\b",
        "C:x",
        "x\x00y",
        "x\x1b[31m",
        "a" * 256,
        "/".join(["a"] * 600),
    ],
)
def test_bad_paths(path: str) -> None:
    with pytest.raises(BadRequestError):
        check_file_path(path)


def test_parse_ref() -> None:
    assert parse_ref("acme/bert") == ModelRef("acme", "bert")
    assert parse_ref("acme/bert:1.0") == ModelRef("acme", "bert", "1.0")
    digest = "ab" * 32
    assert parse_ref(f"acme/bert@sha256:{digest}") == ModelRef("acme", "bert", None, digest)
    assert str(parse_ref(f"acme/bert@sha256:{digest}")) == f"acme/bert@sha256:{digest}"
    for bad in ("bert", "acme/", "acme/bert:", "acme/Bert:1", "acme/bert@md5:00"):
        with pytest.raises(BadRequestError):
            parse_ref(bad)


def test_version_digest_is_order_independent_and_content_sensitive() -> None:
    a = FileEntry("a", "1" * 64, 1)
    b = FileEntry("b", "2" * 64, 2)
    assert version_digest([a, b]) == version_digest([b, a])
    assert version_digest([a, b]) != version_digest([a, FileEntry("b", "3" * 64, 2)])
    assert version_digest([a, b]) != version_digest([a, FileEntry("b", "2" * 64, 3)])


def test_file_list_checks() -> None:
    entry = FileEntry("a", "1" * 64, 10)
    with pytest.raises(BadRequestError, match="at least one"):
        check_file_list([], max_files=10, max_file_bytes=100)
    with pytest.raises(BadRequestError, match="duplicate"):
        check_file_list([entry, entry], max_files=10, max_file_bytes=100)
    with pytest.raises(BadRequestError, match="case"):
        check_file_list([entry, FileEntry("A", "1" * 64, 1)], max_files=10, max_file_bytes=100)
    with pytest.raises(BadRequestError, match="both a file and a directory"):
        check_file_list([entry, FileEntry("a/b", "1" * 64, 1)], max_files=10, max_file_bytes=100)
    with pytest.raises(BadRequestError, match="too many"):
        check_file_list([entry, FileEntry("b", "1" * 64, 1)], max_files=1, max_file_bytes=100)
    with pytest.raises(TooLargeError):
        check_file_list([entry], max_files=10, max_file_bytes=5)
    with pytest.raises(BadRequestError):
        FileEntry.from_dict({"path": "a", "digest": "1" * 64, "size": -1})
    with pytest.raises(BadRequestError):
        FileEntry.from_dict({"path": "a", "digest": "1" * 64, "size": True})
