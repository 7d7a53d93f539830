"""GAP flows 4a/5a (consultation of availabilities: Slot searches) and 4b/5b (consultation
of appointments: Appointment searches), every parameter of the guide's tables, asked through
two real FHIR client libraries against gunicorn, on SQLite and PostgreSQL: `fhirclient`
(SMART on FHIR; its `FHIRSearch`, answers parsed with its R4 models) and `fhirpy`
(asyncio). Each search runs through both, and both must read the same answer.

Spec: gap-ig/pages/flux-demande-consultation.md, gap-ig/fsh/SearchParameter/*.fsh (GAP
earliestStart/latestStart = `start` with gt/ge, lt/le; created, description, priority),
gap-ig/fsh/profiles/GAP_BundleResultatReponseADemande*.fsh (searchset, Slot or Appointment
as matches, everything else as includes).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import requests
from fhirclient.models.appointment import Appointment
from fhirclient.models.bundle import Bundle
from fhirclient.models.fhirabstractresource import FHIRAbstractResource
from fhirclient.models.slot import Slot
from fhirpy.base.exceptions import OperationOutcome
from fhirpy.base.searchset import Raw

from tests.test_gap_resources import (
    APPOINTMENT_IDS,
    CONTACT_IDS,
    DEVICE_IDS,
    FINESS,
    IDNPS,
    IDNST,
    INS,
    LOCATION_IDS,
    RPPS_DUPONT,
    RPPS_LEROY,
    SERVICE_IDS,
    SERVICE_TYPES,
    SNOMED,
    TRE_G15,
    TRE_R38,
    Resource,
    device,
    directory,
    fhirpy,
    healthcare_service,
    issue_text,
    load,
    location,
    organization,
    patient,
    practitioner,
    practitioner_role,
    run,
    schedule,
    slot,
    smart,
)

Pairs = list[tuple[str, str]]
Entry = tuple[str, str]  # (search mode, Type/id)

SLOT_IDS = "https://chu-villejuif.example/fhir/creneau"
EQUIPMENT_TYPES = "https://chu-villejuif.example/fhir/type-equipement"
CLINIC_FINESS = "690000019"
INS_MARTIN = f"{INS}|2840575123456"
INS_BERNARD = f"{INS}|1750112345678"
WINDOW: Pairs = [("start", "ge2031-01-02"), ("start", "le2031-01-06")]
FREE_IN_WINDOW: Pairs = [*WINDOW, ("status", "free")]


def _paris(day: int, time: str) -> str:
    return f"2031-01-{day:02d}T{time}:00+01:00"


def _slot(slot_id: str, schedule_id: str, day: int, time: str, status: str = "free",
          minutes: int = 20) -> Resource:
    hour, minute = map(int, time.split(":"))
    end = hour * 60 + minute + minutes
    return slot(slot_id, schedule_id, _paris(day, time),
                _paris(day, f"{end // 60:02d}:{end % 60:02d}"), status)


def agendas() -> list[Resource]:
    """Two professionals, two pieces of equipment, two internal organisations of two
    hospitals, a consultation box, a guardian and a patient, each with its agenda."""
    clinic = organization("clinique-parc", "Clinique du Parc", CLINIC_FINESS)
    clinic["address"] = [{"line": ["5 quai Claude Bernard"], "city": "Lyon",
                          "postalCode": "69007"}]
    radiology = healthcare_service("radiologie", "Service de radiologie") | {
        "identifier": [{"system": SERVICE_IDS, "value": "UF-7300"}],
        "providedBy": {"reference": "Organization/clinique-parc"},
        "type": [{"coding": [{"system": SERVICE_TYPES, "code": "RADIO"}]}]}
    scanner = device("scanner-2", "SCAN-0002", "Scanner Revolution", "REV") | {
        "type": {"coding": [{"system": EQUIPMENT_TYPES, "code": "SCANNER"}]}}
    return [
        *directory(), clinic, radiology, scanner,
        location("salle-lyon", "Salle de cardiologie", "Lyon", "SALLE-1"),
        practitioner("leroy", RPPS_LEROY, "Leroy", "Marc"),
        practitioner_role("leroy-cardio", "leroy", "SM04", "salle-lyon", "+33478000002"),
        patient("bernard", "1750112345678", "Bernard", "Paul"),
        schedule("sch-dupont", "PractitionerRole/dupont-mg", "Practitioner/dupont"),
        schedule("sch-leroy", "PractitionerRole/leroy-cardio", "Practitioner/leroy"),
        schedule("sch-echo", "Device/echographe-1"),
        schedule("sch-scanner", "Device/scanner-2"),
        schedule("sch-echographie", "HealthcareService/echographie"),
        schedule("sch-radiologie", "HealthcareService/radiologie"),
        schedule("sch-box", "Location/box-3"),
        schedule("sch-tuteur", "RelatedPerson/tuteur-martin"),
        schedule("sch-patient", "Patient/martin"),
        _slot("d-0", "sch-dupont", 1, "09:00"),  # before the window
        _slot("d-1", "sch-dupont", 2, "09:00"),
        _slot("d-2", "sch-dupont", 3, "10:00", "busy"),
        _slot("d-3", "sch-dupont", 6, "16:00"),  # the last day of the window counts whole
        _slot("d-4", "sch-dupont", 8, "09:00"),  # after the window
        _slot("l-1", "sch-leroy", 3, "14:00"),
        _slot("e-1", "sch-echo", 4, "08:00", minutes=30),
        _slot("e-2", "sch-echo", 4, "08:30", "busy", minutes=30),
        _slot("s-1", "sch-scanner", 4, "08:00", minutes=30),
        _slot("h-1", "sch-echographie", 5, "11:00"),
        _slot("r-1", "sch-radiologie", 5, "11:00"),
        _slot("b-1", "sch-box", 2, "15:00"),
        _slot("t-1", "sch-tuteur", 3, "18:00"),
        _slot("p-1", "sch-patient", 3, "18:00"),
    ]


def appointments() -> list[Resource]:
    def who(*actors: str) -> list[Resource]:
        return [{"actor": {"reference": a}, "status": "accepted"} for a in actors]

    return [
        {"resourceType": "Appointment", "id": "rdv-echo", "status": "booked",
         "identifier": [{"system": APPOINTMENT_IDS, "value": "RDV-0001"}],
         "start": _paris(4, "08:00"), "end": _paris(4, "08:30"),
         "created": "2030-12-01T10:15:00+01:00", "priority": 1,
         "description": "Échographie abdominale", "comment": "À jeun depuis 6 h",
         "serviceType": [{"coding": [{"system": SERVICE_TYPES, "code": "ECHO"}]}],
         # The prescription: a DocumentReference this server does not hold, and one of the
         # patient's shared record.
         "supportingInformation": [
             {"reference": "DocumentReference/ordonnance-1"},
             {"reference": "https://dmp.example/fhir/DocumentReference/7788"}],
         "participant": who("Patient/martin", "Device/echographe-1", "Practitioner/dupont",
                            "PractitionerRole/dupont-mg", "Location/box-3")},
        {"resourceType": "Appointment", "id": "rdv-radio", "status": "proposed",
         "identifier": [{"system": APPOINTMENT_IDS, "value": "RDV-0002"}],
         "start": _paris(5, "11:00"), "end": _paris(5, "11:20"),
         "created": "2030-12-20T09:00:00+01:00", "priority": 5,
         "description": "Radiographie du thorax",
         "serviceType": [{"coding": [{"system": SERVICE_TYPES, "code": "RADIO"}]}],
         "participant": who("Patient/bernard", "RelatedPerson/tuteur-martin",
                            "HealthcareService/radiologie", "Device/scanner-2")},
        {"resourceType": "Appointment", "id": "rdv-suivi", "status": "cancelled",
         "identifier": [{"system": APPOINTMENT_IDS, "value": "RDV-0003"}],
         "start": _paris(6, "09:00"), "end": _paris(6, "09:20"),
         "created": "2030-11-15T17:40:00+01:00", "priority": 9,
         "description": "Consultation de suivi",
         "participant": who("Patient/martin", "Practitioner/leroy",
                            "HealthcareService/echographie")},
    ]


@pytest.fixture
def gap(live_server: str) -> str:
    load(live_server, *agendas(), *appointments())
    return live_server


# -- one search, two client libraries --------------------------------------------------------

def _model(resource_type: str) -> type[FHIRAbstractResource]:
    module = importlib.import_module(f"fhirclient.models.{resource_type.lower()}")
    model: type[FHIRAbstractResource] = getattr(module, resource_type)
    return model


def _grouped(pairs: Pairs) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return grouped


def _struct(pairs: Pairs) -> dict[str, Any]:
    """fhirclient's NoSQL-like search structure; a repeated key is an `$and`."""
    return {key: values[0] if len(values) == 1 else {"$and": values}
            for key, values in _grouped(pairs).items()}


