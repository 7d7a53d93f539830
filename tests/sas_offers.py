"""Agendas of the CPTS and SOS Médecins offers, stored as agendas write them (plain FHIR),
and the requests SAS sends for them. Added to tests/sas_data.py's agenda; slots lie in the
same March 2030 window.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.factories import body
from tests.sas_data import ACT, IDNST, R314, V2_0276, WINDOW, sas_slot, sas_url, schedule

Resource = dict[str, Any]
FINESS = "http://finess.sante.gouv.fr"
SIRENE = "http://sirene.fr"
R5_SERVICE_TYPE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
R66 = ("https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/"
       "TRE-R66-CategorieEtablissement")
IG = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"

# -- CPTS ---------------------------------------------------------------------------------------

CPTS_A_FINESS = "1690048764"  # stored prefixed under the IDNST OID
CPTS_B_FINESS = "1690099990"  # stored unprefixed under the FINESS system


def share(*services: str) -> list[Resource]:
    """The serviceType concepts naming the CPTS offers a slot is shared with."""
    return [{"extension": [{"url": R5_SERVICE_TYPE,
                            "valueReference": {"reference": f"HealthcareService/{s}"}}],
             "coding": [{"system": R66, "code": "604"}]} for s in services]


def _cpts_slot(slot_id: str, start: str, end: str, *kinds: str,
               services: tuple[str, ...]) -> Resource:
    return sas_slot(slot_id, "sch-martin-a", start, end, *kinds,
                    serviceType=[{"coding": [{"system": ACT, "code": "AMB"}]},
                                 *share(*services), {"text": "Soins non programmés"}])


def cpts() -> list[Resource]:
    """Two CPTS; CPTS A offers two HealthcareServices, a third CPTS has only a SIRET, one
    offer is inactive. Dr Martin's first place shares slots with them."""
    return [
        {"resourceType": "Organization", "id": "cpts-a", "active": True,
         "name": "CPTS Lyon Nord", "identifier": [{"system": IDNST, "value": CPTS_A_FINESS}],
         "telecom": [{"system": "phone", "value": "04 78 00 00 01"},
                     {"system": "email", "value": "contact@cpts-lyon-nord.example"}]},
        {"resourceType": "Organization", "id": "cpts-b", "active": True,
         "name": "CPTS Lyon Sud", "identifier": [{"system": FINESS, "value": CPTS_B_FINESS[1:]}]},
        {"resourceType": "Organization", "id": "cpts-siret", "active": True,
         "name": "CPTS sans FINESS", "identifier": [{"system": IDNST, "value": "312345678900027"}]},
        {"resourceType": "HealthcareService", "id": "hs-a", "active": True,
         "name": "Soins non programmés", "providedBy": {"reference": "Organization/cpts-a"}},
        {"resourceType": "HealthcareService", "id": "hs-a2", "active": True,
         "name": "Téléconsultation", "providedBy": {"reference": "Organization/cpts-a"}},
        {"resourceType": "HealthcareService", "id": "hs-b", "active": True,
         "providedBy": {"reference": "Organization/cpts-b"}},
        {"resourceType": "HealthcareService", "id": "hs-siret", "active": True,
         "providedBy": {"reference": "Organization/cpts-siret"}},
        {"resourceType": "HealthcareService", "id": "hs-off", "active": False,
         "providedBy": {"reference": "Organization/cpts-b"}},
        _cpts_slot("c-one", "2030-03-10T10:00:00+01:00", "2030-03-10T10:20:00+01:00",
                   "PUBLIC", "CPTS", services=("hs-a",)),
        _cpts_slot("c-two", "2030-03-10T10:20:00+01:00", "2030-03-10T10:40:00+01:00",
                   "CPTS", services=("hs-a", "hs-b")),
        _cpts_slot("c-same-cpts", "2030-03-10T10:40:00+01:00", "2030-03-10T11:00:00+01:00",
                   "CPTS", services=("hs-a2", "hs-a")),
        _cpts_slot("c-unlabelled", "2030-03-10T11:20:00+01:00", "2030-03-10T11:40:00+01:00",
                   "PUBLIC", services=("hs-b",)),
        _cpts_slot("c-unpublished", "2030-03-10T11:40:00+01:00", "2030-03-10T12:00:00+01:00",
                   "CPTS", services=("hs-siret", "hs-off")),
    ]


