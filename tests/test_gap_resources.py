"""GAP flows 1a/1b/1c (agenda resources: create, update, delete) and 2a/2b/2c (agendas:
Schedule create, update, delete), and the GAP roles of the CapabilityStatement, driven
through two real FHIR client libraries against gunicorn, on SQLite and PostgreSQL:
`fhirclient` (SMART on FHIR, synchronous, parses every answer with its R4 models) and
`fhirpy` (asyncio, run with `asyncio.run` inside ordinary tests).

Spec: gap-ig/pages/flux-gestion-ressources.md, flux-gestion-agenda.md,
gap-ig/fsh/CapabilityStatement/*.fsh. The builders below are the GAP test data set, shared
with tests/test_gap_queries.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.fhirabstractresource import FHIRAbstractResource
from fhirclient.models.healthcareservice import HealthcareService
from fhirclient.models.location import Location
from fhirclient.models.organization import Organization
from fhirclient.models.practitioner import Practitioner
from fhirclient.models.practitionerrole import PractitionerRole
from fhirclient.models.schedule import Schedule
from fhirclient.server import FHIRNotFoundException, FHIRServer
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound
from sqlalchemy import Engine

from app.auth.principal import CLIENT, Principal, sas_principal
from app.auth.scopes import Scopes
from tests.support.principals import production_app

Resource = dict[str, Any]
T = TypeVar("T")

GAP = "https://interop.esante.gouv.fr/ig/fhir/gap"
AGENDA_MANAGER = f"{GAP}/CapabilityStatement/GAP-GestionnaireAgenda"
RESOURCE_MANAGER = f"{GAP}/CapabilityStatement/GAP-GestionnaireRessources"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
IDNST = "urn:oid:1.2.250.1.71.4.2.2"
INS = "urn:oid:1.2.250.1.213.1.4.8"
TRE_R38 = ("https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/"
           "TRE-R38-SpecialiteOrdinale")
TRE_G15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
DEVICE_IDS = "https://chu-villejuif.example/fhir/equipement"
SERVICE_IDS = "https://chu-villejuif.example/fhir/unite"
LOCATION_IDS = "https://chu-villejuif.example/fhir/lieu"
ROLE_IDS = "https://chu-villejuif.example/fhir/situation"
CONTACT_IDS = "https://chu-villejuif.example/fhir/contact"
APPOINTMENT_IDS = "https://chu-villejuif.example/fhir/rdv"
SNOMED = "http://snomed.info/sct"
SERVICE_TYPES = "https://chu-villejuif.example/fhir/type-prestation"
FINESS = "1940000017"
RPPS_DUPONT = "810100000012"
RPPS_LEROY = "810100000029"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """fhirpy is asynchronous: each flow runs in an event loop of its own."""
    return asyncio.run(coroutine)


def smart(base_url: str) -> FHIRServer:
    """fhirclient's server object, as an application gets it from its SMART client."""
    server: FHIRServer = smart_client.FHIRClient(
        settings={"app_id": "gap-tests", "api_base": base_url}).server
    return server


def fhirpy(base_url: str, **headers: str) -> AsyncFHIRClient:
    return AsyncFHIRClient(base_url, extra_headers=headers or None)


