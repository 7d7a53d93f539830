"""Builders of valid FHIR R4 resources and Bundles, and small HTTP helpers for the tests.

Builders return plain dicts (new ones on every call) so that tests can change them freely.
HTTP helpers take the Flask test client and talk to the server under `/fhir`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

FHIR_JSON = "application/fhir+json"
BASE_URL = "http://localhost/fhir"  # FHIR_BASE_URL of the `client` fixture
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
RPPS = "810001234567"

Resource = dict[str, Any]


# -- resources --------------------------------------------------------------------------------

def practitioner(value: str = RPPS, *, family: str = "Martin", given: str = "Claire",
                 resource_id: str | None = None, **extra: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Practitioner",
        "identifier": [{"system": RPPS_SYSTEM, "value": value}],
        "active": True,
        "name": [{"family": family, "given": [given], "prefix": ["Dr"]}],
        **extra,
    }
    if resource_id is not None:
        resource["id"] = resource_id
    return resource


def schedule(actor: str, *, value: str = "agenda-1", **extra: Any) -> Resource:
    return {
        "resourceType": "Schedule",
        "identifier": [{"system": "urn:example:agenda", "value": value}],
        "active": True,
        "actor": [{"reference": actor}],
        "planningHorizon": {"start": "2026-11-02T08:00:00+01:00",
                            "end": "2026-11-02T18:00:00+01:00"},
        **extra,
    }


def slot(schedule_ref: str, *, status: str | None = "free",
         start: str = "2026-11-02T09:00:00+01:00", end: str = "2026-11-02T09:15:00+01:00",
         **extra: Any) -> Resource:
    resource: Resource = {"resourceType": "Slot", "schedule": {"reference": schedule_ref},
                          "start": start, "end": end, **extra}
    if status is not None:
        resource["status"] = status
    return resource


def patient(*, family: str = "Durand", given: str = "Paul", **extra: Any) -> Resource:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
            "birthDate": "1980-05-17", **extra}


def minimal(resource_type: str, refs: dict[str, str]) -> Resource:
    """A small valid resource of any supported type; `refs` maps a type to an existing id."""
    builders: dict[str, Resource] = {
        "Practitioner": practitioner(),
        "Patient": patient(),
        "Organization": {"resourceType": "Organization", "name": "Centre de santé"},
        "Location": {"resourceType": "Location", "name": "Cabinet", "status": "active"},
        "HealthcareService": {"resourceType": "HealthcareService", "name": "Consultation"},
        "Device": {"resourceType": "Device", "status": "active"},
        "RelatedPerson": {"resourceType": "RelatedPerson",
                          "patient": {"reference": f"Patient/{refs.get('Patient', 'missing')}"}},
        "PractitionerRole": {"resourceType": "PractitionerRole", "active": True},
        "Schedule": schedule(f"Practitioner/{refs.get('Practitioner', 'missing')}"),
        "Slot": slot(f"Schedule/{refs.get('Schedule', 'missing')}"),
        "Appointment": {
            "resourceType": "Appointment", "status": "booked",
            "start": "2026-11-02T09:00:00+01:00", "end": "2026-11-02T09:15:00+01:00",
            "participant": [{"actor": {"reference": f"Patient/{refs.get('Patient', 'missing')}"},
                             "status": "accepted"}],
        },
        "Subscription": {
            "resourceType": "Subscription", "status": "requested", "reason": "Suivi des RDV",
            "criteria": "Appointment?status=booked",
            "channel": {"type": "rest-hook", "endpoint": "https://agenda.example/hook",
                        "payload": "application/fhir+json"},
        },
    }
    return builders[resource_type]


# -- bundles ----------------------------------------------------------------------------------

def urn(n: int) -> str:
    """A deterministic `urn:uuid:` fullUrl."""
    return f"urn:uuid:{uuid.UUID(int=n)}"


def entry(method: str, url: str, resource: Resource | None = None, *,
          full_url: str | None = None, if_none_exist: str | None = None,
          if_match: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if full_url is not None:
        out["fullUrl"] = full_url
    if resource is not None:
        out["resource"] = resource
    request: dict[str, Any] = {"method": method, "url": url}
    if if_none_exist is not None:
        request["ifNoneExist"] = if_none_exist
    if if_match is not None:
        request["ifMatch"] = if_match
    out["request"] = request
    return out


def bundle(kind: str, *entries: dict[str, Any]) -> Resource:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


# -- HTTP helpers -----------------------------------------------------------------------------

def tick() -> None:
    """Let the clock move on: meta.lastUpdated has millisecond precision, and tests about
    history order need writes that do not share a millisecond."""
    time.sleep(0.003)


def body(response: Any) -> Any:
    """The JSON body of a response whatever its JSON content type (None when empty)."""
    return json.loads(response.data) if response.data else None


def send(client: Any, method: str, path: str, resource: Any = None,
         headers: dict[str, str] | None = None) -> Any:
    """A request with a FHIR JSON body (`resource` may be any JSON value or raw bytes/str)."""
    data = resource if isinstance(resource, str | bytes) or resource is None else json.dumps(
        resource)
    all_headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **(headers or {})}
    return client.open(f"/fhir/{path.lstrip('/')}", method=method, data=data,
                       headers=all_headers)


def create(client: Any, resource: Resource) -> Resource:
    """POST a resource, assert it was created and return the stored resource."""
    response = send(client, "POST", resource["resourceType"], resource)
    assert response.status_code == 201, body(response)
    return body(response)


def put(client: Any, resource: Resource) -> Resource:
    response = send(client, "PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    assert response.status_code in (200, 201), body(response)
    return body(response)


def read(client: Any, resource_type: str, resource_id: str) -> Any:
    return client.get(f"/fhir/{resource_type}/{resource_id}")


def search(client: Any, resource_type: str, query: str = "") -> Resource:
    response = client.get(f"/fhir/{resource_type}" + (f"?{query}" if query else ""))
    assert response.status_code == 200, body(response)
    result = body(response)
    assert result["resourceType"] == "Bundle" and result["type"] == "searchset"
    return result


def search_ids(client: Any, resource_type: str, query: str = "") -> list[str]:
    result = search(client, resource_type, query)
    return [e["resource"]["id"] for e in result.get("entry", [])
            if e.get("search", {}).get("mode") == "match"]


def assert_outcome(response: Any, status: int, *codes: str) -> Resource:
    """Assert an error answer: the status and an OperationOutcome with one of `codes`."""
    outcome = body(response)
    assert response.status_code == status, outcome
    assert response.mimetype == FHIR_JSON or response.mimetype.startswith("application/json")
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert outcome["issue"], outcome
    assert all(issue["severity"] in {"fatal", "error", "warning", "information"}
               for issue in outcome["issue"])
    if codes:
        assert {issue["code"] for issue in outcome["issue"]} & set(codes), outcome
    return outcome


def expressions(outcome: Resource) -> list[str]:
    return [e for issue in outcome["issue"] for e in issue.get("expression", [])]
