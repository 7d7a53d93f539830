"""The CPTS offer: the individual slot search plus the CPTS includes, answered in the
sas-cpts-* profiles; slots shared with CPTS through plain FHIR writes; the projection kept
exact by every write that changes the answer. Both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from app.validation.profiles import default_profiles
from tests.factories import body
from tests.sas_data import IDNPS, MARTIN, NOEL, agenda, load, sas_slot
from tests.sas_offers import (
    CPTS_A_FINESS,
    CPTS_B_FINESS,
    IG,
    R66,
    cpts,
    cpts_url,
    of_type,
    put,
    share,
    slots,
    stored,
)
from tests.support.reindex import reindex_after_wiping

SAS_ACCEPT = {"Accept": "application/json+fhir"}
Resource = dict[str, Any]
EXAMPLES = (Path(__file__).resolve().parents[2] / "shared" / "reference" / "sas-ig"
            / "package" / "example")
INDIVIDUAL_SLOTS = ["m-a-public", "m-a-pro-snp", "m-a-mixed", "m-b-cpts"]
CPTS_SLOTS = ["c-one", "c-two", "c-same-cpts", "c-unlabelled", "c-unpublished"]


@pytest.fixture
def shared(client: Any) -> Any:
    load(client, agenda() + cpts())
    return client


def ask(client: Any, url: str) -> Resource:
    """A CPTS answer: 200, valid against our profiles (the guide's), every resource with its
    one unversioned profile."""
    response = client.get(url, headers=SAS_ACCEPT)
    assert response.status_code == 200, body(response)
    answer: Resource = body(response)
    assert answer["meta"]["profile"] == [IG + "sas-cpts-bundle-aggregator"]
    if answer["total"]:
        assert default_profiles().errors(answer) == []
    for entry in answer.get("entry", []):
        assert len(entry["resource"]["meta"]["profile"]) == 1
    return answer




def references(slot: Resource) -> list[str]:
    """The CPTS offers a slot names, in order (the kit's FHIRPath, written out)."""
    return [extension["valueReference"]["reference"]
            for concept in slot.get("serviceType", [])
            if any(c.get("code") == "604" for c in concept.get("coding", []))
            for extension in concept.get("extension", [])]


def test_the_cpts_answer(shared: Any) -> None:
    answer = ask(shared, cpts_url(MARTIN))
    found = slots(answer)
    assert list(found) == sorted(INDIVIDUAL_SLOTS + CPTS_SLOTS, key=lambda s: found[s]["start"])
    assert answer["total"] == 9
    assert {s["meta"]["profile"][0] for s in found.values()} == {IG + "sas-cpts-slot-aggregator"}
    assert references(found["c-one"]) == ["HealthcareService/hs-a"]
    # A slot visible to two CPTS names both; two offers of one CPTS are one HealthcareService.
    assert references(found["c-two"]) == ["HealthcareService/hs-a", "HealthcareService/hs-b"]
    assert references(found["c-same-cpts"]) == ["HealthcareService/hs-a"]
    # No CPTS label, or CPTS not publishable (a SIRET only, an inactive offer): no link.
    for plain in ("c-unlabelled", "c-unpublished", "m-b-cpts", "m-a-public"):
        assert references(found[plain]) == [], plain
        assert not any(c.get("system") == R66 for concept in found[plain].get(
            "serviceType", []) for c in concept.get("coding", []))
    concept = found["c-two"]["serviceType"][-1]
    assert concept["coding"] == [{"system": R66, "code": "604"}]
    assert concept["extension"][0]["url"] == (
        "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType")
    assert [c["meta"]["security"] for c in (found["c-one"],)] == [[
        {"system": found["c-one"]["meta"]["security"][0]["system"], "code": "PUBLIC"},
        {"system": found["c-one"]["meta"]["security"][0]["system"], "code": "CPTS"}]]

    services = of_type(answer, "HealthcareService")
    organizations = of_type(answer, "Organization")
    assert sorted(services) == ["hs-a", "hs-b"] and sorted(organizations) == ["cpts-a", "cpts-b"]
    assert services["hs-a"]["providedBy"] == {"reference": "Organization/cpts-a"}
    assert services["hs-a"]["meta"]["profile"] == [IG + "sas-cpts-healthcareservice-aggregator"]
    lyon_nord = organizations["cpts-a"]
    assert lyon_nord["identifier"] == [{
        "type": {"coding": [{"system": "http://interopsante.org/fhir/CodeSystem/"
                             "fr-location-identifier-type", "code": "IDNST"}]},
        "system": "urn:oid:1.2.250.1.71.4.2.2", "value": CPTS_A_FINESS}]
    assert lyon_nord["name"] == "CPTS Lyon Nord"
    assert lyon_nord["telecom"][0] == {"system": "phone", "value": "+33478000001"}
    # The FINESS stored unprefixed under the FINESS system is answered prefixed.
    assert organizations["cpts-b"]["identifier"][0]["value"] == CPTS_B_FINESS
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in answer["entry"]}
    assert ("HealthcareService", "include") in modes and ("Organization", "include") in modes


def test_slots_not_shared_follow_the_individual_rules(shared: Any) -> None:
    individual = body(shared.get(
        cpts_url(MARTIN).replace("&_include=Slot:service-type-reference", "").replace(
            "&_include:iterate=HealthcareService:organization", ""), headers=SAS_ACCEPT))
    assert individual["meta"]["profile"] == ["http://sas.fr/fhir/StructureDefinition/"
                                             "BundleAgregateur"]
    cpts_answer = ask(shared, cpts_url(MARTIN))
    for slot_id in INDIVIDUAL_SLOTS + ["c-unlabelled", "c-unpublished"]:
        mine, theirs = slots(individual)[slot_id], slots(cpts_answer)[slot_id]
        assert {**mine, "meta": {**mine["meta"], "profile": theirs["meta"]["profile"]}} == theirs
    # The individual answer never carries a CPTS category concept without its reference.
    assert "604" not in json.dumps(slots(individual))
    for kind in ("Schedule", "Practitioner", "PractitionerRole"):
        assert of_type(individual, kind) == of_type(cpts_answer, kind)


def test_an_answer_without_cpts_slots(shared: Any) -> None:
    answer = ask(shared, cpts_url(NOEL))
    assert list(slots(answer)) == ["noel-1"]
    assert of_type(answer, "HealthcareService") == {} == of_type(answer, "Organization")
    empty = ask(shared, cpts_url("810000000099"))
    assert empty["total"] == 0 and "entry" not in empty


def test_the_kit_request_without_offsets(shared: Any) -> None:
    url = (f"/fhir/Slot?_include=Slot:schedule&_include=Slot:service-type-reference"
           f"&_include:iterate=Schedule:actor&_include:iterate=HealthcareService:organization"
           f"&schedule.actor:Practitioner.identifier={IDNPS}%7C{MARTIN}"
           f"&start=ge2030-03-10T10:00:00.000&start=le2030-03-12T23:59:59.000&status=free")
    answer = ask(shared, url)
    assert "c-two" in slots(answer)
    assert answer["link"] == [{"relation": "self", "url": "http://localhost" + url}]


def test_the_sas_rules_apply(shared: Any) -> None:
    response = shared.get(cpts_url(MARTIN, status=None), headers=SAS_ACCEPT)
    assert response.status_code == 400
    assert "status=free" in body(response)["issue"][0]["diagnostics"]
    strict = {**SAS_ACCEPT, "Prefer": "handling=strict"}
    assert shared.get(cpts_url(MARTIN), headers=strict).status_code == 200
    response = shared.get(cpts_url(MARTIN) + "&_include=Slot:specialty", headers=strict)
    assert response.status_code == 400
    assert "Slot:service-type-reference" in body(response)["issue"][0]["diagnostics"]


# -- the projection, exact on every write that changes the answer -----------------------------



def test_sharing_and_unsharing_a_slot(shared: Any) -> None:
    slot = stored(shared, "Slot", "m-a-public")
    slot["meta"]["security"].append({**slot["meta"]["security"][0], "code": "CPTS"})
    slot["serviceType"] += share("hs-b")
    put(shared, slot)
    assert references(slots(ask(shared, cpts_url(MARTIN)))["m-a-public"]) == [
        "HealthcareService/hs-b"]
    slot["serviceType"] = slot["serviceType"][:1]
    put(shared, slot)
    assert references(slots(ask(shared, cpts_url(MARTIN)))["m-a-public"]) == []
    assert shared.delete("/fhir/Slot/c-two").status_code == 200
    answer = ask(shared, cpts_url(MARTIN))
    assert "c-two" not in slots(answer) and "hs-b" not in of_type(answer, "HealthcareService")


def test_changes_to_an_offer_or_a_cpts_reach_the_answer(shared: Any) -> None:
    cpts_b = stored(shared, "Organization", "cpts-b")
    put(shared, {**cpts_b, "name": "CPTS Lyon Sud-Est"})
    assert of_type(ask(shared, cpts_url(MARTIN)), "Organization")["cpts-b"]["name"] == (
        "CPTS Lyon Sud-Est")
    # The CPTS loses its FINESS: its offers are no longer published, slots lose the link.
    put(shared, {**cpts_b, "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.2",
                                            "value": "398765432100019"}]})
    answer = ask(shared, cpts_url(MARTIN))
    assert references(slots(answer)["c-two"]) == ["HealthcareService/hs-a"]
    assert "cpts-b" not in of_type(answer, "Organization")
    # An offer moves to another CPTS (now one HealthcareService per CPTS), then is deleted.
    hs_b = stored(shared, "HealthcareService", "hs-b")
    put(shared, {**hs_b, "providedBy": {"reference": "Organization/cpts-a"}})
    assert references(slots(ask(shared, cpts_url(MARTIN)))["c-two"]) == [
        "HealthcareService/hs-a"]
    assert shared.delete("/fhir/HealthcareService/hs-a").status_code == 200
    answer = ask(shared, cpts_url(MARTIN))
    assert references(slots(answer)["c-one"]) == []
    # hs-b and hs-a2 are both offers of CPTS A now: the answer names one, the first.
    assert references(slots(answer)["c-two"]) == ["HealthcareService/hs-a2"]
    # Deactivating the CPTS withdraws every offer it provides.
    put(shared, {**stored(shared, "Organization", "cpts-a"), "active": False})
    assert of_type(ask(shared, cpts_url(MARTIN)), "HealthcareService") == {}