def load(base_url: str, *resources: Resource) -> dict[str, Any]:
    """A transaction Bundle of PUTs (client-chosen ids), posted with fhirclient."""
    entries = [{"resource": r, "request": {"method": "PUT",
                                           "url": f"{r['resourceType']}/{r['id']}"}}
               for r in resources]
    response = smart(base_url).post_json("", {"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries})
    answer = response.json()
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses
    return dict(answer)


def new(resource: Resource) -> Resource:
    """The body a client POSTs: no id (the server assigns it), no resourceType for fhirpy's
    keyword arguments."""
    return {k: v for k, v in resource.items() if k not in {"id", "resourceType"}}


def issue_text(outcome: Resource) -> str:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return " ".join(str(i.get("diagnostics", "")) for i in outcome["issue"])


# -- the GAP test data set (a hospital in Villejuif, its equipment and professionals) ------

def organization(org_id: str = "chu-villejuif", name: str = "Centre hospitalier de Villejuif",
                 finess: str = FINESS) -> Resource:
    return {"resourceType": "Organization", "id": org_id, "active": True, "name": name,
            "identifier": [{"system": IDNST, "value": f"1{finess}"}],
            "address": [{"line": ["12 avenue Paul Vaillant-Couturier"], "city": "Villejuif",
                         "postalCode": "94800", "country": "FR"}]}


def location(loc_id: str = "box-3", name: str = "Box de consultation 3",
             city: str = "Paris", code: str = "BOX-3") -> Resource:
    return {"resourceType": "Location", "id": loc_id, "status": "active", "name": name,
            "identifier": [{"system": LOCATION_IDS, "value": code}],
            "address": {"line": ["40 rue de Vaugirard"], "city": city, "postalCode": "75015",
                        "country": "FR"},
            "managingOrganization": {"reference": "Organization/chu-villejuif"}}


def practitioner(pr_id: str = "dupont", rpps: str = RPPS_DUPONT, family: str = "Dupont",
                 given: str = "Hélène") -> Resource:
    return {"resourceType": "Practitioner", "id": pr_id, "active": True,
            "identifier": [{"system": IDNPS, "value": rpps,
                            "type": {"coding": [{
                                "system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203",
                                "code": "IDNPS"}]}}],
            "name": [{"family": family, "given": [given], "prefix": ["Dr"]}],
            "telecom": [{"system": "email", "value": f"{pr_id}@chu-villejuif.example"}]}


def practitioner_role(role_id: str = "dupont-mg", pr_id: str = "dupont",
                      specialty: str = "SM54", loc_id: str = "box-3",
                      phone: str = "+33145000001") -> Resource:
    return {"resourceType": "PractitionerRole", "id": role_id, "active": True,
            "identifier": [{"system": ROLE_IDS, "value": role_id.upper()}],
            "practitioner": {"reference": f"Practitioner/{pr_id}"},
            "organization": {"reference": "Organization/chu-villejuif"},
            "location": [{"reference": f"Location/{loc_id}"}],
            "code": [{"coding": [{"system": TRE_G15, "code": "10", "display": "Médecin"}]}],
            "specialty": [{"coding": [{"system": TRE_R38, "code": specialty}]}],
            "telecom": [{"system": "phone", "value": phone}]}


def healthcare_service(service_id: str = "echographie",
                       name: str = "Unité d'échographie") -> Resource:
    return {"resourceType": "HealthcareService", "id": service_id, "active": True,
            "name": name, "identifier": [{"system": SERVICE_IDS, "value": "UF-4512"}],
            "providedBy": {"reference": "Organization/chu-villejuif"},
            "type": [{"coding": [{"system": SERVICE_TYPES, "code": "ECHO",
                                  "display": "Échographie"}]}]}


def device(device_id: str = "echographe-1", serial: str = "ECHO-0001",
           name: str = "Échographe Voluson E10", model: str = "E10") -> Resource:
    return {"resourceType": "Device", "id": device_id, "status": "active",
            "identifier": [{"system": DEVICE_IDS, "value": serial}],
            "deviceName": [{"name": name, "type": "user-friendly-name"}],
            "modelNumber": model, "manufacturer": "GE Healthcare",
            "type": {"coding": [{"system": SNOMED, "code": "462499003",
                                 "display": "Ultrasound imaging system"}]},
            "owner": {"reference": "Organization/chu-villejuif"},
            "location": {"reference": "Location/box-3"}}


def patient(patient_id: str = "martin", ins: str = "2840575123456",
            family: str = "Martin", given: str = "Lucie") -> Resource:
    return {"resourceType": "Patient", "id": patient_id,
            "identifier": [{"system": INS, "value": ins}],
            "name": [{"family": family, "given": [given]}], "gender": "female",
            "birthDate": "1984-05-07"}


def related_person(rp_id: str = "tuteur-martin", patient_id: str = "martin",
                   code: str = "CT-0001", family: str = "Martin",
                   given: str = "Étienne") -> Resource:
    return {"resourceType": "RelatedPerson", "id": rp_id, "active": True,
            "patient": {"reference": f"Patient/{patient_id}"},
            "identifier": [{"system": CONTACT_IDS, "value": code}],
            "relationship": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                "code": "GUARD", "display": "guardian"}]}],
            "name": [{"family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": "+33612345678"},
                        {"system": "email", "value": "etienne.martin@courriel.example"}],
            "gender": "male", "birthDate": "1958-11-20",
            "address": [{"line": ["3 rue des Lilas"], "city": "Créteil",
                         "postalCode": "94000"}]}


