"""License tags map to SPDX ids; model licenses stay named; nothing is dropped."""

from __future__ import annotations

import pytest

from modelseal.sbom.licenses import normalize_license


@pytest.mark.parametrize(
    ("raw", "spdx"),
    [
        ("apache-2.0", "Apache-2.0"),
        ("MIT", "MIT"),
        ("cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0"),
        ("gpl-3.0", "GPL-3.0-only"),
        ("bsd-3-clause", "BSD-3-Clause"),
        ("Apache-2.0", "Apache-2.0"),
        ("0bsd", "0BSD"),  # from the full SPDX list, not the card table
    ],
)
def test_spdx_licenses(raw: str, spdx: str) -> None:
    info = normalize_license(raw)
    assert (info.spdx_id, info.known, info.license_ref) == (spdx, True, spdx)


@pytest.mark.parametrize(
    "raw", ["llama3", "llama3.1", "gemma", "openrail", "creativeml-openrail-m"]
)
def test_model_licenses_are_named(raw: str) -> None:
    info = normalize_license(raw)
    assert info.spdx_id is None and info.known and info.name == raw
    assert info.license_ref.startswith("LicenseRef-")
    assert info.url and info.url.startswith("https://")


def test_other_uses_license_name_and_link() -> None:
    info = normalize_license("other", name="acme-model-license", url="https://acme.test/license")
    assert (info.name, info.url, info.known) == (
        "acme-model-license",
        "https://acme.test/license",
        True,
    )
    assert info.license_ref == "LicenseRef-acme-model-license"


def test_unknown_license_is_kept() -> None:
    info = normalize_license("weird license!")
    assert (info.spdx_id, info.name, info.known) == (None, "weird license!", False)
    assert info.license_ref == "LicenseRef-weird-license"
