"""Comparing two BOMs: files and hashes, base models, datasets, licenses, dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelseal.sbom import diff_sbom, generate_sbom
from tests.samples.sbom import CARD, write_model


def test_identical_across_formats(tmp_path: Path) -> None:
    root = write_model(tmp_path / "m")
    cdx = generate_sbom(root, scan=False)
    spdx = generate_sbom(root, format="spdx3", scan=False)
    assert diff_sbom(cdx, spdx).identical
    assert diff_sbom(spdx, cdx).identical


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx3"])
def test_every_kind_of_change(tmp_path: Path, fmt: str) -> None:
    old_root = write_model(tmp_path / "old", requirements="numpy==1.26.4\n")
    card = (
        CARD.replace("license: apache-2.0", "license: llama3")
        .replace("- imdb\n", "- yelp_review_full\n")
        .replace("base_model: org/base-model", "base_model: org/other-base")
    )
    new_root = write_model(
        tmp_path / "new", card=card, requirements="numpy==2.0.0\n", extra={"added.txt": "x"}
    )
    (new_root / "tokenizer.json").write_text('{"model": {"type": "BPE"}}')
    old = generate_sbom(old_root, format=fmt, scan=False)
    new = generate_sbom(new_root, format=fmt, scan=False)
    diff = diff_sbom(old, new)
    summary = {(c.kind, c.name, c.change) for c in diff.changes}
    assert summary == {
        ("file", "added.txt", "added"),
        ("file", "tokenizer.json", "changed"),
        ("file", "README.md", "changed"),
        ("file", "requirements.txt", "changed"),
        ("base_model", "org/base-model", "removed"),
        ("base_model", "org/other-base", "added"),
        ("dataset", "imdb", "removed"),
        ("dataset", "yelp_review_full", "added"),
        ("license", "Apache-2.0", "removed"),
        ("license", "llama3" if fmt == "cyclonedx" else "LicenseRef-llama3", "added"),
        ("dependency", "numpy", "changed"),
    }
    (numpy,) = [c for c in diff.of_kind("dependency")]
    assert (numpy.old, numpy.new) == ("1.26.4", "2.0.0")
    assert not diff.identical