def schedule(schedule_id: str, *actors: str) -> Resource:
    return {"resourceType": "Schedule", "id": schedule_id, "active": True,
            "actor": [{"reference": a} for a in actors],
            "planningHorizon": {"start": "2031-01-01T00:00:00+01:00",
                                "end": "2031-03-31T23:59:59+02:00"}}


def slot(slot_id: str, schedule_id: str, start: str, end: str,
         status: str = "free") -> Resource:
    return {"resourceType": "Slot", "id": slot_id, "status": status,
            "schedule": {"reference": f"Schedule/{schedule_id}"},
            "identifier": [{"system": "https://chu-villejuif.example/fhir/creneau",
                            "value": slot_id.upper()}],
            "start": start, "end": end}


def directory() -> list[Resource]:
    """Every GAP agenda resource type once (the leroy ones elsewhere)."""
    return [organization(), location(), practitioner(), practitioner_role(),
            healthcare_service(), device(), patient(), related_person()]


# -- CapabilityStatement: the GAP roles -------------------------------------------------------

def test_capability_statement_declares_the_gap_roles(live_server: str) -> None:
    server = smart(live_server)
    # fhirclient parses the statement with its R4 models (an unknown element would raise).
    server.get_capability()
    statement: CapabilityStatement = server.capabilityStatement
    assert statement.kind == "instance"
    assert set(statement.instantiates) == {AGENDA_MANAGER, RESOURCE_MANAGER}
    rest = statement.rest[0]
    resources = {r.type: r for r in rest.resource}
    for kind in ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Location",
                 "HealthcareService", "Organization", "Device", "Schedule", "Appointment"):
        codes = {i.code for i in resources[kind].interaction}
        assert {"create", "update", "delete", "read", "search-type"} <= codes, kind
    # What a role asks and the server does not do is said, not hidden.
    if "patch" not in {i.code for i in resources["Schedule"].interaction}:
        assert "GAP-GestionnaireAgenda: patch of Schedule is not supported" in rest.documentation
    # The GAP search parameters of flows 4a and 4b, with the guide's definitions.
    appointment = {p.name: p for p in resources["Appointment"].searchParam}
    for name in ("created", "description", "priority"):
        assert appointment[name].definition == (
            f"{GAP}/SearchParameter/GAP-Appointment-{name}"), name
    assert appointment["start"].definition == (
        f"{GAP}/SearchParameter/GAP-Appointment-earliestStart")
    assert f"{GAP}/SearchParameter/GAP-Appointment-latestStart" in (
        appointment["start"].documentation)
    assert appointment["supporting-info"].type == "reference"
    assert appointment["priority"].type == "token"
    slot_params = {p.name: p for p in resources["Slot"].searchParam}
    assert slot_params["start"].definition == "http://hl7.org/fhir/SearchParameter/Slot-start"
    for bound in ("earliestStart", "latestStart"):
        assert f"{GAP}/SearchParameter/GAP-Slot-{bound}" in slot_params["start"].documentation
    device_params = {p.name for p in resources["Device"].searchParam}
    assert {"identifier", "type", "device-name", "model", "status", "location",
            "organization", "patient"} <= device_params
    related = {p.name: p for p in resources["RelatedPerson"].searchParam}
    assert {"identifier", "name", "family", "given", "address", "telecom", "phone", "email",
            "patient", "active", "gender", "birthdate"} <= set(related)
    assert related["phone"].definition == "http://hl7.org/fhir/SearchParameter/individual-phone"
    assert "Schedule:actor" in resources["Schedule"].searchInclude
    assert "Schedule:actor" in resources["Device"].searchRevInclude
    assert "Appointment:actor" in resources["RelatedPerson"].searchRevInclude


