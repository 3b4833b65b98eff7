"""Real validators for SBOM tests: the official CycloneDX schemas and spdx-python-model."""

from __future__ import annotations

import io
import json
from typing import Any

__all__ = ["cyclonedx_errors", "spdx_errors"]


def cyclonedx_errors(document: dict[str, Any], version: str) -> list[str]:
    """Schema errors of a CycloneDX JSON document (strict official schema, offline)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    schema = {"1.6": SchemaVersion.V1_6, "1.7": SchemaVersion.V1_7}[version]
    errors = JsonStrictValidator(schema).validate_str(json.dumps(document), all_errors=True)
    return [str(e)[:500] for e in errors or []]


def spdx_errors(document: dict[str, Any]) -> list[str]:
    """Why an SPDX 3.0.1 JSON-LD document is invalid, per spdx-python-model.

    The model's JSON-LD deserializer checks every type, property name, value type,
    enumeration and pattern; ``link()`` reports references to elements that are not
    in the document; serializing again enforces the required (min count) properties.
    No PyPI package ships the official SPDX 3.0.1 JSON schema file, so this is the
    offline check, together with a JSON Schema generated from the same model
    (:mod:`tests.sbom.spdx_schema`) and validated with ``jsonschema``.
    """
    from spdx_python_model import v3_0_1 as spdx

    from tests.sbom.spdx_schema import spdx_schema_errors

    errors = spdx_schema_errors(document)
    objects = spdx.SHACLObjectSet()
    try:
        spdx.JSONLDDeserializer().read(io.StringIO(json.dumps(document)), objects)
        missing = objects.link()
        spdx.JSONLDSerializer().write(objects, io.BytesIO())
    except (KeyError, ValueError, TypeError) as exc:
        return [*errors, f"{type(exc).__name__}: {exc}"[:500]]
    errors += [f"unresolved reference {ref}" for ref in sorted(missing)]
    known = {type(o).__name__ for o in objects.objects}
    for node in document.get("@graph", []):
        if node.get("type") not in known:
            errors.append(f"type {node.get('type')!r} was not deserialized")
    return errors
