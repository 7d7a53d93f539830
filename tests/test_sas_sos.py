"""The SOS Médecins offer: the Schedule search with reverse chaining SAS sends for the fixed
consultation places of 1 to 25 associations, answered in the sas-sos-* profiles from the
projections, kept exact by every write that changes the answer. Both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from app.validation.profiles import default_profiles
from tests.factories import body
from tests.sas_data import ACT, IDNPS, IDNST, agenda, load
from tests.sas_offers import IG, LORIENT, RENNES, of_type, put, slots, sos, sos_url, stored
from tests.support.reindex import reindex_after_wiping

SAS_ACCEPT = {"Accept": "application/json+fhir"}
Resource = dict[str, Any]
EXAMPLES = (Path(__file__).resolve().parents[2] / "shared" / "reference" / "sas-ig"
            / "package" / "example")
PROFILES = {kind: IG + f"sas-sos-{kind.lower()}-aggregator"
            for kind in ("Slot", "Schedule", "Location", "Organization")}


@pytest.fixture
def associations(client: Any) -> Any:
    load(client, agenda() + sos())
    return client


def ask(client: Any, url: str, status: int = 200) -> Resource:
    response = client.get(url, headers=SAS_ACCEPT)
    assert response.status_code == status, body(response)
    answer: Resource = body(response)
    if status == 200:
        assert answer["meta"]["profile"] == [IG + "sas-sos-bundle-aggregator"]
        assert answer["total"] == len(slots(answer))
        if answer["total"]:
            assert default_profiles().errors(answer) == []
        for entry in answer.get("entry", []):
            resource = entry["resource"]
            assert resource["meta"]["profile"] == [PROFILES[resource["resourceType"]]]
    return answer




def refused(client: Any, url: str, *words: str) -> Resource:
    issue: Resource = ask(client, url, 400)["issue"][0]
    assert all(word in issue["diagnostics"] for word in words), issue
    return issue


def test_one_association_two_places(associations: Any) -> None:
    answer = ask(associations, sos_url(RENNES))
    # Only the window's free slots SOS may see (public or SAS-dedicated), by start.
    assert list(slots(answer)) == ["n-1", "n-public-pro", "c-1"]
    assert sorted(of_type(answer, "Schedule")) == ["sch-cleunay", "sch-nord"]
    assert sorted(of_type(answer, "Location")) == ["pfg-cleunay", "pfg-nord"]
    (association,) = of_type(answer, "Organization").values()
    assert association["identifier"][0]["value"] == RENNES
    assert association["name"] == "SOS Médecins de Rennes"
    schedules = of_type(answer, "Schedule")
    # The place is the first actor, whoever else the agenda named.
    assert schedules["sch-cleunay"]["actor"] == [{"reference": "Location/pfg-cleunay"}]
    nord = of_type(answer, "Location")["pfg-nord"]
    assert nord["managingOrganization"] == {"reference": "Organization/sos-rennes"}
    assert nord["telecom"][0] == {"system": "phone", "value": "+33299246789"}
    assert nord["identifier"][0]["type"]["coding"][0]["code"] == "INTRN"
    assert nord["identifier"][0]["value"] == "1111111111"
    assert nord["address"] == {"line": ["320 avenue Général George Patton"], "city": "RENNES",
                               "postalCode": "35700"}
    assert nord["hoursOfOperation"][0]["daysOfWeek"] == ["tue", "wed"]
    found = slots(answer)
    assert found["n-1"]["schedule"] == {"reference": "Schedule/sch-nord"}
    assert [label["code"] for label in found["n-1"]["meta"]["security"]] == ["PUBLIC", "SNP"]
    assert [label["code"] for label in found["n-public-pro"]["meta"]["security"]] == ["PUBLIC"]
    # Consultation types only (AMB, HH, VR); free text kept.
    assert found["n-1"]["serviceType"] == [
        {"coding": [{"system": ACT, "code": "AMB"}]}, {"coding": [{"system": ACT, "code": "VR"}]},
        {"text": "Consultation"}]
    assert found["n-1"]["start"] == "2030-03-10T09:00:00.000+01:00"
    assert found["n-1"]["comment"].startswith("http://127.0.0.1:5000/agenda/sch-nord")
    assert {e["search"]["mode"] for e in answer["entry"]
            if e["resource"]["resourceType"] != "Slot"} == {"include"}


def test_two_associations_and_the_siret_forms(associations: Any) -> None:
    answer = ask(associations, sos_url(RENNES, LORIENT))
    assert list(slots(answer)) == ["n-1", "n-public-pro", "l-1", "l-2", "c-1"]
    assert sorted(of_type(answer, "Organization")) == ["sos-lorient", "sos-rennes"]
    # Stored unprefixed under a SIRET system: answered prefixed under the IDNST OID.
    lorient = of_type(answer, "Organization")["sos-lorient"]
    assert lorient["identifier"][0]["system"] == IDNST
    assert lorient["identifier"][0]["value"] == LORIENT
    # As the ANS kit sends it (RPPS OID), unprefixed, or with no system: the same places.
    for url in (sos_url(LORIENT, system=IDNPS), sos_url(LORIENT[1:]),
                sos_url(LORIENT, system="")):
        assert list(slots(ask(associations, url))) == ["l-1", "l-2"], url


def test_places_that_are_not_published(associations: Any) -> None:
    # A place without an address, a centre whose structure has no SIRET, unknown SIRETs.
    assert ask(associations, sos_url("313131313100013"))["total"] == 0
    assert "sch-sans-adresse" not in of_type(ask(associations, sos_url(RENNES)), "Schedule")
    empty = ask(associations, sos_url("313131313100013"))
    assert "entry" not in empty and empty["link"][0]["relation"] == "self"


def test_the_kit_request(associations: Any) -> None:
    query = ("_has:Slot:schedule:start=ge2030-03-10T09:00:00"
             "&_has:Slot:schedule:start=le2030-03-12T23:59:59&_has:Slot:schedule:status=free"
             "&_include=Schedule:actor:Location&_include:iterate=Location:organization"
             f"&_revinclude=Slot:schedule&actor:Location.organization.identifier="
             f"{IDNPS}%7C{RENNES}")
    answer = ask(associations, "/fhir/Schedule?" + query)
    assert list(slots(answer)) == ["n-1", "n-public-pro", "c-1"]
    assert answer["link"] == [{"relation": "self", "url": "http://localhost/fhir/Schedule?"
                                                          + query}]
    # The guide's example self link carries _count=1000: accepted.
    assert ask(associations, sos_url(RENNES) + "&_count=1000")["total"] == 3


def test_the_sas_rules(associations: Any) -> None:
    issue = refused(associations, sos_url(), "SIRET is required")
    assert issue["expression"] == ["actor:Location.organization.identifier"]
    many = [f"3{n:014d}" for n in range(26)]
    assert refused(associations, sos_url(*many), "26 associations")["code"] == "too-costly"
    assert len(slots(ask(associations, sos_url(*many[:24], RENNES)))) == 3
    refused(associations, sos_url(RENNES, high="2030-03-13T09:00:01+01:00"), "at most 72 h")
    refused(associations, sos_url(RENNES, low=None), "start=ge")
    refused(associations, sos_url(RENNES, status=None), "status=free is required")
    refused(associations, sos_url(RENNES, status="busy"), "only free slots")
    refused(associations, sos_url("12345"), "not the SIRET")
    strict = {**SAS_ACCEPT, "Prefer": "handling=strict"}
    response = associations.get(sos_url(RENNES) + "&_include=Schedule:actor", headers=strict)
    assert response.status_code == 400, body(response)
    response = associations.get(sos_url(RENNES) + "&name=x", headers=strict)
    assert response.status_code == 400 and "name" in body(response)["issue"][0]["diagnostics"]


def test_without_the_revinclude_it_is_an_ordinary_search(associations: Any) -> None:
    url = (f"/fhir/Schedule?actor:Location.organization.identifier={IDNST}|{RENNES}"
           "&_has:Slot:schedule:status=free")
    answer = body(associations.get(url))
    assert "meta" not in answer or answer["meta"].get("profile") is None
    assert sorted(e["resource"]["id"] for e in answer["entry"]) == [
        "sch-cleunay", "sch-nord", "sch-sans-adresse"]


# -- the projection, exact on every write that changes the answer -----------------------------



def test_changes_to_places_and_associations_reach_the_answer(associations: Any) -> None:
    nord = stored(associations, "Location", "pfg-nord")
    put(associations, {**nord, "name": "Rennes Nord (Patton)"})
    answer = ask(associations, sos_url(RENNES))
    assert of_type(answer, "Location")["pfg-nord"]["name"] == "Rennes Nord (Patton)"
    # The place moves to Lorient's association.
    put(associations, {**nord, "managingOrganization": {
        "reference": "Organization/sos-lorient"}})
    assert list(slots(ask(associations, sos_url(RENNES)))) == ["c-1"]
    assert "n-1" in slots(ask(associations, sos_url(LORIENT)))
    # The association gets a new SIRET; then it is deactivated.
    rennes = stored(associations, "Organization", "sos-rennes")
    put(associations, {**rennes, "identifier": [{"system": IDNST, "value": "311111111100011"}]})
    assert ask(associations, sos_url(RENNES))["total"] == 0
    assert list(slots(ask(associations, sos_url("311111111100011")))) == ["c-1"]
    put(associations, {**rennes, "active": False})
    assert ask(associations, sos_url("311111111100011"))["total"] == 0


def test_a_schedule_becoming_a_place_brings_its_slots(associations: Any) -> None:
    # The place without an address gets one: its Schedule and slot are published.
    place = stored(associations, "Location", "pfg-sans-adresse")
    put(associations, {**place, "address": {"line": ["5 rue de Brest"], "city": "RENNES",
                                             "postalCode": "35000"}})
    assert "sa-1" in slots(ask(associations, sos_url(RENNES)))
    # A Schedule stops naming its place, then a slot changes and is deleted.
    cleunay = stored(associations, "Schedule", "sch-cleunay")
    put(associations, {**cleunay, "actor": [{"reference": "Practitioner/martin"}]})
    assert "c-1" not in slots(ask(associations, sos_url(RENNES)))
    slot = stored(associations, "Slot", "n-1")
    slot["meta"]["security"] = [{**slot["meta"]["security"][0], "code": "PRO"}]
    put(associations, slot)
    assert list(slots(ask(associations, sos_url(RENNES)))) == ["n-public-pro", "sa-1"]
    assert associations.delete("/fhir/Slot/n-public-pro").status_code == 200
    assert list(slots(ask(associations, sos_url(RENNES)))) == ["sa-1"]
    assert associations.delete("/fhir/Schedule/sch-sans-adresse").status_code == 200
    assert ask(associations, sos_url(RENNES))["total"] == 0


def _projections(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        return (conn.execute(text("SELECT * FROM sas_sos_place ORDER BY 1, 2")).all(),
                conn.execute(text("SELECT slot_id, sos FROM sas_slot WHERE sos IS NOT NULL"
                                  " ORDER BY slot_id")).all())


def test_reindex_rebuilds_the_sos_projection_identically(associations: Any, app: Flask,
                                                         engine: Engine) -> None:
    incremental = _projections(engine)
    assert [row[0] for row in incremental[0]] == ["sch-cleunay", "sch-lorient", "sch-nord"]
    assert [row[0] for row in incremental[1]] == [
        "c-1", "l-1", "l-2", "n-1", "n-late", "n-public-pro"]
    output = reindex_after_wiping(app, engine, "DELETE FROM sas_sos_place",
                                  "UPDATE sas_slot SET sos = NULL")
    assert "3 SOS Médecins places" in output
    assert _projections(engine) == incremental


# -- the guide's example, as stored data ---------------------------------------------------------

@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/reference is not available")
def test_the_guides_sos_example_comes_back(client: Any) -> None:
    example = json.loads((EXAMPLES / "Bundle-ExampleBundleAgregateurSOS.json").read_text())
    resources = [entry["resource"] for entry in example["entry"]]
    for resource in resources:
        resource["meta"].pop("profile")
        if resource["resourceType"] == "Slot":  # moved from August 2023 to March 2030
            for key in ("start", "end"):
                resource[key] = resource[key].replace("2023-08-1", "2030-03-1").replace(
                    "+02:00", "+01:00")
    load(client, resources)
    url = sos_url("334173748400020", "392080466300010", low="2030-03-18T09:00:00+01:00",
                  high="2030-03-20T08:00:00+01:00")
    answer = ask(client, url)
    expected = {e["resource"]["id"] for e in example["entry"]}
    returned = {e["resource"]["id"] for e in answer["entry"]}
    assert returned == expected
    assert answer["total"] == example["total"] == 4
    for entry in example["entry"]:
        mine = next(e["resource"] for e in answer["entry"]
                    if e["resource"]["id"] == entry["resource"]["id"])
        theirs = {k: v for k, v in entry["resource"].items() if k not in {"meta", "comment"}}
        assert {k: v for k, v in mine.items() if k in theirs} == theirs, mine["id"]
    assert quote("|") in answer["link"][0]["url"]