def with_fhirclient(base_url: str, resource_type: str, pairs: Pairs) -> tuple[int, list[Entry]]:
    search = _model(resource_type).where(_struct(pairs))
    bundle: Bundle = next(search.perform_iter(smart(base_url)))
    assert bundle.type == "searchset"
    return bundle.total, [(e.search.mode, f"{e.resource.resource_type}/{e.resource.id}")
                          for e in bundle.entry or []]


def with_fhirpy(base_url: str, resource_type: str, pairs: Pairs,
                **headers: str) -> tuple[int, list[Entry]]:
    async def fetch() -> Any:
        # Raw: the keys as the guide writes them (no snake_case translation).
        return await fhirpy(base_url, **headers).resources(resource_type).search(
            Raw(**_grouped(pairs))).fetch_raw()

    bundle = run(fetch())
    return bundle.total, [(e.search.mode, f"{e.resource.resourceType}/{e.resource.id}")
                          for e in bundle.get("entry", [])]


def ask(base_url: str, resource_type: str, pairs: Pairs) -> list[Entry]:
    """The answer, which both libraries must read alike."""
    first = with_fhirclient(base_url, resource_type, pairs)
    second = with_fhirpy(base_url, resource_type, pairs)
    assert first == second
    total, entries = first
    assert total == sum(1 for mode, _ in entries if mode == "match")
    return entries


