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


# Profile URL → a valid instance of it.
BY_PROFILE: dict[str, Callable[[], Json]] = {
    SAS + "BundleAgregateur": bundle, SAS + "FrSlotAgregateur": slot,
    SAS + "FrScheduleAgregateur": schedule, SAS + "FrPractitionerAgregateur": practitioner,
    SAS + "FrPractitionerRoleExerciceAgregateur": role, SAS + "FrLocationAgregateur": location,
    REGUL: regulator, SAS + "FrAppointmentSAS": appointment,
}
