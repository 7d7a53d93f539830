"""INT_R01 whatever the stored shape: each valid way an agenda may store a practice place
(Location referenced or contained, structure as an Organization or a logical identifier,
phones on any of three resources, RPPS under either system, prefixed or not, times in any
offset) gives the same SAS answer, apart from ids; and the SAS guide's own example
resources, loaded as stored data, come back in the SAS answer. Both databases."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.validation.profiles import default_profiles
from tests.factories import body
from tests.sas_data import IDNPS, IDNST, load, sas_slot, sas_url

Resource = dict[str, Any]
RPPS_FR_CORE = "https://rpps.esante.gouv.fr"
FINESS = "http://finess.sante.gouv.fr"
EXAMPLES = (Path(__file__).resolve().parents[2] / "shared" / "reference" / "sas-ig"
            / "package" / "example")

# One practitioner per shape: (name, stored identifier, SAS identifier asked for).
SHAPES = ("referenced", "role-contained", "schedule-contained", "actor-location",
          "location-managed", "org-contained")
RPPS = {shape: f"1000000{index:04d}" for index, shape in enumerate(SHAPES, start=1)}
PHONES = {"referenced": "04 72 10 20 30", "role-contained": "04.72.10.20.30",
          "schedule-contained": "+33 4 72 10 20 30", "actor-location": "0033472102030",
          "location-managed": "+33 (0)4 72 10 20 30", "org-contained": "0472102030"}
# The same two instants, written as each agenda would.
TIMES = {
    "referenced": ("2030-03-10T09:00:00+01:00", "2030-03-10T09:20:00+01:00",
                   "2030-03-11T14:00:00+01:00", "2030-03-11T14:30:00+01:00"),
    "role-contained": ("2030-03-10T08:00:00Z", "2030-03-10T08:20:00Z",
                       "2030-03-11T13:00:00Z", "2030-03-11T13:30:00Z"),
    "schedule-contained": ("2030-03-10T08:00:00.000Z", "2030-03-10T08:20:00.000Z",
                           "2030-03-11T13:00:00.000Z", "2030-03-11T13:30:00.000Z"),
    "actor-location": ("2030-03-10T10:00:00+02:00", "2030-03-10T10:20:00+02:00",
                       "2030-03-11T15:00:00+02:00", "2030-03-11T15:30:00+02:00"),
    "location-managed": ("2030-03-10T03:00:00-05:00", "2030-03-10T03:20:00-05:00",
                         "2030-03-11T08:00:00-05:00", "2030-03-11T08:30:00-05:00"),
    "org-contained": ("2030-03-10T09:00:00.000+01:00", "2030-03-10T09:20:00.000+01:00",
                      "2030-03-11T14:00:00.000+01:00", "2030-03-11T14:30:00.000+01:00"),
}
ADDRESS = {"line": ["3 rue Garibaldi"], "city": "Lyon", "postalCode": "69006"}
FINESS_ORG = {"resourceType": "Organization", "name": "Centre Garibaldi",
              "identifier": [{"system": IDNST, "value": "690000001"}]}


def _telecom(shape: str) -> list[Resource]:
    return [{"system": "phone", "value": PHONES[shape]}]


def _practitioner(shape: str) -> Resource:
    rpps = RPPS[shape]
    identifiers = {
        "referenced": [{"system": IDNPS, "value": "8" + rpps}],
        "role-contained": [{"system": IDNPS, "value": rpps}],
        "schedule-contained": [{"system": RPPS_FR_CORE, "value": rpps}],
        "actor-location": [{"system": RPPS_FR_CORE, "value": rpps},
                           {"system": IDNPS, "value": "8" + rpps}],
        "location-managed": [{"system": RPPS_FR_CORE, "value": rpps}],
        "org-contained": [{"system": IDNPS, "value": "8" + rpps}],
    }[shape]
    person: Resource = {"resourceType": "Practitioner", "id": f"p-{shape}", "active": True,
                        "identifier": identifiers,
                        "name": [{"family": "Garnier", "given": ["Alice"]}]}
    if shape in {"role-contained", "org-contained"}:
        person["telecom"] = _telecom(shape)
    return person


def _resources(shape: str) -> list[Resource]:
    """Practitioner, role, schedule (and Location/Organization when stored apart)."""
    pid, rid, sid = f"p-{shape}", f"r-{shape}", f"s-{shape}"
    role: Resource = {"resourceType": "PractitionerRole", "id": rid, "active": True,
                      "practitioner": {"reference": f"Practitioner/{pid}"}}
    schedule: Resource = {"resourceType": "Schedule", "id": sid, "active": True,
                          "actor": [{"reference": f"Practitioner/{pid}"},
                                    {"reference": f"PractitionerRole/{rid}"}]}
    location: Resource = {"resourceType": "Location", "name": "Cabinet Garibaldi",
                          "address": copy.deepcopy(ADDRESS)}
    stored: list[Resource] = [_practitioner(shape)]
    if shape == "referenced":
        stored += [{**FINESS_ORG, "id": "o-referenced"},
                   {**location, "id": "l-referenced"}]
        role.update(location=[{"reference": "Location/l-referenced"}],
                    organization={"reference": "Organization/o-referenced"},
                    telecom=_telecom(shape))
    elif shape == "role-contained":
        role.update(contained=[{**location, "id": "loc1"}], location=[{"reference": "#loc1"}],
                    organization={"identifier": {"system": IDNST, "value": "1690000001"}})
    elif shape == "schedule-contained":
        stored.append({**FINESS_ORG, "id": "o-schedule"})
        schedule["contained"] = [{**location, "id": "place", "telecom": _telecom(shape),
                                  "managingOrganization": {
                                      "reference": "Organization/o-schedule"}}]
        schedule["actor"].append({"reference": "#place"})
    elif shape == "actor-location":
        stored.append({**location, "id": "l-actor"})
        schedule["actor"] = [{"reference": f"Practitioner/{pid}"},
                             {"reference": "Location/l-actor"}]
        role.update(organization={"identifier": {"system": FINESS, "value": "690000001"}},
                    telecom=_telecom(shape))
    elif shape == "location-managed":
        stored.append({**location, "id": "l-managed", "telecom": _telecom(shape),
                       "managingOrganization": {"identifier": {
                           "system": IDNST, "value": "690000001"}}})
        role["location"] = [{"reference": "Location/l-managed"}]
    else:  # org-contained: the Organization and the Location both inside the role
        role.update(contained=[{**FINESS_ORG, "id": "org"}, {**location, "id": "here"}],
                    organization={"reference": "#org"}, location=[{"reference": "#here"}])
    first, first_end, second, second_end = TIMES[shape]
    slots = [sas_slot(f"{shape}-1", sid, first, first_end, "PUBLIC"),
             sas_slot(f"{shape}-2", sid, second, second_end, "PRO", "SNP")]
    return [*stored, role, schedule, *slots]


def _skeleton(bundle: Resource) -> Resource:
    """The answer without what names the stored resources: ids, references, national id,
    the booking link's Schedule id, the Bundle's own id and time."""
    ids = {e["resource"]["id"] for e in bundle["entry"]}
    ids |= {c["id"] for e in bundle["entry"] for c in e["resource"].get("contained", [])}

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("<id>" if k in {"id", "fullUrl"} else clean(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            for known in sorted(ids, key=len, reverse=True):
                value = value.replace(known, "<id>")
            return "<idnps>" if value.startswith("8100000") else value
        return value

    entries = [clean(e) for e in bundle["entry"]]
    return {"total": bundle["total"], "entry": entries}


@pytest.fixture
def shaped(client: Any) -> Any:
    load(client, [r for shape in SHAPES for r in _resources(shape)])
    return client


def _answer(client: Any, *identifiers: str) -> Resource:
    response = client.get(sas_url(*identifiers), headers={"Accept": "application/json+fhir"})
    assert response.status_code == 200, body(response)
    answer: Resource = body(response)
    assert default_profiles().errors(answer) == []
    return answer


def test_every_stored_shape_gives_the_same_answer(shaped: Any) -> None:
    answers = {shape: _answer(shaped, "8" + RPPS[shape]) for shape in SHAPES}
    reference = answers["referenced"]
    assert reference["total"] == 2
    for shape, answer in answers.items():
        assert _skeleton(answer) == _skeleton(reference), shape


def test_the_common_answer_is_the_sas_shape(shaped: Any) -> None:
    answer = _answer(shaped, "8" + RPPS["role-contained"])
    resources = {e["resource"]["resourceType"]: e["resource"] for e in answer["entry"]}
    slots = [e["resource"] for e in answer["entry"] if e["search"]["mode"] == "match"]
    # Times stored in UTC are answered in Paris time, with milliseconds and the offset.
    assert [(s["start"], s["end"]) for s in slots] == [
        ("2030-03-10T09:00:00.000+01:00", "2030-03-10T09:20:00.000+01:00"),
        ("2030-03-11T14:00:00.000+01:00", "2030-03-11T14:30:00.000+01:00")]
    person = resources["Practitioner"]
    assert person["identifier"][0]["system"] == IDNPS
    assert person["identifier"][0]["value"] == "8" + RPPS["role-contained"]
    role = resources["PractitionerRole"]
    assert role["telecom"] == [{"system": "phone", "value": "+33472102030"}]
    assert role["organization"]["identifier"]["value"] == "1690000001"
    (place,) = role["contained"]
    assert role["location"] == [{"reference": f"#{place['id']}"}]
    assert place["address"] == ADDRESS
    assert place["name"] == "Cabinet Garibaldi"


def test_rpps_under_either_system_is_found_by_any_form_of_the_id(shaped: Any) -> None:
    rpps = RPPS["schedule-contained"]
    for asked in ("8" + rpps, rpps):
        assert _answer(shaped, asked)["total"] == 2
    # Ordinary FHIR search by the national id finds the FR Core RPPS too.
    response = shaped.get(f"/fhir/Practitioner?identifier={IDNPS}|8{rpps}")
    assert [e["resource"]["id"] for e in body(response)["entry"]] == ["p-schedule-contained"]


def test_a_change_to_a_contained_place_reaches_the_answer(shaped: Any) -> None:
    role = next(r for r in _resources("role-contained") if r["id"] == "r-role-contained")
    role["contained"][0]["address"] = {"line": ["8 quai Saint-Vincent"], "city": "Lyon",
                                       "postalCode": "69001"}
    assert shaped.put("/fhir/PractitionerRole/r-role-contained", json=role).status_code == 200
    answer = _answer(shaped, "8" + RPPS["role-contained"])
    role_answer = next(e["resource"] for e in answer["entry"]
                       if e["resource"]["resourceType"] == "PractitionerRole")
    assert role_answer["contained"][0]["address"]["line"] == ["8 quai Saint-Vincent"]


def test_a_change_to_a_managing_organization_reaches_the_answer(shaped: Any) -> None:
    organization = {**FINESS_ORG, "id": "o-schedule",
                    "identifier": [{"system": IDNST, "value": "31234567890001" + "2"}]}
    assert shaped.put("/fhir/Organization/o-schedule", json=organization).status_code == 200
    answer = _answer(shaped, "8" + RPPS["schedule-contained"])
    role = next(e["resource"] for e in answer["entry"]
                if e["resource"]["resourceType"] == "PractitionerRole")
    assert role["organization"]["identifier"]["value"] == "312345678900012"


# -- the SAS guide's examples, as stored data -------------------------------------------------

def _example_resources() -> list[Resource]:
    """Every example resource of the guide (Bundles unpacked), each id once; regulator
    accounts are INT_R02 messages, not agenda data, and are left out."""
    found: dict[tuple[str, str], Resource] = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        document = json.loads(path.read_text())
        inner = [e["resource"] for e in document.get("entry", [])] if (
            document["resourceType"] == "Bundle") else [document]
        for resource in inner:
            resource.pop("text", None)
            if "FrPractitionerRegul" in json.dumps(resource.get("meta", {})):
                continue
            found[(resource["resourceType"], resource["id"])] = resource
    return list(found.values())


def _into_window(resources: list[Resource], window_start: datetime) -> list[Resource]:
    """The example slots moved, in order, into the search window (two hours apart)."""
    slots = sorted((r for r in resources if r["resourceType"] == "Slot"),
                   key=lambda r: (r["start"], r["id"]))
    for index, slot in enumerate(slots):
        start = datetime.fromisoformat(slot["start"])
        length = datetime.fromisoformat(slot["end"]) - start
        moved = window_start + timedelta(hours=2 * index + 1)
        slot["start"] = moved.isoformat()
        slot["end"] = (moved + length).isoformat()
    return resources


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/reference is not available")
def test_the_guides_examples_come_back_in_the_sas_answer(client: Any) -> None:
    window_start = datetime.fromisoformat("2030-03-10T09:00:00+01:00")
    resources = _into_window(_example_resources(), window_start)
    load(client, resources)
    practitioners = {r["id"]: r for r in resources if r["resourceType"] == "Practitioner"}
    ids = [i["value"] for p in practitioners.values() for i in p["identifier"]]
    answer = _answer(client, *ids)
    returned = {e["resource"]["id"] for e in answer["entry"] if e["search"]["mode"] == "match"}
    # Every free, SAS-visible example slot whose Schedule is a practitioner's practice place.
    places = {r["id"] for r in resources if r["resourceType"] == "Schedule"
              and any(a["reference"].startswith("PractitionerRole/") for a in r["actor"])}
    expected = {r["id"] for r in resources if r["resourceType"] == "Slot"
                and r["status"] == "free" and r["schedule"]["reference"].split("/")[1] in places
                and r.get("meta", {}).get("security")}
    assert expected, "the guide's examples hold practitioner slots"
    assert returned == expected
    included = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in answer["entry"]
                if e["search"]["mode"] == "include"}
    assert {i for k, i in included if k == "Practitioner"} <= set(practitioners)
    roles = {e["resource"]["id"]: e["resource"] for e in answer["entry"]
             if e["resource"]["resourceType"] == "PractitionerRole"}
    # The role stored with a contained Location and a logical structure id keeps both.
    role = roles["ExamplePractitionerRoleAgregateur2"]
    assert role["contained"][0]["address"]["city"] == "AGEN"
    assert role["organization"]["identifier"]["value"] == "1810004421"
    assert role["contained"][0]["identifier"][0]["system"] == "urn:oid:1.1.111.1.111.1.1.1"