def matches(base_url: str, resource_type: str, pairs: Pairs) -> set[str]:
    entries = ask(base_url, resource_type, pairs)
    assert {mode for mode, _ in entries} <= {"match"}, entries
    return {ref.split("/", 1)[1] for _, ref in entries}


def refused(base_url: str, resource_type: str, pairs: Pairs, *, strict: bool = False) -> str:
    """Both libraries get 400 and the same OperationOutcome; its text."""
    headers = {"Prefer": "handling=strict"} if strict else {}
    search = _model(resource_type).where(_struct(pairs))
    with pytest.raises(requests.HTTPError) as first:
        smart(base_url).request_data(search.construct(), headers=headers)
    assert first.value.response.status_code == 400
    outcome = first.value.response.json()
    with pytest.raises(OperationOutcome) as second:
        with_fhirpy(base_url, resource_type, pairs, **headers)
    assert second.value.resource == outcome
    return issue_text(outcome)


# -- flow 4a/5a: availabilities --------------------------------------------------------------

SM54 = ("schedule.actor:PractitionerRole.specialty", f"{TRE_R38}|SM54")


def test_the_guide_example_query(gap: str) -> None:
    """`Slot?_include=Slot:schedule&_include=Schedule:actor&start=ge…&start=le…
    &schedule.actor:PractitionerRole.specialty=…|SM54&status=free` (flow 4a's example)."""
    entries = ask(gap, "Slot", [("_include", "Slot:schedule"), ("_include", "Schedule:actor"),
                                *WINDOW, SM54, ("status", "free")])
    # 5a: the window's free slots of the general practitioner as matches, first.
    assert entries[:2] == [("match", "Slot/d-1"), ("match", "Slot/d-3")]
    # R4 applies an _include without :iterate to the matches only: Schedule:actor from a
    # Slot search has nothing to start from, so the practitioner comes with :iterate (next).
    assert entries[2:] == [("include", "Schedule/sch-dupont")]


