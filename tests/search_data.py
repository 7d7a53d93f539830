"""Small builders and HTTP helpers for the search tests (test_search_*.py, test_query_plan.py).

Resources get client-chosen ids so that tests can assert on ids; `load` writes them all in
one transaction Bundle of PUT entries (references may point forward inside the Bundle).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

BASE = "http://localhost/fhir"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
LOCAL = "urn:example:local-directory"
TYPE_CRENEAU = ("https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/"
                "TRE-R314-TypeCreneau")
SPECIALITE = ("https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/"
              "TRE-R38-SpecialiteOrdinale")

Resource = dict[str, Any]


# -- builders --------------------------------------------------------------------------------

def practitioner(rid: str, rpps: str | None = None, *, family: str = "Martin",
                 given: tuple[str, ...] = ("Claire",), **extra: Any) -> Resource:
    resource: Resource = {"resourceType": "Practitioner", "id": rid,
                          "name": [{"family": family, "given": list(given)}], **extra}
    if rpps is not None:
        resource["identifier"] = [{"system": RPPS, "value": rpps}, *extra.get("identifier", [])]
    return resource


def role(rid: str, practitioner_id: str, *, organization_id: str | None = None,
         **extra: Any) -> Resource:
    resource: Resource = {"resourceType": "PractitionerRole", "id": rid, "active": True,
                          "practitioner": {"reference": f"Practitioner/{practitioner_id}"},
                          **extra}
    if organization_id:
        resource["organization"] = {"reference": f"Organization/{organization_id}"}
    return resource


def organization(rid: str, name: str, **extra: Any) -> Resource:
    return {"resourceType": "Organization", "id": rid, "active": True, "name": name, **extra}


def location(rid: str, name: str, *, organization_id: str | None = None,
             **extra: Any) -> Resource:
    resource: Resource = {"resourceType": "Location", "id": rid, "status": "active",
                          "name": name, **extra}
    if organization_id:
        resource["managingOrganization"] = {"reference": f"Organization/{organization_id}"}
    return resource


def schedule(rid: str, *actors: str, start: str | None = None, end: str | None = None,
             **extra: Any) -> Resource:
    """`actors` are reference strings (`Practitioner/p1`, absolute URLs…)."""
    resource: Resource = {"resourceType": "Schedule", "id": rid, "active": True,
                          "actor": [{"reference": a} for a in actors], **extra}
    horizon = {k: v for k, v in (("start", start), ("end", end)) if v}
    if horizon:
        resource["planningHorizon"] = horizon
    return resource


def slot(rid: str, schedule_ref: str, start: str, *, minutes: int = 15, status: str = "free",
         security: tuple[str, ...] = (), **extra: Any) -> Resource:
    """`schedule_ref` is a Schedule id or a full reference string; `start` an instant."""
    reference = schedule_ref if "/" in schedule_ref else f"Schedule/{schedule_ref}"
    end = (datetime.fromisoformat(start) + timedelta(minutes=minutes)).isoformat()
    resource: Resource = {"resourceType": "Slot", "id": rid,
                          "schedule": {"reference": reference},
                          "status": status, "start": start, "end": end, **extra}
    if security:
        resource["meta"] = {"security": [{"system": TYPE_CRENEAU, "code": code}
                                         for code in security]}
    return resource


# -- HTTP ------------------------------------------------------------------------------------

def body(response: Any) -> Any:
    return json.loads(response.data) if response.data else None


def load(client: Any, *resources: Resource) -> None:
    """PUT every resource (ids kept) in one transaction."""
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources]}
    response = client.post("/fhir", data=json.dumps(bundle),
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, body(response)


def get(client: Any, path: str, **kwargs: Any) -> Any:
    """GET `/fhir/<path>` (a full URL on our base is accepted too)."""
    if path.startswith(BASE):
        parts = urlsplit(path)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
    elif not path.startswith("/fhir"):
        path = f"/fhir/{path}"
    return client.get(path, **kwargs)


def search(client: Any, path: str, **kwargs: Any) -> Resource:
    """A searchset Bundle, asserting a 200 answer and the invariants of every searchset."""
    response = get(client, path, **kwargs)
    assert response.status_code == 200, body(response)
    result = body(response)
    assert result["resourceType"] == "Bundle" and result["type"] == "searchset", result
    assert isinstance(result.get("total"), int), "total must always be present"
    return result


def entries(bundle: Resource, mode: str = "match") -> list[Resource]:
    return [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def ids(bundle: Resource, mode: str = "match") -> list[str]:
    """Ids of the entries of one search mode, in Bundle order."""
    return [e["resource"]["id"] for e in entries(bundle, mode)]


def refs(bundle: Resource, mode: str = "match") -> list[str]:
    """`Type/id` of the entries of one search mode, in Bundle order."""
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries(bundle, mode)]


def found(client: Any, path: str) -> set[str]:
    """Ids matched by a search (the set: order-insensitive assertions)."""
    result = search(client, path)
    matched = ids(result)
    assert len(matched) == len(set(matched)), f"duplicate matches: {matched}"
    assert result["total"] == len(matched), (result["total"], matched)
    return set(matched)


def link(bundle: Resource, relation: str) -> str | None:
    return next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == relation), None)
