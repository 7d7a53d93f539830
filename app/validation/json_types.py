"""JSON-level checks that pydantic's lax coercion lets through.

fhir.resources accepts `"active": "yes"` (coerced to True), `"priority": "1"` and codes
outside a required value set. FHIR JSON is strict about both, so this walks the resource
beside its model: booleans must be JSON booleans, integers JSON integers, strings JSON
strings, and coded elements with a fixed value set (e.g. Slot.status) one of its codes.
"""

from __future__ import annotations

import datetime
import decimal
import types
import typing
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from app.outcome import Issue

_JSON_KIND = {bool: "boolean", int: "integer", float: "number", decimal.Decimal: "number",
              str: "string", datetime.datetime: "string", datetime.date: "string",
              datetime.time: "string"}


@lru_cache(maxsize=512)
def model_named(name: str) -> Any | None:
    try:
        return get_fhir_model_class(name)
    except (KeyError, ValueError, LookupError):
        return None


@lru_cache(maxsize=256)
def _fields(model: Any) -> dict[str, tuple[str | None, Any, tuple[str, ...]]]:
    """alias → (JSON kind or None, nested model name or None, allowed codes)."""
    found: dict[str, tuple[str | None, Any, tuple[str, ...]]] = {}
    for field in model.model_fields.values():
        if not field.alias or field.alias.startswith("_"):
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        codes = tuple(extra.get("enum_values") or ())  # type: ignore[arg-type]
        kind, nested = classify(field.annotation)
        found[field.alias] = (kind, nested, codes)
    return found


def classify(annotation: Any) -> tuple[str | None, str | None]:
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType, list, typing.List):  # noqa: UP006
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if args else None
        elif origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        else:
            break
    if annotation in _JSON_KIND:
        return _JSON_KIND[annotation], None
    name = getattr(annotation, "__name__", "")
    if name.endswith("Type") and name not in {"FHIRPrimitiveExtensionType"}:
        return None, name[: -len("Type")]
    return None, None


def json_kind(value: Any) -> str:
    """The JSON type of a parsed value, as FHIR's JSON rules name it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def json_type_issues(resource: dict[str, Any], resource_type: str) -> list[Issue]:
    model = model_named(resource_type)
    return _check(resource, model, resource_type) if model is not None else []


def _check(node: dict[str, Any], model: Any, path: str) -> list[Issue]:
    issues: list[Issue] = []
    fields = _fields(model)
    for key, value in node.items():
        if key not in fields:
            continue  # unknown elements are reported by the model validation
        kind, nested, codes = fields[key]
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            where = f"{path}.{key}" + (f"[{index}]" if isinstance(value, list) else "")
            if kind is not None:
                issues.extend(_primitive(item, kind, codes, where))
            elif nested is not None and isinstance(item, dict):
                sub_model = (model_named(item.get("resourceType", "")) if nested == "Resource"
                             else model_named(nested))
                if sub_model is not None:
                    issues.extend(_check(item, sub_model, where))
    return issues


def _primitive(value: Any, kind: str, codes: tuple[str, ...], where: str) -> list[Issue]:
    actual = json_kind(value)
    compatible = actual == kind or (kind == "number" and actual == "integer")
    if not compatible:
        return [Issue("value", f"{where}: expected a JSON {kind}, got {actual} {value!r}",
                      expression=[where])]
    if codes and value not in codes:
        return [Issue("code-invalid", f"{where}: '{value}' is not one of {', '.join(codes)}",
                      expression=[where])]
    return []