def test_the_guide_example_with_the_actors(gap: str) -> None:
    entries = ask(gap, "Slot", [("_include", "Slot:schedule"),
                                ("_include:iterate", "Schedule:actor"),
                                *FREE_IN_WINDOW, SM54])
    assert sorted(entries) == [
        ("include", "Practitioner/dupont"), ("include", "PractitionerRole/dupont-mg"),
        ("include", "Schedule/sch-dupont"), ("match", "Slot/d-1"), ("match", "Slot/d-3")]
    # The same answer read as fhirclient's R4 models (GAP_BundleResultatReponseADemande
    # ConsultationDisponibilite: Slots as matches, the rest included).
    search = Slot.where(_struct([("_include", "Slot:schedule"),
                                 ("_include:iterate", "Schedule:actor"), *FREE_IN_WINDOW, SM54]))
    bundle: Bundle = next(search.perform_iter(smart(gap)))
    slots = [e.resource for e in bundle.entry if e.search.mode == "match"]
    assert [(s.status, s.start.isostring, s.schedule.reference) for s in slots] == [
        ("free", "2031-01-02T09:00:00+01:00", "Schedule/sch-dupont"),
        ("free", "2031-01-06T16:00:00+01:00", "Schedule/sch-dupont")]
    role = next(e.resource for e in bundle.entry if e.resource.resource_type == "PractitionerRole")
    assert role.specialty[0].coding[0].code == "SM54"


@pytest.mark.parametrize(("pairs", "expected"), [
    ([("identifier", f"{SLOT_IDS}|D-1")], {"d-1"}),
    ([*WINDOW, ("status", "busy")], {"d-2", "e-2"}),  # 5a: the busy time too, when asked
    ([*WINDOW], {"d-1", "d-2", "d-3", "l-1", "e-1", "e-2", "s-1", "h-1", "r-1", "b-1", "t-1",
                 "p-1"}),
    ([("schedule.actor:Patient.identifier", INS_MARTIN)], {"p-1"}),
    ([("schedule.actor:Patient.family", "martin"), ("schedule.actor:Patient.given", "lucie")],
     {"p-1"}),
    ([*FREE_IN_WINDOW, ("schedule.actor:Practitioner.identifier", f"{IDNPS}|{RPPS_DUPONT}")],
     {"d-1", "d-3"}),
    ([*FREE_IN_WINDOW, ("schedule.actor:PractitionerRole.role", f"{TRE_G15}|10")],
     {"d-1", "d-3", "l-1"}),
    ([*FREE_IN_WINDOW, ("schedule.actor:PractitionerRole.location.address", "Paris")],
     {"d-1", "d-3"}),
    ([*FREE_IN_WINDOW, ("schedule.actor:PractitionerRole.location.address-city", "lyon")],
     {"l-1"}),
    ([("schedule.actor:PractitionerRole.telecom", "+33478000002")], {"l-1"}),
    ([("schedule.actor:RelatedPerson.identifier", f"{CONTACT_IDS}|CT-0001")], {"t-1"}),
    ([("schedule.actor:RelatedPerson.address", "creteil")], {"t-1"}),
    ([("schedule.actor:RelatedPerson.telecom", "+33612345678")], {"t-1"}),
    ([("schedule.actor:RelatedPerson.name", "etienne")], {"t-1"}),
    ([("schedule.actor:Location.name", "box de consultation")], {"b-1"}),
    ([("schedule.actor:Location.identifier", f"{LOCATION_IDS}|BOX-3")], {"b-1"}),
    ([("schedule.actor:Location.address", "paris")], {"b-1"}),
    ([("schedule.actor:Device.identifier", f"{DEVICE_IDS}|ECHO-0001")], {"e-1", "e-2"}),
    ([("schedule.actor:Device.identifier", f"{DEVICE_IDS}|SCAN-0002"), ("status", "free")],
     {"s-1"}),
    ([("schedule.actor:Device.type", f"{SNOMED}|462499003")], {"e-1", "e-2"}),
    ([("schedule.actor:Device.type", f"{EQUIPMENT_TYPES}|SCANNER")], {"s-1"}),
    ([("schedule.actor:Device.device-name", "echographe"), ("status", "free")], {"e-1"}),
    ([("schedule.actor:Device.model", "REV")], {"s-1"}),
    ([("schedule.actor:HealthcareService.identifier", f"{SERVICE_IDS}|UF-4512")], {"h-1"}),
    ([("schedule.actor:HealthcareService.name", "unité d'échographie")], {"h-1"}),
    ([("schedule.actor:HealthcareService.service-type", f"{SERVICE_TYPES}|RADIO")], {"r-1"}),
    ([("schedule.actor:HealthcareService.organization.identifier", f"{IDNST}|1{FINESS}")],
     {"h-1"}),
    ([("schedule.actor:HealthcareService.organization.name", "clinique du parc")], {"r-1"}),
    ([("schedule.actor:HealthcareService.organization.address", "lyon")], {"r-1"}),
    # GAP earliestStart (gt, ge) and latestStart (lt, le) are `start` with a prefix.
    ([("start", "gt2031-01-04T08:00:00+01:00"), ("start", "lt2031-01-05T11:00:00+01:00")],
     {"e-2"}),
    ([("start", "ge2031-01-04T08:00:00+01:00"), ("start", "le2031-01-05T11:00:00+01:00")],
     {"e-1", "e-2", "s-1", "h-1", "r-1"}),
    ([("start", "gt2031-01-06"), ("status", "free")], {"d-4"}),
    ([("start", "lt2031-01-02")], {"d-0"}),
    # OR'ed actors across types, as a consumer looking for any scanner or ultrasound.
    ([("schedule.actor:Device.identifier", f"{DEVICE_IDS}|ECHO-0001,{DEVICE_IDS}|SCAN-0002"),
      ("status", "free")], {"e-1", "s-1"}),
])
def test_flow_4a_parameters(gap: str, pairs: Pairs, expected: set[str]) -> None:
    assert matches(gap, "Slot", pairs) == expected


