"""Which top-level elements `_elements` and `_summary` keep, read from the FHIR models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

ALWAYS = frozenset({"resourceType", "id", "meta"})
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "subsetted"}


@lru_cache(maxsize=64)
def _flagged(resource_type: str, flag: str) -> frozenset[str]:
    model = get_fhir_model_class(resource_type)
    names = set()
    for field in model.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if field.alias and (extra.get(flag) or (flag == "element_required"
                                                  and field.is_required())):
            names.add(field.alias)
    return frozenset(names)


def mandatory(resource_type: str) -> frozenset[str]:
    return _flagged(resource_type, "element_required")


def summary(resource_type: str) -> frozenset[str]:
    return _flagged(resource_type, "summary_element_property") | mandatory(resource_type)


def keep_only(resource: dict[str, Any], keep: set[str] | frozenset[str]) -> dict[str, Any]:
    """The resource reduced to `keep` (plus mandatory elements), tagged SUBSETTED."""
    wanted = ALWAYS | keep | mandatory(resource["resourceType"])
    subset = {k: v for k, v in resource.items() if k in wanted}
    meta = dict(subset.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    subset["meta"] = meta
    return subset


def apply_summary(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    resource_type = resource["resourceType"]
    if mode == "true":
        return keep_only(resource, summary(resource_type))
    if mode == "text":
        return keep_only(resource, {"text"})
    if mode == "data":
        return keep_only(resource, set(resource) - {"text"})
    return resource
