"""An agenda stored in the many shapes real agendas use, for the SAS search tests.

Everything is loaded through the FHIR API (one transaction Bundle); slots lie in March 2030
so that no test depends on today's date.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.factories import body, bundle, entry

IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
IDNST = "urn:oid:1.2.250.1.71.4.2.2"
ID_TYPES = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
R314 = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
R38 = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
PATIENT_ONLY = "https://fhir-agenda.example/fhir/CodeSystem/slot-visibility"

Resource = dict[str, Any]

# Prefixed national ids SAS sends, and how each practitioner is stored.
MARTIN = "810000000017"  # stored prefixed, two practice places
BLANC = "810000000025"  # stored WITHOUT the prefix (10000000025)
ROUX = "0691234567"  # ADELI, stored without the prefix (691234567)
NOEL = "810000000033"  # Schedule names only the PractitionerRole
FAURE = "810000000041"  # Schedule names only the Practitioner and a Location
PETIT = "810000000058"  # practice place without an address: not publishable
LEGRAND = "810000000066"  # inactive practitioner
UNKNOWN = "810000000099"


def _practitioner(pid: str, value: str, family: str, given: str, **extra: Any) -> Resource:
    return {"resourceType": "Practitioner", "id": pid, "active": True,
            "identifier": [{"system": IDNPS, "value": value}],
            "name": [{"family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": "04 72 10 20 30", "use": "work"}],
            **extra}


def _organization(oid: str, identifier: Resource) -> Resource:
    return {"resourceType": "Organization", "id": oid, "name": oid, "identifier": [identifier]}


def _location(lid: str, *lines: str, city: str = "Lyon", postal: str = "69003") -> Resource:
    location: Resource = {"resourceType": "Location", "id": lid, "name": f"Cabinet {lid}"}
    if lines:
        location["address"] = {"line": list(lines), "city": city, "postalCode": postal}
    return location


def _role(rid: str, pid: str, lid: str | None, oid: str | None) -> Resource:
    role: Resource = {"resourceType": "PractitionerRole", "id": rid, "active": True,
                      "practitioner": {"reference": f"Practitioner/{pid}"},
                      "telecom": [{"system": "phone", "value": "0478000000"}]}
    if lid:
        role["location"] = [{"reference": f"Location/{lid}"}]
    if oid:
        role["organization"] = {"reference": f"Organization/{oid}"}
    return role


def schedule(sid: str, *actors: str) -> Resource:
    return {"resourceType": "Schedule", "id": sid, "active": True,
            "actor": [{"reference": a} for a in actors]}


def security(*codes: str) -> dict[str, Any]:
    return {"security": [{"system": PATIENT_ONLY if c == "PATIENT" else R314, "code": c}
                         for c in codes]}


def sas_slot(slot_id: str, schedule_id: str, start: str, end: str, *kinds: str,
             status: str = "free", **extra: Any) -> Resource:
    resource: Resource = {
        "resourceType": "Slot", "id": slot_id, "status": status,
        "schedule": {"reference": f"Schedule/{schedule_id}"}, "start": start, "end": end,
        "serviceType": [{"coding": [{"system": ACT, "code": "AMB"}]}],
        "specialty": [{"coding": [{"system": R38, "code": "SM54"}]}],
        "appointmentType": {"coding": [{"system": V2_0276, "code": "ROUTINE"}]},
        **extra,
    }
    if kinds:
        resource["meta"] = security(*kinds)
    return resource


def agenda() -> list[Resource]:
    resources: list[Resource] = [
        _organization("org-finess", {"system": IDNST, "value": "690000001",
                                     "type": {"coding": [{"system": ID_TYPES,
                                                          "code": "FINEG"}]}}),
        _organization("org-siret", {"system": IDNST, "value": "312345678900012"}),
        _organization("org-rang", {"system": IDNST, "value": "41000000001701"}),
        _location("loc-a", "3 rue Garibaldi", "Bâtiment B", postal="69006"),
        _location("loc-b", "10 cours Gambetta"),
        _location("loc-c", "1 place Bellecour", postal="69002"),
        _location("loc-none"),
        _practitioner("martin", MARTIN, "Martin", "Élise"),
        _practitioner("blanc", BLANC[1:], "Blanc", "Hugo"),
        _practitioner("roux", ROUX[1:], "Roux", "Anne"),
        _practitioner("noel", NOEL, "Noël", "Jean"),
        _practitioner("faure", FAURE, "Faure", "Lucie"),
        _practitioner("petit", PETIT, "Petit", "Marc"),
        _practitioner("legrand", LEGRAND, "Legrand", "Paul", active=False),
        _role("role-martin-a", "martin", "loc-a", "org-finess"),
        _role("role-martin-b", "martin", "loc-b", "org-rang"),
        _role("role-blanc", "blanc", "loc-b", "org-siret"),
        _role("role-roux", "roux", "loc-c", None),
        _role("role-noel", "noel", "loc-c", "org-siret"),
        _role("role-faure-a", "faure", "loc-a", None),
        _role("role-faure-c", "faure", "loc-c", None),
        _role("role-petit", "petit", "loc-none", None),
        _role("role-legrand", "legrand", "loc-c", None),
        schedule("sch-martin-a", "Practitioner/martin", "PractitionerRole/role-martin-a"),
        schedule("sch-martin-b", "Practitioner/martin", "PractitionerRole/role-martin-b"),
        schedule("sch-blanc", "Practitioner/blanc", "PractitionerRole/role-blanc"),
        schedule("sch-roux", "Practitioner/roux", "PractitionerRole/role-roux"),
        schedule("sch-noel", "PractitionerRole/role-noel"),
        schedule("sch-faure", "Practitioner/faure", "Location/loc-c"),
        schedule("sch-petit", "Practitioner/petit", "PractitionerRole/role-petit"),
        schedule("sch-legrand", "Practitioner/legrand", "PractitionerRole/role-legrand"),
        # Inside the window (10 March 2030, 09:00 Paris = 08:00 UTC, to 13 March 09:00).
        sas_slot("m-a-public", "sch-martin-a", "2030-03-10T09:00:00+01:00",
                 "2030-03-10T09:20:00+01:00", "PUBLIC"),
        sas_slot("m-a-pro-snp", "sch-martin-a", "2030-03-11T08:00:00Z",
                 "2030-03-11T08:20:00Z", "PRO", "SNP"),
        sas_slot("m-a-mixed", "sch-martin-a", "2030-03-11T10:00:00+01:00",
                 "2030-03-11T10:20:00+01:00", "PUBLIC", "PATIENT"),
        sas_slot("m-b-cpts", "sch-martin-b", "2030-03-12T14:00:00+01:00",
                 "2030-03-12T14:30:00+01:00", "CPTS",
                 serviceType=[{"coding": [{"system": ACT, "code": "HH"}]},
                              {"coding": [{"system": ACT, "code": "EMER"}]},
                              {"text": "Visite de contrôle"}],
                 specialty=[{"text": "Soins palliatifs"},
                            {"coding": [{"system": "urn:example:local", "code": "X",
                                         "display": "Gériatrie"}]}],
                 appointmentType={"coding": [{"system": V2_0276, "code": "WALKIN"}]}),
        # Never shown to SAS.
        sas_slot("m-a-patient", "sch-martin-a", "2030-03-10T11:00:00+01:00",
                 "2030-03-10T11:20:00+01:00", "PATIENT"),
        sas_slot("m-a-busy", "sch-martin-a", "2030-03-10T12:00:00+01:00",
                 "2030-03-10T12:20:00+01:00", "PUBLIC", status="busy"),
        sas_slot("m-a-off", "sch-martin-a", "2030-03-10T13:00:00+01:00",
                 "2030-03-10T18:00:00+01:00", status="busy-unavailable"),
        sas_slot("m-a-unlabelled", "sch-martin-a", "2030-03-10T14:00:00+01:00",
                 "2030-03-10T14:20:00+01:00"),
        sas_slot("m-a-before", "sch-martin-a", "2030-03-10T08:40:00+01:00",
                 "2030-03-10T09:00:00+01:00", "PUBLIC"),
        sas_slot("m-a-after", "sch-martin-a", "2030-03-13T09:00:01+01:00",
                 "2030-03-13T09:20:00+01:00", "PUBLIC"),
        sas_slot("blanc-1", "sch-blanc", "2030-03-10T15:00:00+01:00",
                 "2030-03-10T15:15:00+01:00", "PUBLIC"),
        sas_slot("roux-1", "sch-roux", "2030-03-10T16:00:00+01:00",
                 "2030-03-10T16:15:00+01:00", "PRO"),
        sas_slot("noel-1", "sch-noel", "2030-03-11T16:00:00+01:00",
                 "2030-03-11T16:15:00+01:00", "SNP"),
        sas_slot("faure-1", "sch-faure", "2030-03-11T17:00:00+01:00",
                 "2030-03-11T17:15:00+01:00", "PUBLIC"),
        sas_slot("petit-1", "sch-petit", "2030-03-11T17:00:00+01:00",
                 "2030-03-11T17:15:00+01:00", "PUBLIC"),
        sas_slot("legrand-1", "sch-legrand", "2030-03-11T17:00:00+01:00",
                 "2030-03-11T17:15:00+01:00", "PUBLIC"),
    ]
    return resources


def load(client: Any, resources: list[Resource]) -> None:
    response = client.post("/fhir", json=bundle(
        "transaction", *(entry("PUT", f"{r['resourceType']}/{r['id']}", r) for r in resources)))
    assert response.status_code == 200, body(response)


WINDOW = ("2030-03-10T09:00:00+01:00", "2030-03-13T09:00:00+01:00")


def sas_url(*identifiers: str, low: str | None = WINDOW[0], high: str | None = WINDOW[1],
            status: str | None = "free", system: str = IDNPS) -> str:
    ids = ",".join(f"{system}|{i}" if system else i for i in identifiers)
    parts = ["_include=Slot:schedule", "_include:iterate=Schedule:actor"]
    if low is not None:
        parts.append(f"start=ge{quote(low)}")
    if high is not None:
        parts.append(f"start=le{quote(high)}")
    parts.append(f"schedule.actor:Practitioner.identifier={quote(ids, safe=',')}")
    if status is not None:
        parts.append(f"status={status}")
    return "/fhir/Slot?" + "&".join(parts)
