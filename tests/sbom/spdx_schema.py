"""A JSON Schema for SPDX 3.0.1 JSON-LD, generated from spdx-python-model's class model.

No PyPI package ships the official ``spdx-json-schema.json`` 3.0.1 and tests stay
offline, so this builds the equivalent structural schema from the same SHACL
model the official one is generated from (as shipped in spdx-python-model): one
definition per class with its allowed properties (``additionalProperties: false``
except for extensible classes), value types, enumerations, datetime patterns,
required properties (min count 1) and the id key (``spdxId`` for IRI-identified
elements), then the document as ``{"@context": ..., "@graph": [...]}``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["spdx_schema", "spdx_schema_errors"]

CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"


def _value_schema(prop: Any, model: Any) -> dict[str, Any]:
    if isinstance(prop, model.ListProp):
        return {"type": "array", "items": _value_schema(prop.prop, model)}
    if isinstance(prop, model.EnumProp):
        return {"enum": sorted({c for pair in prop.context for c in pair})}
    if isinstance(prop, model.ObjectProp):
        named = sorted({c for pair in prop.context for c in pair})
        return {
            "anyOf": [
                {"type": "string"},
                {"$ref": f"#/$defs/{prop.cls.__name__}_derived"},
                *([{"enum": named}] if named else []),
            ]
        }
    if isinstance(prop, model.DateTimeProp):
        return {"type": "string", "pattern": prop.REGEX}
    if isinstance(prop, model.BooleanProp):
        return {"type": "boolean"}
    if isinstance(prop, model.PositiveIntegerProp):
        return {"type": "integer", "minimum": 1}
    if isinstance(prop, model.NonNegativeIntegerProp):
        return {"type": "integer", "minimum": 0}
    if isinstance(prop, model.IntegerProp):
        return {"type": "integer"}
    if isinstance(prop, model.FloatProp):
        return {"type": "number"}
    schema: dict[str, Any] = {"type": "string"}
    if getattr(prop, "pattern", None):
        schema["pattern"] = prop.pattern
    return schema


@cache
def spdx_schema() -> dict[str, Any]:
    """The generated Draft 2020-12 schema."""
    from spdx_python_model.bindings.v3_0_1 import model

    classes = sorted(
        {c for c in model.SHACLObject.CLASSES.values()}, key=lambda c: c._COMPACT_TYPE or ""
    )
    defs: dict[str, Any] = {}
    for cls in classes:
        if not cls.IS_ABSTRACT:
            cls()  # registers the property types of the class and its bases
    for cls in classes:
        props: dict[str, Any] = {"type": {"const": cls._COMPACT_TYPE}}
        required = ["type"]
        id_key = cls.ID_ALIAS or "@id"
        props[id_key] = {"type": "string"}
        if cls.NODE_KIND == model.NodeKind.IRI:
            required.append(id_key)
        for name, prop in cls._OBJ_COMPACT_PROPS.items():
            schema = _value_schema(prop.prop, model)
            if prop.min_count:
                required.append(name)
                if schema.get("type") == "array":
                    schema["minItems"] = prop.min_count
            if prop.max_count is not None and schema.get("type") == "array":
                schema["maxItems"] = prop.max_count
            props[name] = schema
        defs[cls.__name__] = {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": issubclass(cls, model.SHACLExtensibleObject),
        }
    for cls in [*classes, model.SHACLObject]:
        derived = [c for c in classes if issubclass(c, cls) and not c.IS_ABSTRACT]
        defs[f"{cls.__name__}_derived"] = {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": [c._COMPACT_TYPE for c in derived]}},
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": c._COMPACT_TYPE}}},
                    "then": {"$ref": f"#/$defs/{c.__name__}"},
                }
                for c in derived
            ],
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["@context", "@graph"],
        "additionalProperties": False,
        "properties": {
            "@context": {"const": CONTEXT},
            "@graph": {"type": "array", "items": {"$ref": "#/$defs/SHACLObject_derived"}},
        },
        "$defs": defs,
    }


def spdx_schema_errors(document: dict[str, Any]) -> list[str]:
    """Errors of ``document`` against the generated schema (jsonschema, Draft 2020-12)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(spdx_schema())
    return [
        f"{e.json_path}: {e.message}"[:500]
        for e in sorted(validator.iter_errors(document), key=lambda e: e.json_path)
    ]
