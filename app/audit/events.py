"""Build FHIR R4 AuditEvent resources (DICOM-style codes as the R4 spec recommends)."""

from __future__ import annotations

from typing import Any

from app.clock import format_instant, utc_now

INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
ACTIONS = {"create": "C", "update": "U", "delete": "D", "read": "R", "vread": "R",
           "search-type": "E", "history-instance": "R"}
# R4 AuditEvent.outcome: 0 success, 4 minor failure (e.g. refused request), 8 serious.
SUCCESS, MINOR_FAILURE = "0", "4"


def audit_event(interaction: str, outcome: str, agent: str, address: str | None,
                entities: list[str], description: str | None = None) -> dict[str, Any]:
    network = {"network": {"address": address, "type": "2"}} if address else {}
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                 "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": INTERACTION_SYSTEM, "code": interaction}],
        "action": ACTIONS.get(interaction, "E"),
        "recorded": format_instant(utc_now()),
        "outcome": outcome,
        "agent": [{"name": agent[:500], "requestor": True, **network}],
        "source": {"observer": {"display": "fhir-agenda"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                       "security-source-type", "code": "4"}]},
    }
    if description:
        event["outcomeDesc"] = description[:1000]
    if entities:
        event["entity"] = [{"what": {"reference": reference},
                            "type": {"system": "http://terminology.hl7.org/CodeSystem/"
                                               "audit-entity-type", "code": "2"}}
                           for reference in entities]
    return event


DICOM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
LOGIN, LOGOUT = "110122", "110123"
_AUTHENTICATION_DISPLAY = {LOGIN: "Login", LOGOUT: "Logout"}


def authentication_event(subtype: str, outcome: str, agent: str, address: str | None,
                         entities: list[str], description: str | None = None) -> dict[str, Any]:
    """A sign-in or sign-out on the web pages (DICOM "User Authentication")."""
    event = audit_event("login", outcome, agent, address, entities, description)
    event["type"] = {"system": DICOM_SYSTEM, "code": "110114", "display": "User Authentication"}
    event["subtype"] = [{"system": DICOM_SYSTEM, "code": subtype,
                         "display": _AUTHENTICATION_DISPLAY[subtype]}]
    event["action"] = "E"
    return event