# -- flows 1a/1b/1c with fhirclient -----------------------------------------------------------

def _search_ids(server: FHIRServer, model: type[FHIRAbstractResource],
                struct: dict[str, Any]) -> set[str]:
    bundle: Bundle = next(model.where(struct).perform_iter(server))
    return {e.resource.id for e in bundle.entry or [] if e.search.mode == "match"}


def test_flow_1_directory_resources_with_fhirclient(live_server: str) -> None:
    server = smart(live_server)
    # 1a: POST of each agenda resource (fhirclient models → JSON → server → back).
    org = Organization(new(organization()))
    created = org.create(server)
    org_id = created["id"]
    assert created["meta"]["versionId"] == "1"
    place = Location(new(location()) | {
        "managingOrganization": {"reference": f"Organization/{org_id}"}})
    place_id = place.create(server)["id"]
    doctor = Practitioner(new(practitioner()))
    doctor_id = doctor.create(server)["id"]
    role = PractitionerRole(new(practitioner_role()) | {
        "practitioner": {"reference": f"Practitioner/{doctor_id}"},
        "organization": {"reference": f"Organization/{org_id}"},
        "location": [{"reference": f"Location/{place_id}"}]})
    role_id = role.create(server)["id"]
    service = HealthcareService(new(healthcare_service()) | {
        "providedBy": {"reference": f"Organization/{org_id}"}})
    service_id = service.create(server)["id"]

    read_back = Practitioner.read(doctor_id, server)
    assert read_back.identifier[0].value == RPPS_DUPONT
    assert read_back.name[0].given == ["Hélène"]
    assert _search_ids(server, Practitioner, {"identifier": f"{IDNPS}|{RPPS_DUPONT}"}) == {
        doctor_id}
    assert _search_ids(server, PractitionerRole, {
        "specialty": f"{TRE_R38}|SM54", "location.address-city": "paris"}) == {role_id}
    assert _search_ids(server, HealthcareService, {
        "organization.identifier": f"{IDNST}|1{FINESS}"}) == {service_id}

    # 1b: PUT of the changed resource; the new version is what searches see.
    read_back.name[0].family = "Dupont-Lambert"
    updated = read_back.update(server)
    assert updated["meta"]["versionId"] == "2"
    assert _search_ids(server, Practitioner, {"family": "dupont-lambert"}) == {doctor_id}
    assert _search_ids(server, Practitioner, {"family": {"$exact": "Dupont"}}) == set()
    role_now = PractitionerRole.read(role_id, server)
    role_now.specialty[0].coding[0].code = "SM26"
    assert role_now.update(server)["meta"]["versionId"] == "2"
    assert _search_ids(server, PractitionerRole, {"specialty": f"{TRE_R38}|SM54"}) == set()
    assert _search_ids(server, PractitionerRole, {"specialty": f"{TRE_R38}|SM26"}) == {role_id}

    # 1c: DELETE answers an OperationOutcome; the resource is then gone (410).
    for model, resource_id in ((HealthcareService, service_id), (PractitionerRole, role_id),
                               (Practitioner, doctor_id), (Location, place_id)):
        answer = model.read(resource_id, server).delete(server)
        assert issue_text(answer) == f"Deleted {model.resource_type}/{resource_id}"
        with pytest.raises(requests.HTTPError) as gone:
            model.read(resource_id, server)
        assert gone.value.response.status_code == 410
        assert issue_text(gone.value.response.json()) == (
            f"{model.resource_type}/{resource_id} was deleted")
    assert _search_ids(server, Practitioner, {"identifier": f"{IDNPS}|{RPPS_DUPONT}"}) == set()
    # A delete of what never existed: 404 with an OperationOutcome saying so.
    with pytest.raises(FHIRNotFoundException) as unknown:
        server.delete_json("Organization/no-such-hospital")
    assert unknown.value.response.status_code == 404
    assert issue_text(unknown.value.response.json()) == (
        "Organization/no-such-hospital is not known")


# -- flows 1a/1b/1c with fhirpy: the GAP actors Device and RelatedPerson -----------------------

