"""Offline OSV advisory matching: packages by version range, models by name or hash, datasets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from modelseal.errors import SbomError
from modelseal.sbom import audit_sbom, generate_sbom, load_advisories
from modelseal.sbom.audit import Affected, version_affected
from tests.samples.sbom import osv, write_model


@pytest.fixture(scope="module")
def boms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = write_model(
        tmp_path_factory.mktemp("audit") / "m", requirements="numpy==1.26.4\nrequests\n"
    )
    return {
        "cyclonedx": generate_sbom(root, scan=False),
        "spdx3": generate_sbom(root, format="spdx3", scan=False),
        "root": {"path": str(root)},
    }


def _ranges(*events: dict[str, str], kind: str = "ECOSYSTEM") -> list[dict[str, Any]]:
    return [{"type": kind, "events": list(events)}]


def _advisories(root: Path) -> list[dict[str, Any]]:
    weights = hashlib.sha256((root / "model.safetensors").read_bytes()).hexdigest()
    return [
        osv(
            "GHSA-tf-1",
            ecosystem="PyPI",
            name="Transformers",
            ranges=_ranges({"introduced": "0"}, {"fixed": "4.36.0"}),
        ),
        osv(
            "GHSA-tf-old",
            ecosystem="PyPI",
            name="transformers",
            ranges=_ranges({"introduced": "2.0"}, {"fixed": "3.0"}),
        ),
        osv("GHSA-np", ecosystem="PyPI", name="numpy", versions=["1.26.3", "1.26.4"]),
        osv("GHSA-np-no", ecosystem="PyPI", name="numpy", versions=["1.26.5"]),
        osv(
            "GHSA-look",
            ecosystem="PyPI",
            name="transformers-extra",
            ranges=_ranges({"introduced": "0"}),
        ),
        osv(
            "GHSA-req",
            ecosystem="PyPI",
            name="requests",
            ranges=_ranges({"introduced": "0"}, {"fixed": "2.32.0"}),
        ),
        osv("MAL-base", ecosystem="HuggingFace", name="org/base-model", severity="CRITICAL"),
        osv("MAL-other", ecosystem="HuggingFace", name="org/base-model-2"),
        osv("MAL-hash", ecosystem="HuggingFace", name="someone/else", sha256=[weights]),
        osv("DS-imdb", ecosystem="HuggingFace-Datasets", name="imdb"),
        osv("DS-sst", ecosystem="HuggingFace", name="datasets/stanfordnlp/sst2"),
        osv("DS-not", ecosystem="HuggingFace-Datasets", name="imdb-clean"),
    ]


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx3"])
def test_hits(boms: dict[str, dict[str, Any]], fmt: str, tmp_path: Path) -> None:
    root = Path(boms["root"]["path"])
    report = audit_sbom(boms[fmt], [a for a in load_from(tmp_path, _advisories(root))])
    found = {(h.advisory, h.kind, h.component, h.certain) for h in report.hits}
    assert found == {
        ("GHSA-tf-1", "pypi", "transformers", True),
        ("GHSA-np", "pypi", "numpy", True),
        ("GHSA-req", "pypi", "requests", False),
        ("MAL-base", "model", "org/base-model", True),
        ("MAL-hash", "file", "model.safetensors", True),
        ("DS-imdb", "dataset", "imdb", True),
        ("DS-sst", "dataset", "stanfordnlp/sst2", True),
    }
    assert report.failed()


def load_from(tmp_path: Path, advisories: list[dict[str, Any]]) -> Any:
    folder = tmp_path / "osv"
    folder.mkdir()
    for advisory in advisories:
        (folder / f"{advisory['id']}.json").write_text(json.dumps(advisory))
    loaded, warnings = load_advisories(folder)
    assert warnings == ()
    return loaded


def test_clean_bom_has_no_hits(boms: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    advisory = osv(
        "GHSA-x",
        ecosystem="PyPI",
        name="transformers",
        ranges=_ranges({"introduced": "0"}, {"fixed": "4.0"}),
    )
    report = audit_sbom(boms["cyclonedx"], load_from(tmp_path, [advisory]))
    assert report.hits == () and not report.failed()


def test_only_possible_hits_do_not_fail_unless_asked(
    boms: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    advisory = osv(
        "GHSA-req", ecosystem="PyPI", name="requests", ranges=_ranges({"introduced": "0"})
    )
    report = audit_sbom(boms["cyclonedx"], load_from(tmp_path, [advisory]))
    assert len(report.hits) == 1 and not report.failed()
    assert report.failed(include_possible=True)


@pytest.mark.parametrize(
    ("version", "events", "kind", "affected"),
    [
        ("4.8.2", [{"introduced": "0"}, {"fixed": "4.36.0"}], "ECOSYSTEM", True),
        ("4.36.0", [{"introduced": "0"}, {"fixed": "4.36.0"}], "ECOSYSTEM", False),
        ("1.5", [{"introduced": "1.0"}, {"last_affected": "1.5"}], "ECOSYSTEM", True),
        ("1.5.1", [{"introduced": "1.0"}, {"last_affected": "1.5"}], "ECOSYSTEM", False),
        ("0.9", [{"introduced": "1.0"}], "ECOSYSTEM", False),
        (
            "2.5",
            [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "2.4"}, {"fixed": "2.6"}],
            "ECOSYSTEM",
            True,
        ),
        (
            "2.1",
            [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "2.4"}, {"fixed": "2.6"}],
            "ECOSYSTEM",
            False,
        ),
        ("1.2.3", [{"introduced": "1.0.0"}, {"fixed": "v1.2.4"}], "SEMVER", True),
        ("1.2.3", [{"introduced": "0"}, {"fixed": "1.0"}], "GIT", False),
    ],
)
def test_version_ranges(
    version: str, events: list[dict[str, str]], kind: str, affected: bool
) -> None:
    entry = Affected(
        "PyPI", "x", ranges=((kind, tuple(pair for e in events for pair in e.items())),)
    )
    assert (version_affected(version, entry) is not None) is affected


def test_batch_and_list_files_and_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "osv"
    (folder / "sub").mkdir(parents=True)
    (folder / "batch.json").write_text(
        json.dumps({"vulns": [osv("A", ecosystem="PyPI", name="a")]})
    )
    (folder / "sub" / "list.json").write_text(json.dumps([osv("B", ecosystem="PyPI", name="b")]))
    (folder / "broken.json").write_text("{nope")
    (folder / "noid.json").write_text(json.dumps({"affected": []}))
    advisories, warnings = load_advisories(folder)
    assert sorted(a.id for a in advisories) == ["A", "B"]
    assert len(warnings) == 2 and any("broken.json" in w for w in warnings)


def test_missing_advisories_path(tmp_path: Path, boms: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(SbomError):
        audit_sbom(boms["cyclonedx"], tmp_path / "nope")


def test_not_a_bom() -> None:
    with pytest.raises(SbomError):
        audit_sbom({"hello": 1}, [])