CPTS_INCLUDES = ("&_include=Slot:service-type-reference"
                 "&_include:iterate=HealthcareService:organization")


def cpts_url(*identifiers: str, **kwargs: Any) -> str:
    return sas_url(*identifiers, **kwargs) + CPTS_INCLUDES


# -- SOS Médecins -------------------------------------------------------------------------------

RENNES = "334173748400020"  # stored prefixed under the IDNST OID (the guide's example)
LORIENT = "392080466300010"  # stored unprefixed under a SIRET system


def _place(lid: str, name: str, organization: str, line: str | None, postal: str,
           **extra: Any) -> Resource:
    place: Resource = {"resourceType": "Location", "id": lid, "status": "active", "name": name,
                       "managingOrganization": {"reference": f"Organization/{organization}"},
                       **extra}
    if line:
        place["address"] = {"line": [line], "city": "RENNES", "postalCode": postal}
    return place


def _sos_slot(slot_id: str, schedule_id: str, start: str, end: str, *kinds: str,
              **extra: Any) -> Resource:
    return {"resourceType": "Slot", "id": slot_id, "status": extra.pop("status", "free"),
            "schedule": {"reference": f"Schedule/{schedule_id}"}, "start": start, "end": end,
            "meta": {"security": [{"system": R314, "code": k} for k in kinds]},
            "serviceType": extra.pop("serviceType", [
                {"coding": [{"system": ACT, "code": "AMB"}]}]),
            "appointmentType": {"coding": [{"system": V2_0276, "code": "ROUTINE"}]}, **extra}


