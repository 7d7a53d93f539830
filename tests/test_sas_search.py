"""INT_R01: the SAS slot search, answered in the SAS aggregator profiles (both databases)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from app.validation.profiles import default_profiles
from tests.factories import BASE_URL, body
from tests.sas_data import (
    BLANC,
    FAURE,
    IDNPS,
    IDNST,
    LEGRAND,
    MARTIN,
    NOEL,
    PETIT,
    ROUX,
    UNKNOWN,
    agenda,
    load,
    sas_slot,
    sas_url,
)

SAS_ACCEPT = {"Accept": "application/json+fhir"}
PROFILE = "http://sas.fr/fhir/StructureDefinition/"
Resource = dict[str, Any]


@pytest.fixture
def sas(client: Any) -> Any:
    load(client, agenda())
    return client


def ask(client: Any, url: str, status: int = 200) -> Resource:
    """The answer to a SAS request; every Bundle must pass our SAS profile validator."""
    response = client.get(url, headers=SAS_ACCEPT)
    assert response.status_code == status, body(response)
    assert response.headers["Content-Type"].startswith("application/json+fhir")
    answer: Resource = body(response)
    if answer["resourceType"] == "Bundle":
        assert default_profiles().errors(answer) == []
    return answer


def of_type(bundle: Resource, kind: str) -> dict[str, Resource]:
    return {e["resource"]["id"]: e["resource"] for e in bundle.get("entry", [])
            if e["resource"]["resourceType"] == kind}


def slot_ids(bundle: Resource) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])
            if e["search"]["mode"] == "match"]


def test_one_practitioner_two_places(sas: Any) -> None:
    bundle = ask(sas, sas_url(MARTIN))
    assert bundle["type"] == "searchset"
    assert bundle["meta"]["profile"] == [PROFILE + "BundleAgregateur"]
    # Ordered by start; only free slots SAS may see, inside the window.
    assert slot_ids(bundle) == ["m-a-public", "m-a-pro-snp", "m-a-mixed", "m-b-cpts"]
    assert bundle["total"] == 4
    modes = Counter((e["resource"]["resourceType"], e["search"]["mode"])
                    for e in bundle["entry"])
    assert modes == {("Slot", "match"): 4, ("Schedule", "include"): 2,
                     ("Practitioner", "include"): 1, ("PractitionerRole", "include"): 2}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"{BASE_URL}/{resource['resourceType']}/{resource['id']}"
        expected = {"Slot": "FrSlotAgregateur", "Schedule": "FrScheduleAgregateur",
                    "Practitioner": "FrPractitionerAgregateur",
                    "PractitionerRole": "FrPractitionerRoleExerciceAgregateur"}
        assert resource["meta"]["profile"] == [PROFILE + expected[resource["resourceType"]]]
    schedules = of_type(bundle, "Schedule")
    assert schedules["sch-martin-a"]["actor"] == [
        {"reference": "Practitioner/martin"}, {"reference": "PractitionerRole/role-martin-a"}]
    assert schedules["sch-martin-b"]["actor"][1] == {
        "reference": "PractitionerRole/role-martin-b"}


def test_slot_shape_and_times(sas: Any) -> None:
    slots = of_type(ask(sas, sas_url(MARTIN)), "Slot")
    public = slots["m-a-public"]
    assert public["status"] == "free"
    assert public["start"] == "2030-03-10T09:00:00.000+01:00"
    assert public["end"] == "2030-03-10T09:20:00.000+01:00"
    # Stored in UTC: answered in Paris time with its real offset.
    assert slots["m-a-pro-snp"]["start"] == "2030-03-11T09:00:00.000+01:00"
    assert public["schedule"] == {"reference": "Schedule/sch-martin-a"}
    # The booking page of that slot: it carries a query string because SAS appends
    # `&origin=…` to it (the ANS kit does `comment + "&origin=sas-preprod"`).
    assert public["comment"] == "http://127.0.0.1:5000/agenda/sch-martin-a?creneau=m-a-public"
    assert public["appointmentType"]["coding"][0]["code"] == "ROUTINE"
    assert {c["code"] for c in slots["m-a-pro-snp"]["meta"]["security"]} == {"PRO", "SNP"}
    # The patient-only label of a mixed slot never leaves the server.
    assert slots["m-a-mixed"]["meta"]["security"] == [
        {"system": "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/"
                   "TRE-R314-TypeCreneau", "code": "PUBLIC"}]
    cpts = slots["m-b-cpts"]
    # Consultation types outside AMB/HH/VR are dropped, free text kept.
    assert cpts["serviceType"] == [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                     "code": "HH"}]},
        {"text": "Visite de contrôle"}]
    assert cpts["specialty"] == [{"text": "Soins palliatifs"}, {"text": "Gériatrie"}]
    assert cpts["appointmentType"]["coding"][0]["code"] == "WALKIN"


def test_practitioner_role_and_location_shape(sas: Any) -> None:
    bundle = ask(sas, sas_url(MARTIN))
    practitioner = of_type(bundle, "Practitioner")["martin"]
    assert practitioner["identifier"] == [{
        "type": {"coding": [{"system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203",
                             "code": "IDNPS"}]},
        "system": IDNPS, "value": MARTIN}]
    # Phones are published on the PractitionerRole, wherever the agenda stored them.
    assert "telecom" not in practitioner
    roles = of_type(bundle, "PractitionerRole")
    role_a = roles["role-martin-a"]
    (place,) = role_a["contained"]
    assert role_a["location"] == [{"reference": f"#{place['id']}"}]
    assert place["resourceType"] == "Location"
    assert place["meta"]["profile"] == [PROFILE + "FrLocationAgregateur"]
    # No identifier stored on the Location: an internal one derived from its address.
    assert place["identifier"][0]["type"]["coding"][0]["code"] == "INTRN"
    assert len(place["identifier"][0]["value"]) == 20
    # Two stored address lines become the one line the profile allows.
    assert place["address"] == {"line": ["3 rue Garibaldi, Bâtiment B"], "city": "Lyon",
                                "postalCode": "69006"}
    assert role_a["practitioner"] == {"reference": "Practitioner/martin"}
    # The role's own phone first, then the practitioner's.
    assert [t["value"] for t in role_a["telecom"]] == ["+33478000000", "+33472102030"]
    # FINESS stored without its prefix (type FINEG) is published prefixed.
    assert role_a["organization"]["identifier"]["system"] == IDNST
    assert role_a["organization"]["identifier"]["value"] == "1690000001"
    # An RPPS-rang cabinet id keeps its own prefix.
    assert roles["role-martin-b"]["organization"]["identifier"]["value"] == "41000000001701"


def test_unprefixed_rpps_and_adeli_are_found_and_answered_prefixed(sas: Any) -> None:
    bundle = ask(sas, sas_url(BLANC, ROUX))
    assert slot_ids(bundle) == ["blanc-1", "roux-1"]
    values = {p["id"]: p["identifier"][0]["value"] for p in of_type(bundle,
                                                                       "Practitioner").values()}
    assert values == {"blanc": BLANC, "roux": ROUX}
    # SIRET stored prefixed stays as is; a role without organisation has none.
    roles = of_type(bundle, "PractitionerRole")
    assert roles["role-blanc"]["organization"]["identifier"]["value"] == "312345678900012"
    assert "organization" not in roles["role-roux"]


def test_schedules_in_other_shapes_are_resolved(sas: Any) -> None:
    bundle = ask(sas, sas_url(NOEL, FAURE))
    assert slot_ids(bundle) == ["noel-1", "faure-1"]
    schedules = of_type(bundle, "Schedule")
    # Only the PractitionerRole was named: the practitioner comes from the role.
    assert schedules["sch-noel"]["actor"] == [{"reference": "Practitioner/noel"},
                                              {"reference": "PractitionerRole/role-noel"}]
    # Only the Practitioner and a Location were named: the role at that Location is used.
    assert schedules["sch-faure"]["actor"][1] == {"reference": "PractitionerRole/role-faure-c"}
    place = of_type(bundle, "PractitionerRole")["role-faure-c"]["contained"][0]
    assert place["address"]["line"] == ["1 place Bellecour"]


def test_unpublishable_and_inactive_practitioners_give_nothing(sas: Any) -> None:
    for identifier in (PETIT, LEGRAND, UNKNOWN):
        bundle = ask(sas, sas_url(identifier))
        assert bundle["total"] == 0
        assert "entry" not in bundle


def test_several_practitioners_in_one_search_each_included_once(sas: Any) -> None:
    bundle = ask(sas, sas_url(MARTIN, BLANC, ROUX, NOEL, FAURE, PETIT, UNKNOWN))
    assert bundle["total"] == 8
    keys = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
    assert len(keys) == len(set(keys))
    assert set(of_type(bundle, "Practitioner")) == {"martin", "blanc", "roux", "noel", "faure"}


def test_twenty_five_practitioners_at_once(client: Any) -> None:
    resources = [{"resourceType": "Location", "id": "loc", "address": {
        "line": ["5 rue de la Paix"], "city": "Paris", "postalCode": "75002"}}]
    identifiers = []
    for n in range(25):
        value = f"8100001{n:05d}"
        identifiers.append(value)
        resources += [
            {"resourceType": "Practitioner", "id": f"p{n}",
             "identifier": [{"system": IDNPS, "value": value}], "name": [{"family": f"N{n}"}]},
            {"resourceType": "PractitionerRole", "id": f"r{n}",
             "practitioner": {"reference": f"Practitioner/p{n}"},
             "location": [{"reference": "Location/loc"}]},
            {"resourceType": "Schedule", "id": f"s{n}",
             "actor": [{"reference": f"Practitioner/p{n}"},
                       {"reference": f"PractitionerRole/r{n}"}]},
            sas_slot(f"slot{n}", f"s{n}", f"2030-03-11T{8 + n % 10:02d}:{n:02d}:00+01:00",
                     f"2030-03-11T{8 + n % 10:02d}:{n:02d}:30+01:00", "PUBLIC"),
        ]
    load(client, resources)
    bundle = ask(client, sas_url(*identifiers))
    assert bundle["total"] == 25
    assert len(of_type(bundle, "Practitioner")) == 25
    assert len(of_type(bundle, "PractitionerRole")) == 25
    starts = [of_type(bundle, "Slot")[i]["start"] for i in slot_ids(bundle)]
    assert starts == sorted(starts)
    outcome = ask(client, sas_url(*identifiers, "810000199999"), status=400)
    assert "26 professionals" in outcome["issue"][0]["diagnostics"]


def test_empty_window_is_200_with_total_zero(sas: Any) -> None:
    bundle = ask(sas, sas_url(MARTIN, low="2030-04-01T00:00:00+02:00",
                              high="2030-04-03T00:00:00+02:00"))
    assert bundle["total"] == 0
    assert "entry" not in bundle
    assert bundle["meta"]["profile"] == [PROFILE + "BundleAgregateur"]


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"low": None}, "start=ge"),
    ({"high": None}, "start=le"),
    ({"low": "2030-03-1OT09:00"}, "malformed"),
    ({"high": "2030-03-13T09:00:01+01:00"}, "at most 72 h"),
    ({"low": "2030-03-10T09:00:00+01:00", "high": "2030-03-09T09:00:00+01:00"}, "ends before"),
    ({"status": "busy"}, "only free"),
    ({"system": "urn:oid:1.2.250.1.71.4.2.2"}, "national professional identifier"),
])
def test_rule_violations_are_400_with_an_outcome(sas: Any, kwargs: dict[str, Any],
                                                 words: str) -> None:
    outcome = ask(sas, sas_url(MARTIN, **kwargs), status=400)
    assert outcome["resourceType"] == "OperationOutcome"
    assert words in outcome["issue"][0]["diagnostics"]


def test_window_of_exactly_72_hours_without_offsets_is_accepted(sas: Any) -> None:
    # The SAS guide's own example sends local times without offset.
    bundle = ask(sas, sas_url(MARTIN, low="2030-03-10T09:00:00", high="2030-03-13T09:00:00"))
    assert slot_ids(bundle) == ["m-a-public", "m-a-pro-snp", "m-a-mixed", "m-b-cpts"]


def test_summer_time_offset(client: Any) -> None:
    resources = [r for r in agenda() if r["resourceType"] != "Slot"]
    resources.append(sas_slot("summer", "sch-blanc", "2030-07-01T07:00:00Z",
                              "2030-07-01T07:15:00Z", "PUBLIC"))
    load(client, resources)
    bundle = ask(client, sas_url(BLANC, low="2030-07-01T00:00:00+02:00",
                                 high="2030-07-02T00:00:00+02:00"))
    assert of_type(bundle, "Slot")["summer"]["start"] == "2030-07-01T09:00:00.000+02:00"


def test_changes_to_slots_reach_the_sas_answer(sas: Any) -> None:
    booked = sas_slot("blanc-1", "sch-blanc", "2030-03-10T15:00:00+01:00",
                      "2030-03-10T15:15:00+01:00", "PUBLIC", status="busy")
    assert sas.put("/fhir/Slot/blanc-1", json=booked).status_code == 200
    assert slot_ids(ask(sas, sas_url(BLANC))) == []
    freed = {**booked, "status": "free"}
    assert sas.put("/fhir/Slot/blanc-1", json=freed).status_code == 200
    assert slot_ids(ask(sas, sas_url(BLANC))) == ["blanc-1"]
    assert sas.delete("/fhir/Slot/blanc-1").status_code == 200
    assert slot_ids(ask(sas, sas_url(BLANC))) == []


def test_a_failed_transaction_leaves_the_sas_answer_unchanged(sas: Any) -> None:
    new_slot = sas_slot("blanc-2", "sch-blanc", "2030-03-10T16:00:00+01:00",
                        "2030-03-10T16:15:00+01:00", "PUBLIC")
    broken = {"resourceType": "Slot", "id": "broken", "status": "free"}  # no schedule/start
    response = sas.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": new_slot, "request": {"method": "PUT", "url": "Slot/blanc-2"}},
        {"resource": broken, "request": {"method": "PUT", "url": "Slot/broken"}}]})
    assert response.status_code == 422
    assert slot_ids(ask(sas, sas_url(BLANC))) == ["blanc-1"]


def test_same_chain_without_the_sas_include_is_an_ordinary_search(sas: Any) -> None:
    url = sas_url(MARTIN).replace("&_include:iterate=Schedule:actor", "")
    bundle = ask(sas, url)
    assert "meta" not in bundle or "profile" not in bundle["meta"]
    # Ordinary semantics: every free slot of the window, whatever its visibility.
    assert {"m-a-patient", "m-a-unlabelled"} <= set(slot_ids(bundle))