def test_an_offer_given_its_cpts_after_the_slots(client: Any) -> None:
    load(client, agenda() + [r for r in cpts() if r["id"] == "cpts-a"] + [
        {"resourceType": "HealthcareService", "id": "hs-late", "name": "SNP"},
        sas_slot("early", "sch-martin-a", "2030-03-10T12:30:00+01:00",
                 "2030-03-10T12:50:00+01:00", "CPTS", serviceType=share("hs-late"))])
    assert references(slots(ask(client, cpts_url(MARTIN)))["early"]) == []
    put(client, {"resourceType": "HealthcareService", "id": "hs-late", "name": "SNP",
                  "providedBy": {"reference": "Organization/cpts-a"}})
    assert references(slots(ask(client, cpts_url(MARTIN)))["early"]) == [
        "HealthcareService/hs-late"]


def _projections(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        return (conn.execute(text("SELECT * FROM sas_cpts ORDER BY 1")).all(),
                conn.execute(text("SELECT slot_id, cpts, fragment FROM sas_slot"
                                  " ORDER BY slot_id")).all())


def test_reindex_rebuilds_the_cpts_projection_identically(shared: Any, app: Flask,
                                                          engine: Engine) -> None:
    incremental = _projections(engine)
    assert [row[0] for row in incremental[0]] == ["hs-a", "hs-a2", "hs-b"]
    output = reindex_after_wiping(app, engine, "DELETE FROM sas_cpts",
                                  "UPDATE sas_slot SET cpts = NULL")
    assert "3 CPTS offers" in output
    assert _projections(engine) == incremental


def test_the_service_type_reference_search_parameter(shared: Any) -> None:
    response = shared.get("/fhir/Slot?service-type-reference=HealthcareService/hs-b"
                          "&_include=Slot:service-type-reference")
    found = body(response)
    assert sorted(e["resource"]["id"] for e in found["entry"]
                  if e["search"]["mode"] == "match") == ["c-two", "c-unlabelled"]
    assert [e["resource"]["id"] for e in found["entry"]
            if e["search"]["mode"] == "include"] == ["hs-a", "hs-b"]


# -- the guide's example, as stored data ---------------------------------------------------------

@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/reference is not available")
def test_the_guides_cpts_example_comes_back(client: Any) -> None:
    names = ["Practitioner-ExamplePractitioner.json",
             "PractitionerRole-ExamplePractitionerRoleAgregateur.json",
             "Schedule-ExampleSchedule.json", "Slot-ExampleSlotCPTS1.json",
             "Slot-ExampleSlotCPTS2.json", "HealthcareService-ExampleHealthcareServiceCPTS1.json",
             "HealthcareService-ExampleHealthcareServiceCPTS2.json",
             "Organization-ExampleOrgaCPTS1.json", "Organization-ExampleOrgaCPTS2.json"]
    resources = [json.loads((EXAMPLES / name).read_text()) for name in names]
    for resource in resources:
        resource.pop("text", None)
        if resource["resourceType"] == "Slot":  # the example's slot, moved into 2030
            resource["start"] = resource["start"].replace("2024-06-12", "2030-03-10")
            resource["end"] = resource["end"].replace("2024-06-12", "2030-03-10")
    load(client, resources)
    answer = ask(client, cpts_url("810002909371"))
    found = slots(answer)
    assert sorted(found) == ["ExampleSlotCPTS1", "ExampleSlotCPTS2"]
    assert references(found["ExampleSlotCPTS1"]) == [
        "HealthcareService/ExampleHealthcareServiceCPTS1"]
    assert references(found["ExampleSlotCPTS2"]) == [
        "HealthcareService/ExampleHealthcareServiceCPTS1",
        "HealthcareService/ExampleHealthcareServiceCPTS2"]
    assert sorted(of_type(answer, "Organization")) == ["ExampleOrgaCPTS1", "ExampleOrgaCPTS2"]
    assert of_type(answer, "Organization")["ExampleOrgaCPTS1"]["identifier"][0]["value"] == (
        "1950047225")
    assert found["ExampleSlotCPTS1"]["start"] == "2030-03-10T15:40:00.000+01:00"