def sos() -> list[Resource]:
    """Two associations: Rennes (three places: two published, one without an address) and
    Lorient (one place), and a centre whose Organization has a FINESS only."""
    return [
        {"resourceType": "Organization", "id": "sos-rennes", "active": True,
         "name": "SOS Médecins de Rennes", "identifier": [{"system": IDNST, "value": RENNES}]},
        {"resourceType": "Organization", "id": "sos-lorient", "active": True,
         "name": "SOS Médecins Lorient", "identifier": [{"system": SIRENE, "value": LORIENT[1:]}],
         "telecom": [{"system": "phone", "value": "02 97 00 00 00"}]},
        {"resourceType": "Organization", "id": "centre-finess", "active": True,
         "name": "Centre de santé", "identifier": [{"system": IDNST, "value": "1350000001"}]},
        _place("pfg-nord", "Centre de consultation Rennes Nord", "sos-rennes",
               "320 avenue Général George Patton", "35700",
               identifier=[{"system": "https://editeur.example/pfg", "value": "1111111111"}],
               telecom=[{"system": "phone", "value": "02 99 24 67 89"}],
               hoursOfOperation=[{"daysOfWeek": ["tue", "wed"], "openingTime": "08:00:00",
                                  "closingTime": "19:00:00"}]),
        _place("pfg-cleunay", "Centre de consultation Rennes Cleunay", "sos-rennes",
               "106 rue Eugène Pottier", "35000"),
        _place("pfg-sans-adresse", "Centre sans adresse", "sos-rennes", None, "35000"),
        _place("pfg-lorient", "Centre de consultation Lorient", "sos-lorient",
               "12 impasse Royer Dubail", "56100"),
        _place("centre", "Centre de santé", "centre-finess", "1 rue de la Paix", "35000"),
        schedule("sch-nord", "Location/pfg-nord"),
        # The doctor on duty named beside the place: the place is still the Schedule's.
        schedule("sch-cleunay", "Practitioner/martin", "Location/pfg-cleunay"),
        schedule("sch-sans-adresse", "Location/pfg-sans-adresse"),
        schedule("sch-lorient", "Location/pfg-lorient"),
        schedule("sch-centre", "Location/centre"),
        _sos_slot("n-1", "sch-nord", "2030-03-10T09:00:00+01:00", "2030-03-10T09:30:00+01:00",
                  "PUBLIC", "SNP", serviceType=[
                      {"coding": [{"system": ACT, "code": "AMB"}]},
                      {"coding": [{"system": ACT, "code": "VR"},
                                  {"system": "urn:example:local", "code": "CONSULT"}]},
                      {"coding": [{"system": ACT, "code": "EMER"}]},
                      {"text": "Consultation"}]),
        _sos_slot("n-pro", "sch-nord", "2030-03-10T09:30:00+01:00",
                  "2030-03-10T10:00:00+01:00", "PRO"),
        _sos_slot("n-public-pro", "sch-nord", "2030-03-10T10:00:00+01:00",
                  "2030-03-10T10:30:00+01:00", "PUBLIC", "PRO"),
        _sos_slot("n-busy", "sch-nord", "2030-03-10T10:30:00+01:00",
                  "2030-03-10T11:00:00+01:00", "PUBLIC", status="busy"),
        _sos_slot("n-late", "sch-nord", "2030-03-14T10:30:00+01:00",
                  "2030-03-14T11:00:00+01:00", "PUBLIC"),
        _sos_slot("c-1", "sch-cleunay", "2030-03-11T11:00:00+01:00",
                  "2030-03-11T11:30:00+01:00", "PUBLIC"),
        _sos_slot("sa-1", "sch-sans-adresse", "2030-03-11T11:00:00+01:00",
                  "2030-03-11T11:30:00+01:00", "PUBLIC"),
        _sos_slot("l-1", "sch-lorient", "2030-03-10T14:20:00+01:00",
                  "2030-03-10T14:40:00+01:00", "PUBLIC", serviceType=[
                      {"coding": [{"system": ACT, "code": "VR"}]}]),
        _sos_slot("l-2", "sch-lorient", "2030-03-10T14:40:00+01:00",
                  "2030-03-10T15:00:00+01:00", "PUBLIC"),
        _sos_slot("centre-1", "sch-centre", "2030-03-10T14:40:00+01:00",
                  "2030-03-10T15:00:00+01:00", "PUBLIC"),
    ]


def sos_url(*sirets: str, low: str | None = WINDOW[0], high: str | None = WINDOW[1],
            status: str | None = "free", system: str = IDNST) -> str:
    """The SOS question as the guide writes it (SIRETs prefixed, under the IDNST OID)."""
    ids = ",".join(f"{system}|{s}" if system else s for s in sirets)
    parts = ["_revinclude=Slot:schedule", "_include=Schedule:actor:Location",
             "_include:iterate=Location:organization"]
    if low is not None:
        parts.append(f"_has:Slot:schedule:start=ge{quote(low)}")
    if high is not None:
        parts.append(f"_has:Slot:schedule:start=le{quote(high)}")
    if status is not None:
        parts.append(f"_has:Slot:schedule:status={status}")
    if sirets:
        parts.append(f"actor:Location.organization.identifier={quote(ids, safe=',')}")
    return "/fhir/Schedule?" + "&".join(parts)



# -- reading answers, writing changes -----------------------------------------------------------

def slots(answer: Resource) -> dict[str, Resource]:
    """The matches of an answer (its Slots), by id, in answer order."""
    return {e["resource"]["id"]: e["resource"] for e in answer.get("entry", [])
            if e["search"]["mode"] == "match"}


def of_type(answer: Resource, kind: str) -> dict[str, Resource]:
    return {e["resource"]["id"]: e["resource"] for e in answer.get("entry", [])
            if e["resource"]["resourceType"] == kind}


def put(client: Any, resource: Resource) -> None:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), body(response)


def stored(client: Any, kind: str, resource_id: str) -> Resource:
    found: Resource = body(client.get(f"/fhir/{kind}/{resource_id}"))
    return found