def test_flow_1_device_with_fhirpy(live_server: str) -> None:
    load(live_server, organization(), location())

    async def flow() -> None:
        api = fhirpy(live_server)
        equipment = api.resource("Device", **new(device()))
        await equipment.create()
        assert equipment.id and equipment["meta"]["versionId"] == "1"
        devices = api.resources("Device")
        for criteria in ({"identifier": f"{DEVICE_IDS}|ECHO-0001"},
                         {"device_name": "echographe"},  # accents and case ignored
                         {"device_name__contains": "voluson"},
                         {"model": "E10"}, {"manufacturer": "ge health"},
                         {"type": f"{SNOMED}|462499003"}, {"status": "active"},
                         {"organization": "Organization/chu-villejuif"},
                         {"location__Location__name": "box de consultation"},
                         {"organization__Organization__identifier": f"{IDNST}|1{FINESS}"}):
            found = await devices.search(**criteria).fetch_all()
            assert [d.id for d in found] == [equipment.id], criteria
        assert await devices.search(model="E8").fetch_all() == []

        # 1b: the device is renamed and retired.
        equipment["deviceName"] = [{"name": "Échographe salle 2", "type": "user-friendly-name"}]
        equipment["status"] = "inactive"
        await equipment.save()
        assert equipment["meta"]["versionId"] == "2"
        assert [d.id for d in await devices.search(device_name="echographe salle").fetch_all()
                ] == [equipment.id]
        assert await devices.search(status="active").fetch_all() == []

        # 1c
        outcome = await equipment.delete()
        assert issue_text(outcome) == f"Deleted Device/{equipment.id}"
        with pytest.raises(ResourceNotFound) as gone:
            await api.reference("Device", equipment.id).to_resource()
        assert "was deleted" in str(gone.value)
        with pytest.raises(ResourceNotFound) as unknown:
            await api.resource("Device", id="no-such-device").delete()
        assert "Device/no-such-device is not known" in str(unknown.value)

    run(flow())


def test_flow_1_related_person_with_fhirpy(live_server: str) -> None:
    load(live_server, patient(), patient("bernard", "1750112345678", "Bernard", "Paul"))

    async def flow() -> None:
        api = fhirpy(live_server)
        contact = api.resource("RelatedPerson", **new(related_person()))
        await contact.create()
        people = api.resources("RelatedPerson")
        for criteria in ({"identifier": f"{CONTACT_IDS}|CT-0001"}, {"name": "etienne"},
                         {"family": "martin"}, {"given": "Étienne"},
                         {"address": "3 rue des lilas"}, {"address__contains": "lilas"},
                         {"address": "creteil"}, {"address_city": "creteil"},
                         {"address_postalcode": "94000"},
                         {"telecom": "+33612345678"}, {"phone": "+33612345678"},
                         {"email": "etienne.martin@courriel.example"},
                         {"patient": "Patient/martin"},
                         {"patient__Patient__identifier": f"{INS}|2840575123456"},
                         {"active": True}, {"gender": "male"}, {"birthdate": "1958-11-20"},
                         {"birthdate__lt": "1960"}, {"relationship": "GUARD"}):
            found = await people.search(**criteria).fetch_all()
            assert [p.id for p in found] == [contact.id], criteria
        # A phone number is not an email, and the other way round.
        assert await people.search(email="+33612345678").fetch_all() == []
        assert await people.search(phone="etienne.martin@courriel.example").fetch_all() == []

        # 1b: the guardian now looks after another patient.
        contact["patient"] = {"reference": "Patient/bernard"}
        await contact.save()
        assert contact["meta"]["versionId"] == "2"
        assert await people.search(patient="Patient/martin").fetch_all() == []
        bundle = await people.search(patient="Patient/bernard").include(
            "RelatedPerson", "patient").fetch_raw()
        modes = {(e.resource.resourceType, e.resource.id): e.search.mode for e in bundle.entry}
        assert modes == {("RelatedPerson", contact.id): "match",
                         ("Patient", "bernard"): "include"}

        # Flow 1a refused: a RelatedPerson must name a patient held here.
        orphan = api.resource("RelatedPerson", **(new(related_person()) | {
            "patient": {"reference": "Patient/nobody"}}))
        with pytest.raises(OperationOutcome) as refused:
            await orphan.create()
        assert issue_text(refused.value.resource) == (
            "RelatedPerson.patient.reference: Patient/nobody does not exist on this server")
        # … and a malformed one is refused with the element's location.
        with pytest.raises(OperationOutcome) as malformed:
            await api.resource("RelatedPerson", patient={"reference": "Patient/martin"},
                               gender="homme").create()
        assert "RelatedPerson.gender" in issue_text(malformed.value.resource)

        await contact.delete()
        assert await people.search(identifier=f"{CONTACT_IDS}|CT-0001").fetch_all() == []

    run(flow())


