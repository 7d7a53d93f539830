"""The CPTS offer's data: which CPTS a slot is shared with, and each CPTS as SAS sees it.

An agenda shares a slot with a CPTS the GAP way, through plain FHIR writes: the Slot
carries the CPTS visibility label and, on a `serviceType` concept, the R5 Slot.serviceType
extension whose `valueReference` names a stored HealthcareService (`HealthcareService/id`),
that HealthcareService's `providedBy` names the stored Organization of the CPTS, and the
Organization holds a FINESS (IDNST `1…`, or a FINESS system, prefixed or not). One concept
per CPTS; a slot shared with two CPTS has two. Anything else (no label, a reference to
another server, an Organization without a FINESS, an inactive HealthcareService or
Organization) publishes no CPTS link: the slot is then answered like any other.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection

from app.identifiers import IDNST_SYSTEM, structure_ids_of
from app.sas import codes
from app.sas.place_rules import active, contents, local_refs
from app.sas.shape import telecoms

Resource = dict[str, Any]


def has_label(slot: Resource, code: str) -> bool:
    return any(isinstance(label, dict) and label.get("system") == codes.SLOT_TYPE_SYSTEM
               and label.get("code") == code
               for label in (slot.get("meta") or {}).get("security") or [])


def shared_with(slot: Resource, base: str) -> list[str]:
    """Ids of the HealthcareServices a slot labelled CPTS names, in order, each once."""
    if not has_label(slot, codes.CPTS_LABEL):
        return []
    references = [extension.get("valueReference")
                  for concept in slot.get("serviceType") or [] if isinstance(concept, dict)
                  for extension in concept.get("extension") or []
                  if isinstance(extension, dict)
                  and extension.get("url") == codes.SERVICE_TYPE_EXTENSION]
    return list(dict.fromkeys(local_refs(references, "HealthcareService", base)))


def concept(service_id: str) -> Resource:
    """The serviceType concept of a CPTS slot naming one CPTS offer."""
    return {"extension": [{"url": codes.SERVICE_TYPE_EXTENSION,
                           "valueReference": {"reference": f"HealthcareService/{service_id}"}}],
            "coding": [{"system": codes.CATEGORY_SYSTEM, "code": codes.CPTS_CATEGORY}]}


def organization(resource: Resource, finess: str) -> Resource:
    """sas-cpts-organization-aggregator: the FINESS, the name and the phones of the CPTS."""
    shaped: Resource = {
        "resourceType": "Organization",
        "id": resource["id"],
        "meta": {"profile": [codes.CPTS_ORGANIZATION_PROFILE]},
        "identifier": [{"type": {"coding": [{"system": codes.LOCATION_ID_TYPES,
                                             "code": "IDNST"}]},
                        "system": IDNST_SYSTEM, "value": finess}],
    }
    if resource.get("name"):
        shaped["name"] = resource["name"]
    published = telecoms(resource.get("telecom") or [])
    if published:
        shaped["telecom"] = published
    return shaped


def service(resource: Resource, organization_id: str) -> Resource:
    shaped: Resource = {
        "resourceType": "HealthcareService",
        "id": resource["id"],
        "meta": {"profile": [codes.CPTS_SERVICE_PROFILE]},
        "providedBy": {"reference": f"Organization/{organization_id}"},
    }
    if resource.get("name"):
        shaped["name"] = resource["name"]
    return shaped


def service_rows(conn: Connection, services: dict[str, Resource],
                 base: str) -> list[dict[str, Any]]:
    """The `sas_cpts` rows of these HealthcareServices: those provided by an active stored
    Organization with a FINESS."""
    providers = {service_id: found[0] for service_id, resource in services.items()
                 if active(resource) and (found := local_refs(
                     [resource.get("providedBy") or {}], "Organization", base))}
    organizations = contents(conn, "Organization", set(providers.values()))
    rows = []
    for service_id, organization_id in sorted(providers.items()):
        provider = organizations.get(organization_id)
        finess = structure_ids_of((provider or {}).get("identifier") or [], "1")
        if not active(provider) or not finess:
            continue
        assert provider is not None
        rows.append({
            "healthcareservice_id": service_id,
            "organization_id": organization_id,
            "healthcareservice": orjson.dumps(
                service(services[service_id], organization_id)).decode(),
            "organization": orjson.dumps(organization(provider, finess[0])).decode(),
        })
    return rows
