"""Small valid instances of each SAS profile in profiles/ (new dicts on every call).

Used by the profile validator's tests and by the $validate tests; postman/ holds the same
examples as the bodies of its $validate requests.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]

SAS = "http://sas.fr/fhir/StructureDefinition/"
REGUL = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OPERATOR = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
SLOT_TYPE = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"


def slot() -> Json:
    return {
        "resourceType": "Slot", "id": "s1",
        "meta": {"profile": [SAS + "FrSlotAgregateur"],
                 "security": [{"system": SLOT_TYPE, "code": "PUBLIC"},
                              {"system": SLOT_TYPE, "code": "SNP"}]},
        "serviceType": [{"coding": [{"system": ACT_CODE, "code": "AMB"}]},
                        {"text": "Consultation de suivi"}],
        "appointmentType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276",
                                        "code": "ROUTINE"}]},
        "schedule": {"reference": "Schedule/sc1"},
        "status": "free",
        "start": "2024-05-02T09:00:00.000+02:00", "end": "2024-05-02T09:20:00.000+02:00",
        "comment": "https://agenda.example/rdv/p1",
    }


def schedule() -> Json:
    return {"resourceType": "Schedule", "id": "sc1",
            "meta": {"profile": [SAS + "FrScheduleAgregateur"]},
            "actor": [{"reference": "Practitioner/p1"}, {"reference": "PractitionerRole/r1"}]}


def practitioner() -> Json:
    return {
        "resourceType": "Practitioner", "id": "p1",
        "meta": {"profile": [SAS + "FrPractitionerAgregateur"]},
        "identifier": [{"type": {"coding": [{"system": TYPE_SYSTEM, "code": "IDNPS"}]},
                        "system": IDNPS_SYSTEM, "value": "810000000001"}],
        "name": [{"family": "MARTIN", "given": ["Claire"]}],
    }


def location() -> Json:
    """The practice place a PractitionerRole contains."""
    return {
        "resourceType": "Location", "id": "loc1",
        "meta": {"profile": [SAS + "FrLocationAgregateur"]},
        "identifier": [{"type": {"coding": [{
            "system": "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type",
            "code": "INTRN"}]}, "system": "urn:oid:1.2.3.4", "value": "loc-1"}],
        "address": {"line": ["3 place du Marché"], "city": "NANTES", "postalCode": "44000"},
    }


def role() -> Json:
    return {
        "resourceType": "PractitionerRole", "id": "r1",
        "meta": {"profile": [SAS + "FrPractitionerRoleExerciceAgregateur"]},
        "contained": [location()],
        "practitioner": {"reference": "Practitioner/p1"},
        "organization": {"identifier": {
            "type": {"coding": [{"system": TYPE_SYSTEM, "code": "IDNST"}]},
            "system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1440000001"}},
        "location": [{"reference": "#loc1"}],
    }


def bundle() -> Json:
    """A small valid SAS answer: entry 0 Slot, 1 Schedule, 2 Practitioner, 3 PractitionerRole."""
    resources = [slot(), schedule(), practitioner(), role()]
    return {
        "resourceType": "Bundle", "id": "b1",
        "meta": {"profile": [SAS + "BundleAgregateur"]},
        "type": "searchset", "total": 1,
        "entry": [{"fullUrl": f"https://agenda.example/fhir/{r['resourceType']}/{r['id']}",
                   "resource": r, "search": {"mode": "match" if i == 0 else "include"}}
                  for i, r in enumerate(resources)],
    }


def regulator() -> Json:
    return {
        "resourceType": "Practitioner", "id": "reg1", "meta": {"profile": [REGUL]},
        "identifier": [{"type": {"coding": [{"system": TYPE_SYSTEM, "code": "INTRN"}]},
                        "system": "urn:oid:1.2.250.1.213.3.6",
                        "value": "6f1f8a4e-1b7e-4c1e-9a8f-0c6b1f1d2a3b"}],
        "active": True,
        "name": [{"family": "DURAND", "given": ["Paul"]}],
        "telecom": [{"system": "email", "value": "paul.durand@example.org"}],
    }


def appointment() -> Json:
    national = {"type": {"coding": [{"system": TYPE_SYSTEM, "code": "IDNPS"}]},
                "system": IDNPS_SYSTEM, "value": "810000000001"}
    return {
        "resourceType": "Appointment", "id": "a1",
        "meta": {"profile": [SAS + "FrAppointmentSAS"]},
        "extension": [{"url": OPERATOR, "valueReference": {"identifier": copy.deepcopy(national)}}],
        "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": "0d6c8a52-2f8e-4b8e-a7a4-3d1c"}],
        "status": "booked",
        "start": "2024-05-02T09:00:00+02:00", "end": "2024-05-02T09:20:00+02:00",
        "participant": [{"actor": {"identifier": national}, "status": "accepted"}],
    }


# -- the CPTS and SOS Médecins offers ---------------------------------------------------------

IG = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
R5_SERVICE_TYPE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
R66 = ("https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/"
       "TRE-R66-CategorieEtablissement")
LOCATION_TYPES = "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type"
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"


def cpts_slot() -> Json:
    """A slot shared with two CPTS (one serviceType concept per CPTS)."""
    shared = slot()
    shared["meta"] = {"profile": [IG + "sas-cpts-slot-aggregator"],
                      "security": [{"system": SLOT_TYPE, "code": "PUBLIC"},
                                   {"system": SLOT_TYPE, "code": "CPTS"}]}
    shared["serviceType"] += [{
        "extension": [{"url": R5_SERVICE_TYPE,
                       "valueReference": {"reference": f"HealthcareService/{hs}"}}],
        "coding": [{"system": R66, "code": "604"}]} for hs in ("hs1", "hs2")]
    return shared


def _structure(value: str) -> Json:
    return {"type": {"coding": [{"system": LOCATION_TYPES, "code": "IDNST"}]},
            "system": IDNST_SYSTEM, "value": value}


def cpts_organization() -> Json:
    return {"resourceType": "Organization", "id": "cpts1",
            "meta": {"profile": [IG + "sas-cpts-organization-aggregator"]},
            "identifier": [_structure("1440000002")], "name": "CPTS Nantes Nord",
            "telecom": [{"system": "phone", "value": "+33240000000"}]}


def cpts_service() -> Json:
    return {"resourceType": "HealthcareService", "id": "hs1",
            "meta": {"profile": [IG + "sas-cpts-healthcareservice-aggregator"]},
            "providedBy": {"reference": "Organization/cpts1"}}


def _searchset(profile: str, resources: list[Json], total: int) -> Json:
    return {"resourceType": "Bundle", "id": "b1", "meta": {"profile": [profile]},
            "type": "searchset", "total": total,
            "link": [{"relation": "self", "url": "https://agenda.example/fhir/Slot?status=free"}],
            "entry": [{"fullUrl": f"https://agenda.example/fhir/{r['resourceType']}/{r['id']}",
                       "resource": r, "search": {"mode": "match" if i < total else "include"}}
                      for i, r in enumerate(resources)]}


def cpts_bundle() -> Json:
    """The CPTS answer: the slot, its place, and one HealthcareService and Organization per
    CPTS; entry 0 Slot, 1 Schedule, 2 Practitioner, 3 PractitionerRole, 4-5 HealthcareService,
    6-7 Organization."""
    second_service = {**cpts_service(), "id": "hs2",
                      "providedBy": {"reference": "Organization/cpts2"}}
    second_cpts = {**cpts_organization(), "id": "cpts2",
                   "identifier": [_structure("1440000003")]}
    return _searchset(IG + "sas-cpts-bundle-aggregator",
                      [cpts_slot(), schedule(), practitioner(), role(), cpts_service(),
                       second_service, cpts_organization(), second_cpts], 1)


def sos_organization() -> Json:
    return {"resourceType": "Organization", "id": "sos1",
            "meta": {"profile": [IG + "sas-sos-organization-aggregator"]},
            "identifier": [_structure("333333333300011")], "name": "SOS Médecins Nantes"}


def sos_location() -> Json:
    return {"resourceType": "Location", "id": "pfg1",
            "meta": {"profile": [IG + "sas-sos-location-aggregator"]},
            "identifier": [{"type": {"coding": [{"system": LOCATION_TYPES, "code": "INTRN"}]},
                            "system": "urn:oid:1.2.3.4", "value": "pfg-1"}],
            "name": "Point fixe de garde Nantes centre",
            "telecom": [{"system": "phone", "value": "+33240000001"}],
            "address": {"line": ["1 rue de Strasbourg"], "city": "NANTES", "postalCode": "44000"},
            "managingOrganization": {"reference": "Organization/sos1"}}


def sos_schedule() -> Json:
    return {"resourceType": "Schedule", "id": "sc-pfg1",
            "meta": {"profile": [IG + "sas-sos-schedule-aggregator"]},
            "actor": [{"reference": "Location/pfg1"}]}


def sos_slot() -> Json:
    free = slot()
    free["meta"]["profile"] = [IG + "sas-sos-slot-aggregator"]
    free["schedule"] = {"reference": "Schedule/sc-pfg1"}
    return free


def sos_bundle() -> Json:
    """The SOS answer: entry 0 Slot, 1 Schedule, 2 Location, 3 Organization."""
    return _searchset(IG + "sas-sos-bundle-aggregator",
                      [sos_slot(), sos_schedule(), sos_location(), sos_organization()], 1)


def sos_appointment() -> Json:
    booked = appointment()
    booked["meta"]["profile"] = [IG + "sas-sos-appointment"]
    booked["participant"][0]["status"] = "needs-action"
    booked["status"] = "pending"
    return booked


# Profile URL → a valid instance of it.
BY_PROFILE: dict[str, Callable[[], Json]] = {
    SAS + "BundleAgregateur": bundle, SAS + "FrSlotAgregateur": slot,
    SAS + "FrScheduleAgregateur": schedule, SAS + "FrPractitionerAgregateur": practitioner,
    SAS + "FrPractitionerRoleExerciceAgregateur": role, SAS + "FrLocationAgregateur": location,
    REGUL: regulator, SAS + "FrAppointmentSAS": appointment,
    IG + "sas-cpts-bundle-aggregator": cpts_bundle, IG + "sas-cpts-slot-aggregator": cpts_slot,
    IG + "sas-cpts-healthcareservice-aggregator": cpts_service,
    IG + "sas-cpts-organization-aggregator": cpts_organization,
    IG + "sas-sos-bundle-aggregator": sos_bundle, IG + "sas-sos-slot-aggregator": sos_slot,
    IG + "sas-sos-schedule-aggregator": sos_schedule,
    IG + "sas-sos-location-aggregator": sos_location,
    IG + "sas-sos-organization-aggregator": sos_organization,
    IG + "sas-sos-appointment": sos_appointment,
}