# -- flows 2a/2b/2c: the agenda (Schedule) -----------------------------------------------------

def test_flow_2_schedule_with_both_clients(live_server: str) -> None:
    load(live_server, *directory())
    server = smart(live_server)
    # 2a with fhirclient: one agenda shared by the doctor (both references, as GAP asks)
    # and the ultrasound scanner.
    agenda = Schedule(new(schedule("x", "PractitionerRole/dupont-mg", "Practitioner/dupont")) | {
        "serviceType": [{"coding": [{"system": SERVICE_TYPES, "code": "ECHO"}]}]})
    created = agenda.create(server)
    agenda_id = created["id"]
    assert [a["reference"] for a in created["actor"]] == ["PractitionerRole/dupont-mg",
                                                          "Practitioner/dupont"]

    async def update_and_check() -> None:
        api = fhirpy(live_server)
        # 2b with fhirpy: the scanner joins the agenda, the horizon moves.
        stored = await api.reference("Schedule", agenda_id).to_resource()
        stored["actor"] = [*stored["actor"], {"reference": "Device/echographe-1"}]
        stored["planningHorizon"] = {"start": "2031-02-01T00:00:00+01:00",
                                     "end": "2031-06-30T23:59:59+02:00"}
        await stored.save()
        assert stored["meta"]["versionId"] == "2"
        schedules = api.resources("Schedule")
        found = await schedules.search(
            actor__Device__identifier=f"{DEVICE_IDS}|ECHO-0001").fetch_all()
        assert [s.id for s in found] == [agenda_id]
        # The planning horizon covers a day: it starts before its end and ends after its start.
        assert await schedules.search(date__ge="2031-01-15", date__le="2031-01-15"
                                      ).fetch_all() == []
        assert [s.id for s in await schedules.search(date__ge="2031-03-10",
                                                     date__le="2031-03-10").fetch_all()
                ] == [agenda_id]
        bundle = await schedules.search(_id=agenda_id).include("Schedule", "actor").fetch_raw()
        assert {(e.resource.resourceType, e.resource.id, e.search.mode) for e in bundle.entry
                } == {("Schedule", agenda_id, "match"),
                      ("PractitionerRole", "dupont-mg", "include"),
                      ("Practitioner", "dupont", "include"),
                      ("Device", "echographe-1", "include")}

    run(update_and_check())
    assert _search_ids(server, Schedule, {"service-type": f"{SERVICE_TYPES}|ECHO"}) == {
        agenda_id}
    # 2c with fhirclient: 200 with an OperationOutcome (GAP: 200 OK or 204 No Content).
    response = server.delete_json(f"Schedule/{agenda_id}")
    assert response.status_code == 200
    assert issue_text(response.json()) == f"Deleted Schedule/{agenda_id}"
    assert _search_ids(server, Schedule, {"actor": "Device/echographe-1"}) == set()
    with pytest.raises(FHIRNotFoundException) as unknown:
        server.delete_json("Schedule/no-such-agenda")
    assert issue_text(unknown.value.response.json()) == "Schedule/no-such-agenda is not known"


