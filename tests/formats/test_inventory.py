"""The inventory walks files, directories and archives safely."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest

from modelseal.errors import LimitExceededError, UsageError
from modelseal.formats import Format, Limits, walk


def _paths(entries: list, root: Path) -> list[str]:
    return [e.path.replace(str(root), "ROOT") for e in entries]


def test_directory_is_walked_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("hi")
    (tmp_path / "a.pkl").write_bytes(pickle.dumps([1]))
    entries = list(walk([tmp_path]))
    assert _paths(entries, tmp_path) == ["ROOT/a.pkl", "ROOT/b.json", "ROOT/sub/a.txt"]
    assert [e.format for e in entries] == [Format.PICKLE, Format.JSON, Format.TEXT]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        list(walk([tmp_path / "nope"]))


def test_zip_members_are_named_outer_bang_inner(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("model/weights.pkl", pickle.dumps({"w": 1}))
        z.writestr("notes.txt", "hello")
    entries = list(walk([archive]))
    names = _paths(entries, tmp_path)
    assert names == [
        "ROOT/bundle.zip",
        "ROOT/bundle.zip!model/weights.pkl",
        "ROOT/bundle.zip!notes.txt",
    ]
    member = entries[1]
    assert member.format == Format.PICKLE
    assert member.container == str(archive)
    assert member.container_format == Format.ZIP
    # Stored members point at their bytes inside the outer file (memory-mappable).
    assert member.data_offset is not None
    with open(archive, "rb") as raw:
        raw.seek(member.data_offset)
        assert raw.read(member.size) == pickle.dumps({"w": 1})


def test_nested_compressed_archives_are_opened(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("deep.pkl", pickle.dumps("x"))
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.zip", inner.getvalue())
    entries = list(walk([outer]))
    deep = entries[-1]
    assert deep.path.endswith("outer.zip!inner.zip!deep.pkl")
    assert deep.depth == 2
    assert deep.format == Format.PICKLE
    assert deep.head() == pickle.dumps("x")


def test_nesting_stops_at_the_depth_limit(tmp_path: Path) -> None:
    data = pickle.dumps("core")
    name = "core.pkl"
    for level in range(5):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr(name, data)
        data, name = buffer.getvalue(), f"level{level}.zip"
    path = tmp_path / "nest.zip"
    path.write_bytes(data)
    entries = list(walk([path], limits=Limits(max_depth=2)))
    assert max(e.depth for e in entries) == 2


def test_gzip_stream_becomes_a_member(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps({"a": 1})))
    outer, member = list(walk([path]))
    assert outer.format == Format.GZIP
    assert member.path.endswith("model.pkl.gz!model.pkl")
    assert member.format == Format.PICKLE


def test_decompression_bomb_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(b"\x00" * 5_000_000))
    limits = Limits(max_member_bytes=1_000_000)
    member = list(walk([path], limits=limits))[-1]
    with pytest.raises(LimitExceededError), member.open() as stream:
        while stream.read(65536):
            pass


def test_tar_members_and_symlink_members(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar"
    with tarfile.open(path, "w") as tar:
        payload = pickle.dumps([1])
        info = tarfile.TarInfo("w.pkl")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo("evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    entries = list(walk([path]))
    by_name = {e.inner_path: e for e in entries[1:]}
    assert by_name["w.pkl"].format == Format.PICKLE
    assert by_name["w.pkl"].head() == payload
    assert by_name["evil"].format == Format.SYMLINK
    assert by_name["evil"].problem == "archive member is a symlink"


def test_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("secret")
    model = tmp_path / "model"
    model.mkdir()
    os.symlink(tmp_path / "real.json", model / "escape.json")
    os.symlink(model / "loop", model / "loop")
    os.symlink(outside, model / "outside.txt")
    entries = {e.name: e for e in walk([model])}
    assert entries["escape.json"].format == Format.JSON
    assert entries["escape.json"].link_escapes
    assert entries["loop"].format == Format.SYMLINK
    assert "looping" in (entries["loop"].problem or "")
    assert entries["outside.txt"].link_escapes


def test_hf_cache_links_are_reported_under_snapshot_names(tmp_path: Path) -> None:
    repo = tmp_path / "models--org--tiny"
    blobs = repo / "blobs"
    snapshot = repo / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (blobs / "deadbeef").write_text('{"model_type": "bert"}')
    os.symlink("../../blobs/deadbeef", snapshot / "config.json")
    entries = list(walk([repo]))
    assert [e.name for e in entries] == ["config.json"]
    assert not entries[0].link_escapes
    assert entries[0].format == Format.JSON


def test_unreadable_file_has_a_problem_not_an_exception(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads everything; a FIFO stands in for a file that cannot be read normally.
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        entry = next(iter(walk([tmp_path])))
        assert entry.problem == "not a regular file"
    else:
        path = tmp_path / "secret.bin"
        path.write_bytes(b"x")
        path.chmod(0)
        entry = next(iter(walk([path])))
        assert entry.problem is not None


def test_truncated_zip_member_listing_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "cut.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("a.pkl", pickle.dumps(1))
    path.write_bytes(buffer.getvalue()[:-10])
    entries = list(walk([path]))
    assert entries[0].format == Format.ZIP
    assert any(e.problem and "could not be listed" in e.problem for e in entries[1:])
