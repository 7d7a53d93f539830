"""The demo dataset (fixtures/demo + app.demo) is valid FHIR R4 and keeps its promises.

No database: these tests only build the transaction Bundle and check it, so the Postman
collection, the SAS search tests and the docs can rely on the ids and codes below.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B import get_fhir_model_class

from app.demo import build_demo_bundle, demo_files, load_resources, load_slot_plan
from app.gap.availability import read_availability
from app.gap.derive import wanted_slots
from app.gap.rules import has_rules

Json = dict[str, Any]

IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
ID_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
SLOT_TYPE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
SAS_VISIBLE = {"PUBLIC", "PRO", "SNP", "CPTS"}
SPECIALTY_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
)

# fhir.resources checks structure and datatypes but not required code bindings: check those
# we use here.
GENDERS = {"male", "female", "other", "unknown"}
CONTACT_SYSTEMS = {"phone", "fax", "email", "pager", "url", "sms", "other"}
CONTACT_USES = {"home", "work", "temp", "old", "mobile"}
SLOT_STATUSES = {"busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error"}

A_MONDAY = dt.date(2026, 11, 23)


def _resources(bundle: Json) -> list[Json]:
    return [entry["resource"] for entry in bundle["entry"]]


def _of_type(bundle: Json, resource_type: str) -> list[Json]:
    return [r for r in _resources(bundle) if r["resourceType"] == resource_type]


def _walk(node: Any) -> Iterator[Json]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _security_codes(slot: Json) -> set[str]:
    return {c["code"] for c in slot.get("meta", {}).get("security", [])}


def _is_sas_visible(slot: Json) -> bool:
    return any(
        c["system"] == SLOT_TYPE_SYSTEM and c["code"] in SAS_VISIBLE
        for c in slot.get("meta", {}).get("security", [])
    )


@pytest.fixture(scope="module")
def bundle() -> Json:
    return build_demo_bundle(dt.date.today())


def test_demo_files_exist() -> None:
    files = demo_files()
    assert files.resources.is_file()
    assert files.slot_plan.is_file()


def test_every_resource_is_valid_fhir(bundle: Json) -> None:
    for resource in _resources(bundle):
        model = get_fhir_model_class(resource["resourceType"])
        model.model_validate(resource)
    get_fhir_model_class("Bundle").model_validate(bundle)


def test_transaction_entries_are_idempotent_puts(bundle: Json) -> None:
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    urls = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", resource["id"]), resource["id"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        urls.append(entry["request"]["url"])
    assert len(urls) == len(set(urls))


def test_every_reference_points_into_the_bundle(bundle: Json) -> None:
    present = {f"{r['resourceType']}/{r['id']}" for r in _resources(bundle)}
    references = [
        node["reference"] for node in _walk(bundle) if isinstance(node.get("reference"), str)
    ]
    assert references
    for reference in references:
        assert re.fullmatch(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}", reference), reference
        assert reference in present, f"dangling reference {reference}"


def test_bundle_is_deterministic() -> None:
    first = build_demo_bundle(A_MONDAY, days=7)
    assert build_demo_bundle(A_MONDAY, days=7) == first
    # Overlapping ranges produce the very same slots on their common days.
    later = {
        r["id"]: r for r in _of_type(build_demo_bundle(A_MONDAY + dt.timedelta(days=2)), "Slot")
    }
    common = [s for s in _of_type(first, "Slot") if s["id"] in later]
    assert common
    assert all(later[s["id"]] == s for s in common)


def test_resource_codes_and_contacts(bundle: Json) -> None:
    for resource in _resources(bundle):
        if "gender" in resource:
            assert resource["gender"] in GENDERS
        # Every "telecom" list, including those nested in Patient.contact.
        contacts = [c for node in _walk(resource) for c in node.get("telecom", [])]
        for contact in contacts:
            assert contact["system"] in CONTACT_SYSTEMS
            assert contact["use"] in CONTACT_USES
            if contact["system"] == "phone":
                assert re.fullmatch(r"\+33[1-9]\d{8}", contact["value"]), contact["value"]
            if contact["system"] == "email":
                assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", contact["value"]), contact
    for location in _of_type(bundle, "Location"):
        address = location["address"]
        assert len(address["line"]) == 1  # FrLocationAgregateur: exactly one line
        assert address["city"] and re.fullmatch(r"\d{5}", address["postalCode"])
        assert address["country"] == "FRA"
        assert location["managingOrganization"]["reference"].startswith("Organization/")


def test_practitioner_identifiers() -> None:
    practitioners = [r for r in load_resources() if r["resourceType"] == "Practitioner"]
    assert len(practitioners) >= 6
    values = []
    for practitioner in practitioners:
        (identifier,) = practitioner["identifier"]
        assert identifier["system"] == IDNPS_SYSTEM
        assert identifier["type"]["coding"] == [{"system": ID_TYPE_SYSTEM, "code": "IDNPS"}]
        values.append(identifier["value"])
    rpps = [v for v in values if re.fullmatch(r"8\d{11}", v)]
    adeli = [v for v in values if re.fullmatch(r"0[0-9A-Z]{9}", v)]
    unprefixed = [v for v in values if re.fullmatch(r"\d{11}", v)]
    assert len(rpps) >= 3 and adeli and len(unprefixed) == 1
    assert len(rpps) + len(adeli) + len(unprefixed) == len(values)
    assert any(re.search(r"[À-ÿ]", p["name"][0]["family"]) for p in practitioners)


def test_organization_identifiers() -> None:
    organizations = [r for r in load_resources() if r["resourceType"] == "Organization"]
    prefixes = set()
    for organization in organizations:
        (identifier,) = organization["identifier"]
        assert identifier["system"] == IDNST_SYSTEM
        assert identifier["type"]["coding"] == [{"system": ID_TYPE_SYSTEM, "code": "IDNST"}]
        value = identifier["value"]
        assert re.fullmatch(r"1\d{9}|3\d{14}|4\d{11}\d{2}", value), value
        prefixes.add(value[0])
    assert prefixes == {"1", "3", "4"}


def test_schedules_link_practitioner_and_role(bundle: Json) -> None:
    roles = {r["id"]: r for r in _of_type(bundle, "PractitionerRole")}
    # The SOS Médecins places' agendas name their Location only (test_sos_medecins_places).
    schedules = [s for s in _of_type(bundle, "Schedule")
                 if not s["actor"][0]["reference"].startswith("Location/")]
    assert len(schedules) == len(roles)
    per_practitioner: dict[str, int] = {}
    for schedule in schedules:
        practitioner_ref, role_ref = (a["reference"] for a in schedule["actor"])
        assert practitioner_ref.startswith("Practitioner/")
        role = roles[role_ref.removeprefix("PractitionerRole/")]
        assert role["practitioner"]["reference"] == practitioner_ref
        assert len(role["location"]) == 1
        per_practitioner[practitioner_ref] = per_practitioner.get(practitioner_ref, 0) + 1
        for specialty in schedule["specialty"]:
            assert specialty.get("text") or specialty["coding"][0]["system"] == SPECIALTY_SYSTEM
    assert max(per_practitioner.values()) >= 2  # someone practises in two places


def test_slot_plan_matches_resources() -> None:
    plan = load_slot_plan()
    schedules = [r for r in load_resources() if r["resourceType"] == "Schedule"]
    # Agendas defined only by availability rules get their slots from the worker.
    by_rules = {r["id"] for r in schedules if has_rules(r)}
    assert by_rules == {"demo-agenda-vidal-pentes"}
    assert set(plan["schedules"]) == {r["id"] for r in schedules} - by_rules
    for schedule_plan in plan["schedules"].values():
        weight_maps = [schedule_plan["kinds"]] + [
            p["kinds"] for p in schedule_plan.get("periods", [])
        ]
        for weights in weight_maps:
            assert set(weights) <= set(plan["kinds"])
    for kind in plan["kinds"].values():
        assert set(kind["security"]) <= set(plan["visibility_systems"])


def test_slot_mix() -> None:
    slots = _of_type(build_demo_bundle(A_MONDAY, days=7), "Slot")
    statuses = [s["status"] for s in slots]
    assert set(statuses) == {"free", "busy", "busy-unavailable"}
    assert statuses.count("free") > len(slots) / 2
    assert {code for s in slots for code in _security_codes(s)} >= SAS_VISIBLE | {"PATIENT"}
    assert any(len(_security_codes(s)) > 1 for s in slots)
    service_codes = {
        c["code"] for s in slots for st in s.get("serviceType", []) for c in st.get("coding", [])
    }
    assert {"AMB", "HH", "VR", "604"} <= service_codes
    appointment_types = {
        s["appointmentType"]["coding"][0]["code"] for s in slots if "appointmentType" in s
    }
    assert appointment_types == {"ROUTINE", "WALKIN"}
    for slot in slots:
        assert slot["status"] in SLOT_STATUSES
        assert slot["start"] < slot["end"]
        if "PATIENT" in _security_codes(slot):
            assert not _is_sas_visible(slot)  # patient-reserved slots never reach SAS
        if slot["status"] == "busy-unavailable":
            assert not _is_sas_visible(slot)


@pytest.mark.parametrize(
    ("day", "offset"),
    [
        (dt.date(2026, 11, 25), "+01:00"),  # winter time
        (dt.date(2026, 6, 17), "+02:00"),  # summer time
    ],
)
def test_slot_times_carry_the_paris_offset(day: dt.date, offset: str) -> None:
    slots = _of_type(build_demo_bundle(day, days=1), "Slot")
    assert slots
    for slot in slots:
        assert slot["start"].startswith(day.isoformat() + "T")
        assert slot["start"].endswith(offset) and slot["end"].endswith(offset)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", slot["start"])


def test_slot_offsets_follow_the_dst_switch() -> None:
    # Summer time starts on Sunday 29 March 2026: Friday is +01:00, Monday +02:00.
    slots = _of_type(build_demo_bundle(dt.date(2026, 3, 27), days=4), "Slot")
    friday = [s for s in slots if s["start"].startswith("2026-03-27")]
    monday = [s for s in slots if s["start"].startswith("2026-03-30")]
    assert friday and monday
    assert all(s["start"].endswith("+01:00") for s in friday)
    assert all(s["start"].endswith("+02:00") for s in monday)
    utc = _of_type(build_demo_bundle(dt.date(2026, 3, 27), days=4, tz="UTC"), "Slot")
    assert utc and all(s["start"].endswith("+00:00") for s in utc)


@pytest.mark.parametrize("weekday", range(7))
def test_every_practitioner_has_sas_slots_within_72_hours(weekday: int) -> None:
    start = A_MONDAY + dt.timedelta(days=weekday)
    bundle = build_demo_bundle(start, days=3)
    schedule_owner = {
        f"Schedule/{s['id']}": s["actor"][0]["reference"] for s in _of_type(bundle, "Schedule")
    }
    offered = {
        schedule_owner[s["schedule"]["reference"]]
        for s in _of_type(bundle, "Slot")
        if s["status"] == "free" and _is_sas_visible(s)
    }
    # Agendas defined by rules: the slots the worker derives for the same three days.
    zone = ZoneInfo("Europe/Paris")
    low = dt.datetime.combine(start, dt.time(), zone)
    for schedule in _of_type(bundle, "Schedule"):
        if has_rules(schedule):
            derived = wanted_slots(schedule, read_availability(schedule, zone), zone, low,
                                   low + dt.timedelta(days=3), 15)
            if any(_is_sas_visible(s) for s in derived.values()):
                offered.add(schedule_owner[f"Schedule/{schedule['id']}"])
    # Every practitioner, and both SOS Médecins places.
    assert offered == {f"Practitioner/{p['id']}" for p in _of_type(bundle, "Practitioner")} | {
        "Location/demo-pfg-bellecour", "Location/demo-pfg-villeurbanne"}


def test_the_cpts_and_sos_medecins_offers() -> None:
    bundle = build_demo_bundle(A_MONDAY, days=7)
    cpts_slots = [s for s in _of_type(bundle, "Slot") if "CPTS" in _security_codes(s)]
    shared = [[c["extension"][0]["valueReference"]["reference"] for c in s["serviceType"]
               if "extension" in c] for s in cpts_slots]
    assert all(shared) and any(len(names) == 2 for names in shared)
    places = [s for s in _of_type(bundle, "Schedule")
              if s["actor"][0]["reference"].startswith("Location/")]
    locations = {r["id"]: r for r in _of_type(bundle, "Location")}
    assert len(places) == 2
    for place in places:
        (actor,) = place["actor"]
        location = locations[actor["reference"].removeprefix("Location/")]
        assert location["managingOrganization"] == {
            "reference": "Organization/demo-sos-medecins-lyon"}