def test_flow_2_schedule_of_every_gap_actor(live_server: str) -> None:
    """An agenda may belong to any GAP resource: patient, professional, contact, internal
    organisation, place or equipment."""
    load(live_server, *directory())
    actors = ["Patient/martin", "PractitionerRole/dupont-mg", "RelatedPerson/tuteur-martin",
              "HealthcareService/echographie", "Location/box-3", "Device/echographe-1"]

    async def flow() -> None:
        api = fhirpy(live_server)
        ids = {}
        for actor in actors:
            agenda = api.resource("Schedule", actor=[{"reference": actor}], active=True)
            await agenda.create()
            ids[actor] = agenda.id
        schedules = api.resources("Schedule")
        for actor, agenda_id in ids.items():
            kind = actor.split("/")[0]
            found = await schedules.search(**{f"actor__{kind}__identifier": _identifier_of(
                kind)}).fetch_all()
            assert [s.id for s in found] == [agenda_id], actor
        bundle = await schedules.search(_count=10).include("Schedule", "actor").fetch_raw()
        included = {f"{e.resource.resourceType}/{e.resource.id}" for e in bundle.entry
                    if e.search.mode == "include"}
        assert included == set(actors)

    run(flow())


def _identifier_of(kind: str) -> str:
    return {"Patient": f"{INS}|2840575123456", "PractitionerRole": f"{ROLE_IDS}|DUPONT-MG",
            "RelatedPerson": f"{CONTACT_IDS}|CT-0001",
            "HealthcareService": f"{SERVICE_IDS}|UF-4512", "Location": f"{LOCATION_IDS}|BOX-3",
            "Device": f"{DEVICE_IDS}|ECHO-0001"}[kind]


# -- who may read the GAP actors ---------------------------------------------------------------

PRINCIPALS = {
    "everything": Principal(CLIENT, "everything", Scopes.parse("system/*.*")),
    # An agenda software managing Dr Dupont's agenda only.
    "dupont-only": Principal(CLIENT, "dupont-only", Scopes.parse("system/*.*"),
                             practitioners=frozenset({"dupont"})),
    "sas": sas_principal("CN=sas.sante.fr,OU=SAS"),
}


def test_relatives_are_patient_data_for_restricted_clients(
        client: Any, engine: Engine, database_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in [*directory(), patient("bernard", "1750112345678", "Bernard", "Paul"),
                  related_person("tuteur-bernard", "bernard", "CT-0002", "Bernard", "Anne"),
                  {"resourceType": "Appointment", "id": "rdv-martin", "status": "booked",
                   "start": "2031-01-06T10:00:00+01:00", "end": "2031-01-06T10:20:00+01:00",
                   "participant": [
                       {"actor": {"reference": "Practitioner/dupont"}, "status": "accepted"},
                       {"actor": {"reference": "Patient/martin"}, "status": "accepted"}]}]]}
    assert client.post("/fhir", json=transaction).status_code == 200
    secured = production_app(engine, database_url, monkeypatch, PRINCIPALS).test_client()

    def call(who: str, method: str, path: str, resource: Resource | None = None) -> Any:
        return secured.open(path, method=method, json=resource,
                            headers={"Authorization": f"Bearer {who}"})

    # Dr Dupont's software sees the relatives of Dr Dupont's patients only.
    found = call("dupont-only", "GET", "/fhir/RelatedPerson").get_json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["tuteur-martin"]
    assert call("dupont-only", "GET", "/fhir/RelatedPerson/tuteur-martin").status_code == 200
    refused = call("dupont-only", "GET", "/fhir/RelatedPerson/tuteur-bernard")
    assert refused.status_code == 403
    assert "outside the agendas" in issue_text(refused.get_json())
    changed = related_person("tuteur-bernard", "bernard", "CT-0002", "Bernard", "Anne")
    assert call("dupont-only", "PUT", "/fhir/RelatedPerson/tuteur-bernard",
                changed).status_code == 403
    # Equipment is directory data, like places.
    assert call("dupont-only", "GET", "/fhir/Device/echographe-1").status_code == 200
    assert call("everything", "GET", "/fhir/RelatedPerson/tuteur-bernard").status_code == 200
    # SAS's scopes did not grow with the new types.
    for path in ("/fhir/Device/echographe-1", "/fhir/RelatedPerson/tuteur-martin"):
        assert call("sas", "GET", path).status_code == 403
    assert call("sas", "POST", "/fhir/Device", new(device()) | {
        "resourceType": "Device"}).status_code == 403
