"""CapabilityStatement generated from the registered routes and the search registry.

Nothing here is maintained by hand per resource: interactions come from the Flask URL map
(a route that does not exist is never advertised) and search parameters from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from app.auth.capability import security_statement
from app.clock import format_instant, utc_now
from app.fhir import validate
from app.search.registry import (
    GAP_BASE,
    READ_ONLY_TYPES,
    SPEC_BASE,
    SUPPORTED_TYPES,
    definition_of,
    params_for,
)
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


@dataclass(frozen=True)
class Role:
    """A GAP role played by a server: what its CapabilityStatement asks of each type."""

    canonical: str
    interactions: dict[str, tuple[str, ...]]
    search: dict[str, tuple[str, ...]] = field(default_factory=dict)


_MANAGED = ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Location",
            "HealthcareService", "Organization", "Device")
# The server roles of the GAP guide (gap-ig/fsh/CapabilityStatement), transcribed from the
# guide; the consumer and declarant roles are clients. Whether we play one is computed from
# the generated statement below, so a type or route that goes away withdraws the claim
# instead of leaving it stale.
GAP_ROLES = (
    # Flows 1a/1b/1c: receives the declarations of agenda resources.
    Role(f"{GAP_BASE}/CapabilityStatement/GAP-GestionnaireRessources",
         {t: ("create", "update", "delete") for t in _MANAGED}),
    # Flows 2a-2c, 4a/5a, 4b/5b, and the appointments declared to it (6a/6b).
    Role(f"{GAP_BASE}/CapabilityStatement/GAP-GestionnaireAgenda",
         {"Schedule": ("create", "update", "delete", "patch"),
          "Slot": ("read", "search-type"),
          "Appointment": ("create", "update", "read", "search-type")},
         {"Slot": ("start", "schedule", "identifier", "status"),
          "Appointment": ("start", "priority", "description", "created", "actor", "date",
                          "identifier", "service-type", "status", "supporting-info")}),
)


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
        entry = {"name": param.name, "definition": definition_of(resource_type, param),
                 "type": SEARCH_TYPES.get(param.type, param.type)}
        parts = [param.description] if param.description else []
        if param.also:
            parts.append(f"Also answers {', '.join(param.also)}.")
        documentation = " ".join(parts)
        if documentation:
            entry["documentation"] = documentation
        out.append(entry)
    return out


def _roles(resources: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The GAP roles this statement plays (R4 `instantiates` allows a subset of a role's
    statement), and what of each is not supported, for `rest.documentation`."""
    served = {r["type"]: r for r in resources if r["type"] not in READ_ONLY_TYPES}
    played, gaps = [], []
    for role in GAP_ROLES:
        if not set(role.interactions) <= set(served):
            continue
        played.append(role.canonical)
        name = role.canonical.rsplit("/", 1)[-1]
        for resource_type, codes in role.interactions.items():
            have = {i["code"] for i in served[resource_type]["interaction"]}
            gaps += [f"{name}: {code} of {resource_type} is not supported"
                     for code in codes if code not in have]
        for resource_type, names in role.search.items():
            have = {p["name"] for p in served[resource_type]["searchParam"]}
            gaps += [f"{name}: search parameter {resource_type}.{n} is not supported"
                     for n in names if n not in have]
    return played, gaps


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
    played, gaps = _roles(resources)
    if gaps:
        rest["documentation"] = "; ".join(gaps) + "."
    security = security_statement(current_state().settings)
    if security is not None:
        rest["security"] = security
    statement: dict[str, Any] = {
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
    if played:
        # The CI-SIS GAP roles played: resource manager, agenda manager.
        statement["instantiates"] = played
    return statement
