"""CapabilityStatement generated from the registered routes and the search registry.

Nothing here is maintained by hand per resource: interactions come from the Flask URL map
(a route that does not exist is never advertised) and search parameters from the registry.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.auth.capability import security_statement
from app.clock import format_instant, utc_now
from app.fhir import validate
from app.search.registry import READ_ONLY_TYPES, SPEC_BASE, SUPPORTED_TYPES, params_for
from app.state import current_state
from app.validation.profiles import BASE_PROFILE_PREFIX as BASE
from app.validation.profiles import default_profiles

# (URL rule below /fhir, HTTP method) → FHIR interaction code.
TYPE_INTERACTIONS = {
    ("/<resource_type>/<resource_id>", "GET"): "read",
    ("/<resource_type>/<resource_id>/_history/<version>", "GET"): "vread",
    ("/<resource_type>/<resource_id>", "PUT"): "update",
    ("/<resource_type>/<resource_id>", "DELETE"): "delete",
    ("/<resource_type>/<resource_id>/_history", "GET"): "history-instance",
    ("/<resource_type>/_history", "GET"): "history-type",
    ("/<resource_type>", "POST"): "create",
    ("/<resource_type>", "GET"): "search-type",
}
SYSTEM_INTERACTIONS = {("", "POST"): ("transaction", "batch"), ("/_history", "GET"):
                       ("history-system",)}
CONDITIONAL = {("/<resource_type>", "PUT"): "conditionalUpdate",
               ("/<resource_type>", "DELETE"): "conditionalDelete"}
# (URL rule below /fhir, HTTP method) → operation on every resource type.
TYPE_OPERATIONS = {("/<resource_type>/$validate", "POST"): ("validate", validate.DEFINITION)}
SEARCH_TYPES = {"special": "token", "uri": "uri"}
WRITE_INTERACTIONS = {"create", "update", "delete"}


def _routes() -> set[tuple[str, str]]:
    found = set()
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith("/fhir"):
            continue
        path = rule.rule[len("/fhir"):].rstrip("/")
        for method in rule.methods or ():
            found.add((path, method))
    return found


def _search_params(resource_type: str) -> list[dict[str, Any]]:
    out = []
    for param in params_for(resource_type).values():
        entry = {"name": param.name,
                 "definition": f"{SPEC_BASE}{resource_type}-{param.name.lstrip('_')}"
                 if not param.name.startswith("_") else f"{SPEC_BASE}Resource-"
                 f"{param.name.lstrip('_')}",
                 "type": SEARCH_TYPES.get(param.type, param.type)}
        if param.description:
            entry["documentation"] = param.description
        out.append(entry)
    return out


def _operations(routes: set[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "definition": definition}
            for key, (name, definition) in TYPE_OPERATIONS.items() if key in routes]


def _supported_profiles() -> dict[str, list[str]]:
    """Our SAS profiles per resource type: those $validate checks besides the base ones."""
    by_type: dict[str, list[str]] = {}
    for profile in default_profiles().profiles.values():
        by_type.setdefault(profile.type, []).append(profile.url)
    return {resource_type: sorted(urls) for resource_type, urls in by_type.items()}


def _validation_only(resource_type: str, operations: list[dict[str, str]],
                     profiles: list[str]) -> dict[str, Any]:
    """A type this server does not store but validates (Bundle, for SAS answers)."""
    entry: dict[str, Any] = {"type": resource_type, "profile": BASE + resource_type,
                             "operation": operations}
    if profiles:
        entry["supportedProfile"] = profiles
    return entry


def capability_statement() -> dict[str, Any]:
    routes = _routes()
    base = current_state().settings.fhir_base_url
    operations = _operations(routes)
    profiles = _supported_profiles()
    resources = []
    for resource_type in SUPPORTED_TYPES:
        interactions = [{"code": code} for key, code in TYPE_INTERACTIONS.items()
                        if key in routes and not (resource_type in READ_ONLY_TYPES
                                                  and code in WRITE_INTERACTIONS)]
        writable = resource_type not in READ_ONLY_TYPES
        entry: dict[str, Any] = {
            "type": resource_type,
            "profile": BASE + resource_type,
            "interaction": interactions,
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": writable,
            "conditionalCreate": writable and ("/<resource_type>", "POST") in routes,
            "conditionalRead": "not-supported",
            "conditionalUpdate": writable and ("/<resource_type>", "PUT") in routes,
            "conditionalDelete": "single" if writable and (
                "/<resource_type>", "DELETE") in routes else "not-supported",
            "referencePolicy": ["literal", "local", "enforced"],
            "searchInclude": [f"{resource_type}:{p.name}" for p in
                              params_for(resource_type).values() if p.type == "reference"],
            "searchRevInclude": sorted({f"{t}:{p.name}" for t in SUPPORTED_TYPES
                                        for p in params_for(t).values()
                                        if p.type == "reference" and resource_type in p.targets}),
            "searchParam": _search_params(resource_type),
        }
        if profiles.get(resource_type):
            entry["supportedProfile"] = profiles[resource_type]
        if operations:
            entry["operation"] = operations
        resources.append(entry)
    if operations:
        resources += [_validation_only(t, operations, profiles.get(t, []))
                      for t in validate.VALIDATABLE_TYPES if t not in SUPPORTED_TYPES]
    system = [{"code": code} for key, codes in SYSTEM_INTERACTIONS.items() if key in routes
              for code in codes]
    rest: dict[str, Any] = {"mode": "server"}
    security = security_statement(current_state().settings)
    if security is not None:
        rest["security"] = security
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(utc_now()),
        "publisher": "fhir-agenda",
        "kind": "instance",
        "software": {"name": "fhir-agenda", "version": "0.1.0"},
        "implementation": {"description": "SAS-ready FHIR agenda server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json", "application/json+fhir"],
        "rest": [{
            **rest,
            "resource": resources,
            "interaction": system,
            "searchParam": [{"name": "_count", "type": "number"},
                            {"name": "_sort", "type": "string"},
                            # Reverse chaining, on every type (app/search/query.py).
                            {"name": "_has", "type": "special",
                             "definition": f"{SPEC_BASE}Resource-has"}],
        }],
    }
