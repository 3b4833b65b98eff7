"""License names as model cards write them, mapped to SPDX identifiers.

Model cards use the Hugging Face license tags (``apache-2.0``, ``cc-by-nc-4.0``,
``llama3``...). Where a tag is an SPDX license the result carries the SPDX id;
where it is not (model licenses such as ``llama3``, ``gemma``, ``openrail``) the
result is a *named* license with a ``LicenseRef-`` id for SPDX documents. A
license is never dropped: anything unrecognised stays a named license, and the
caller gets ``known=False`` to warn about.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache

__all__ = ["LicenseInfo", "normalize_license", "spdx_license_ids"]

# Hugging Face license tags whose SPDX id is not just the tag in another case.
_HF_TO_SPDX: dict[str, str] = {
    "apache-2.0": "Apache-2.0",
    "mit": "MIT",
    "afl-3.0": "AFL-3.0",
    "artistic-2.0": "Artistic-2.0",
    "bsl-1.0": "BSL-1.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-3-clause-clear": "BSD-3-Clause-Clear",
    "cc0-1.0": "CC0-1.0",
    "cc-by-2.0": "CC-BY-2.0",
    "cc-by-2.5": "CC-BY-2.5",
    "cc-by-3.0": "CC-BY-3.0",
    "cc-by-4.0": "CC-BY-4.0",
    "cc-by-sa-3.0": "CC-BY-SA-3.0",
    "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-nc-2.0": "CC-BY-NC-2.0",
    "cc-by-nc-3.0": "CC-BY-NC-3.0",
    "cc-by-nc-4.0": "CC-BY-NC-4.0",
    "cc-by-nd-4.0": "CC-BY-ND-4.0",
    "cc-by-nc-nd-3.0": "CC-BY-NC-ND-3.0",
    "cc-by-nc-nd-4.0": "CC-BY-NC-ND-4.0",
    "cc-by-nc-sa-2.0": "CC-BY-NC-SA-2.0",
    "cc-by-nc-sa-3.0": "CC-BY-NC-SA-3.0",
    "cc-by-nc-sa-4.0": "CC-BY-NC-SA-4.0",
    "cdla-sharing-1.0": "CDLA-Sharing-1.0",
    "cdla-permissive-1.0": "CDLA-Permissive-1.0",
    "cdla-permissive-2.0": "CDLA-Permissive-2.0",
    "wtfpl": "WTFPL",
    "ecl-2.0": "ECL-2.0",
    "epl-1.0": "EPL-1.0",
    "epl-2.0": "EPL-2.0",
    "etalab-2.0": "etalab-2.0",
    "eupl-1.1": "EUPL-1.1",
    "eupl-1.2": "EUPL-1.2",
    "agpl-3.0": "AGPL-3.0-only",
    "gpl-2.0": "GPL-2.0-only",
    "gpl-3.0": "GPL-3.0-only",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-3.0": "LGPL-3.0-only",
    "isc": "ISC",
    "lppl-1.3c": "LPPL-1.3c",
    "ms-pl": "MS-PL",
    "mpl-2.0": "MPL-2.0",
    "odc-by": "ODC-By-1.0",
    "odbl": "ODbL-1.0",
    "osl-3.0": "OSL-3.0",
    "postgresql": "PostgreSQL",
    "ofl-1.1": "OFL-1.1",
    "ncsa": "NCSA",
    "unlicense": "Unlicense",
    "zlib": "Zlib",
    "pddl": "PDDL-1.0",
    "openrail": "OpenRAIL",  # not an SPDX id: kept as a named license below
}

# Model licenses that are not on the SPDX list, with where their text lives.
_NAMED: dict[str, str] = {
    "llama2": "https://ai.meta.com/llama/license/",
    "llama3": "https://llama.meta.com/llama3/license/",
    "llama3.1": "https://llama.meta.com/llama3_1/license/",
    "llama3.2": "https://www.llama.com/llama3_2/license/",
    "llama3.3": "https://www.llama.com/llama3_3/license/",
    "llama4": "https://www.llama.com/llama4/license/",
    "gemma": "https://ai.google.dev/gemma/terms",
    "openrail": "https://www.licenses.ai/",
    "openrail++": "https://www.licenses.ai/",
    "bigscience-openrail-m": "https://bigscience.huggingface.co/blog/bigscience-openrail-m",
    "creativeml-openrail-m": "https://huggingface.co/spaces/CompVis/stable-diffusion-license",
    "bigscience-bloom-rail-1.0": "https://bigscience.huggingface.co/blog/the-bigscience-rail-license",
    "bigcode-openrail-m": "https://www.bigcode-project.org/docs/pages/bigcode-openrail/",
    "deepfloyd-if-license": "https://huggingface.co/spaces/DeepFloyd/deepfloyd-if-license",
    "fair-noncommercial-research-license": "",
    "apple-ascl": "",
    "apple-amlr": "",
    "intel-research": "",
    "h-research": "",
    "c-uda": "",
    "lgpl-lr": "",
}

_REF_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


@dataclass(frozen=True)
class LicenseInfo:
    """One license as declared by the model, mapped to SPDX where possible."""

    #: The text as found (card, GGUF metadata...).
    raw: str
    #: The SPDX license id, or None for a license that is not on the SPDX list.
    spdx_id: str | None
    #: Display name (the SPDX id, or the declared name).
    name: str
    #: Where the license text lives, when known.
    url: str | None = None
    #: False when the value is neither an SPDX id nor a known model license.
    known: bool = True

    @property
    def license_ref(self) -> str:
        """The id to use in SPDX expressions: the SPDX id or ``LicenseRef-<name>``."""
        if self.spdx_id is not None:
            return self.spdx_id
        cleaned = _REF_UNSAFE.sub("-", self.name).strip("-") or "unknown"
        return f"LicenseRef-{cleaned}"


@cache
def spdx_license_ids() -> dict[str, str]:
    """Every SPDX license id, keyed by its lowercase form.

    Read from the SPDX list that cyclonedx-python-lib ships (the ``sbom`` extra);
    without it, only the ids in this module's own table are known.
    """
    ids = {value.lower(): value for value in _HF_TO_SPDX.values() if value != "OpenRAIL"}
    try:
        from importlib.resources import files

        text = files("cyclonedx.schema._res").joinpath("spdx.SNAPSHOT.schema.json").read_text()
        ids.update({value.lower(): value for value in json.loads(text).get("enum", [])})
    except (ImportError, OSError, ValueError):
        pass
    return ids


def normalize_license(raw: str, *, name: str | None = None, url: str | None = None) -> LicenseInfo:
    """Map a declared license to SPDX.

    ``name``/``url`` are the card's ``license_name``/``license_link`` (used when the
    license is ``other``). Unknown values become named licenses with ``known=False``.
    """
    text = raw.strip()
    key = text.lower()
    if key in _NAMED:
        return LicenseInfo(text, None, text, _NAMED[key] or url)
    if key in ("other", "unknown", "") and name:
        return LicenseInfo(text, None, name.strip(), url, known=key == "other")
    spdx = _HF_TO_SPDX.get(key) or spdx_license_ids().get(key)
    if spdx is not None:
        return LicenseInfo(text, spdx, spdx, url)
    # Deprecated bare GPL forms that SPDX only knows with -only/-or-later.
    return LicenseInfo(text, None, text or "unknown", url, known=False)