def test_flow_4a_equipment_and_services_with_their_agendas(gap: str) -> None:
    entries = ask(gap, "Slot", [("_include", "Slot:schedule"),
                                ("_include:iterate", "Schedule:actor"),
                                ("_include:iterate", "HealthcareService:organization"),
                                *FREE_IN_WINDOW,
                                ("schedule.actor:Device.model", "E10,REV")])
    assert sorted(entries) == [
        ("include", "Device/echographe-1"), ("include", "Device/scanner-2"),
        ("include", "Schedule/sch-echo"), ("include", "Schedule/sch-scanner"),
        ("match", "Slot/e-1"), ("match", "Slot/s-1")]
    entries = ask(gap, "Slot", [("_include", "Slot:schedule"),
                                ("_include:iterate", "Schedule:actor"),
                                ("_include:iterate", "HealthcareService:organization"),
                                *FREE_IN_WINDOW,
                                ("schedule.actor:HealthcareService.service-type",
                                 f"{SERVICE_TYPES}|ECHO,{SERVICE_TYPES}|RADIO")])
    assert sorted(entries) == [
        ("include", "HealthcareService/echographie"), ("include", "HealthcareService/radiologie"),
        ("include", "Organization/chu-villejuif"), ("include", "Organization/clinique-parc"),
        ("include", "Schedule/sch-echographie"), ("include", "Schedule/sch-radiologie"),
        ("match", "Slot/h-1"), ("match", "Slot/r-1")]


def test_flow_5a_pages_read_by_both_clients(gap: str) -> None:
    pairs = [*FREE_IN_WINDOW, ("_count", "3"), ("_sort", "start")]
    search = Slot.where(_struct(pairs))
    pages = list(search.perform_iter(smart(gap)))
    assert len(pages) == 4  # 10 free slots, 3 by page, fhirclient following `next`
    by_fhirclient = [e.resource.id for page in pages for e in page.entry]

    async def every_page() -> list[str]:
        found = await fhirpy(gap).resources("Slot").search(Raw(**_grouped(pairs))).fetch_all()
        return [s.id for s in found]

    # By start, then in the order they were stored (a total order keeps pages stable).
    assert run(every_page()) == by_fhirclient == [
        "d-1", "b-1", "l-1", "t-1", "p-1", "e-1", "s-1", "h-1", "r-1", "d-3"]


def test_flow_4a_bad_requests(gap: str) -> None:
    assert refused(gap, "Slot", [("start", "ge2031-02-30")]) == (
        "Invalid date search value 'ge2031-02-30': '2031-02-30' is not a valid date: "
        "day is out of range for month")
    assert refused(gap, "Slot", [("schedule.actor:Organization.identifier", "x")]) == (
        "'actor' cannot refer to Organization")
    # `near` (a distance around coordinates) is not searchable here: refused when the
    # client asks for strict handling, ignored and reported otherwise.
    near = [("schedule.actor:Location.near", "48.8566|2.3522|5|km"), ("status", "free")]
    assert refused(gap, "Slot", near, strict=True) == (
        "Unknown search parameter 'near' for Location")
    total, entries = with_fhirpy(gap, "Slot", near)
    assert total == 12 and entries[-1][0] == "outcome"  # every free slot: nothing filtered
    bundle = next(Slot.where(_struct(near)).perform_iter(smart(gap)))
    warning = bundle.entry[-1].resource
    assert warning.issue[0].severity == "warning"
    assert warning.issue[0].diagnostics == (
        "Search parameters ignored: schedule.actor:Location.near")
    # The GAP SearchParameter names are not search codes: `start` is.
    assert refused(gap, "Slot", [("earliestStart", "2031-01-02")], strict=True) == (
        "Unknown search parameter 'earliestStart' for Slot")


# -- flow 4b/5b: appointments ----------------------------------------------------------------

@pytest.mark.parametrize(("pairs", "expected"), [
    ([("identifier", f"{APPOINTMENT_IDS}|RDV-0002")], {"rdv-radio"}),
    ([("date", "ge2031-01-04"), ("date", "le2031-01-05")], {"rdv-echo", "rdv-radio"}),
    ([("date", "2031-01-04")], {"rdv-echo"}),
    ([("start", "gt2031-01-04T08:00:00+01:00")], {"rdv-radio", "rdv-suivi"}),
    ([("start", "ge2031-01-04T08:00:00+01:00"), ("start", "lt2031-01-06")],
     {"rdv-echo", "rdv-radio"}),
    ([("start", "le2031-01-05T11:00:00+01:00")], {"rdv-echo", "rdv-radio"}),
    ([("created", "ge2030-12-01")], {"rdv-echo", "rdv-radio"}),
    ([("created", "lt2030-12-01")], {"rdv-suivi"}),
    ([("created", "2030-12-20")], {"rdv-radio"}),
    ([("service-type", f"{SERVICE_TYPES}|ECHO")], {"rdv-echo"}),
    ([("status", "booked,proposed")], {"rdv-echo", "rdv-radio"}),
    ([("status:not", "cancelled")], {"rdv-echo", "rdv-radio"}),
    ([("status", "cancelled")], {"rdv-suivi"}),
    # description = Appointment.comment | Appointment.description, accents and case ignored
    ([("description", "echographie")], {"rdv-echo"}),
    ([("description", "a jeun")], {"rdv-echo"}),
    ([("description:contains", "thorax")], {"rdv-radio"}),
    ([("description:exact", "Radiographie du thorax")], {"rdv-radio"}),
    ([("description:exact", "radiographie du thorax")], set()),
    # priority is an unsignedInt, searched as a token
    ([("priority", "1")], {"rdv-echo"}),
    ([("priority", "5")], {"rdv-radio"}),
    ([("priority", "1,9")], {"rdv-echo", "rdv-suivi"}),
    ([("priority:missing", "true")], set()),
    ([("supporting-info", "DocumentReference/ordonnance-1")], {"rdv-echo"}),
    ([("supporting-info", "https://dmp.example/fhir/DocumentReference/7788")], {"rdv-echo"}),
    ([("supporting-info:missing", "true")], {"rdv-radio", "rdv-suivi"}),
    ([("actor:Patient.identifier", INS_MARTIN)], {"rdv-echo", "rdv-suivi"}),
    ([("patient.identifier", INS_BERNARD)], {"rdv-radio"}),
    ([("actor:Practitioner.identifier", f"{IDNPS}|{RPPS_LEROY}")], {"rdv-suivi"}),
    ([("practitioner.identifier", f"{IDNPS}|{RPPS_DUPONT}")], {"rdv-echo"}),
    ([("actor:RelatedPerson.identifier", f"{CONTACT_IDS}|CT-0001")], {"rdv-radio"}),
    ([("actor:Location.identifier", f"{LOCATION_IDS}|BOX-3")], {"rdv-echo"}),
    ([("location.identifier", f"{LOCATION_IDS}|BOX-3")], {"rdv-echo"}),
    ([("actor:Device.identifier", f"{DEVICE_IDS}|SCAN-0002")], {"rdv-radio"}),
    ([("actor:Device.identifier", f"{DEVICE_IDS}|ECHO-0001")], {"rdv-echo"}),
    ([("actor:HealthcareService.identifier", f"{SERVICE_IDS}|UF-4512")], {"rdv-suivi"}),
    ([("actor:HealthcareService.identifier", f"{SERVICE_IDS}|UF-7300")], {"rdv-radio"}),
    # Several criteria together, as an agenda consults one patient's coming appointments.
    ([("patient.identifier", INS_MARTIN), ("status:not", "cancelled"),
      ("start", "ge2031-01-01"), ("priority", "1")], {"rdv-echo"}),
])
def test_flow_4b_parameters(gap: str, pairs: Pairs, expected: set[str]) -> None:
    assert matches(gap, "Appointment", pairs) == expected


def test_flow_5b_answer_with_its_participants(gap: str) -> None:
    pairs = [("patient.identifier", INS_MARTIN), ("_sort", "-date"),
             ("_include", "Appointment:patient"), ("_include", "Appointment:actor:Device"),
             ("_include", "Appointment:supporting-info")]
    entries = ask(gap, "Appointment", pairs)
    # Newest first; the prescription held elsewhere is not included (nothing to include).
    assert entries == [("match", "Appointment/rdv-suivi"), ("match", "Appointment/rdv-echo"),
                       ("include", "Patient/martin"), ("include", "Device/echographe-1")]
    bundle: Bundle = next(Appointment.where(_struct(pairs)).perform_iter(smart(gap)))
    echo = next(e.resource for e in bundle.entry if e.resource.id == "rdv-echo")
    assert (echo.priority, echo.description, echo.created.isostring) == (
        1, "Échographie abdominale", "2030-12-01T10:15:00+01:00")
    assert [i.reference for i in echo.supportingInformation] == [
        "DocumentReference/ordonnance-1", "https://dmp.example/fhir/DocumentReference/7788"]
    assert {p.actor.reference for p in echo.participant} >= {"Device/echographe-1",
                                                             "Location/box-3"}
    # A guardian's appointments come with the guardian and the patient.
    entries = ask(gap, "Appointment", [("actor:RelatedPerson.name", "etienne"),
                                       ("_include", "Appointment:actor:RelatedPerson"),
                                       ("_include", "Appointment:patient"),
                                       ("_include:iterate", "RelatedPerson:patient")])
    assert sorted(entries) == [("include", "Patient/bernard"), ("include", "Patient/martin"),
                               ("include", "RelatedPerson/tuteur-martin"),
                               ("match", "Appointment/rdv-radio")]


def test_flow_4b_bad_requests(gap: str) -> None:
    assert refused(gap, "Appointment", [("created", "hier")]).startswith(
        "Invalid date search value 'hier'")
    assert refused(gap, "Appointment", [("date", "ge2031-01-04T25:00")]).startswith(
        "Invalid date search value 'ge2031-01-04T25:00'")
    assert refused(gap, "Appointment", [("actor:Device.serial", "x")], strict=True) == (
        "Unknown search parameter 'serial' for Device")
    assert refused(gap, "Appointment", [("latestStart", "2031-01-06")], strict=True) == (
        "Unknown search parameter 'latestStart' for Appointment")
    assert refused(gap, "Appointment", [("description:below", "x")]) == (
        "Modifier ':below' is not supported on 'description'")
