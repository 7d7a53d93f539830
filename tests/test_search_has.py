"""Reverse chaining (`_has`) through HTTP, on any resource type, and the typed chain through
two references that the SOS Médecins search uses. Both databases.

FHIR R4 search 3.1.1.5.6: `_has:Type:reference:parameter=value` selects the resources that a
`Type` meeting the criterion refers to through `reference`. Our choices: every `_has` of the
same `Type:reference` path is met by one and the same referring resource, and a
`_revinclude` of that path returns only the referring resources meeting them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import assert_outcome
from tests.search_data import (
    entries,
    found,
    get,
    ids,
    load,
    location,
    organization,
    practitioner,
    refs,
    role,
    schedule,
    search,
    slot,
)

IDNST = "urn:oid:1.2.250.1.71.4.2.2"
RPPS_OID = "urn:oid:1.2.250.1.71.4.2.1"
WINDOW = ("_has:Slot:schedule:start=ge2030-03-10T09:00:00"
          "&_has:Slot:schedule:start=le2030-03-11T09:00:00")


def _siret(value: str) -> list[dict[str, str]]:
    return [{"system": IDNST, "value": value}]


@pytest.fixture
def places(client: Any) -> Any:
    """Two SOS-like associations (one SIRET stored prefixed, one not), three fixed places,
    their schedules and slots of every kind; a practitioner's schedule beside them."""
    load(client,
         organization("sos-a", "SOS A", identifier=_siret("312345678900011")),
         organization("sos-b", "SOS B", identifier=_siret("98765432100019")),
         location("pfg-a1", "PFG A1", organization_id="sos-a"),
         location("pfg-a2", "PFG A2", organization_id="sos-a"),
         location("pfg-b", "PFG B", organization_id="sos-b"),
         practitioner("doc", "81001"), role("doc-role", "doc"),
         schedule("sch-a1", "Location/pfg-a1"),
         schedule("sch-a2", "Location/pfg-a2"),
         schedule("sch-b", "Location/pfg-b"),
         schedule("sch-doc", "Practitioner/doc", "PractitionerRole/doc-role"),
         # a1: free in the window, busy in the window
         slot("a1-free", "sch-a1", "2030-03-10T10:00:00+01:00"),
         slot("a1-busy", "sch-a1", "2030-03-10T11:00:00+01:00", status="busy"),
         # a2: busy in the window, free after it (never both on one slot)
         slot("a2-busy", "sch-a2", "2030-03-10T12:00:00+01:00", status="busy"),
         slot("a2-late", "sch-a2", "2030-03-12T12:00:00+01:00"),
         # b: free in the window
         slot("b-free", "sch-b", "2030-03-10T15:00:00+01:00"),
         slot("doc-free", "sch-doc", "2030-03-10T16:00:00+01:00"))
    return client


def test_has_selects_the_referred_resources(places: Any) -> None:
    assert found(places, "Schedule?_has:Slot:schedule:status=busy") == {"sch-a1", "sch-a2"}
    assert found(places, "Schedule?_has:Slot:schedule:status=free") == {
        "sch-a1", "sch-a2", "sch-b", "sch-doc"}
    assert found(places, "Schedule?_has:Slot:schedule:status=noshow") == set()


def test_has_values_are_ored_and_keys_of_one_path_meet_on_one_resource(places: Any) -> None:
    assert found(places, "Schedule?_has:Slot:schedule:_id=a1-busy,b-free") == {"sch-a1", "sch-b"}
    # sch-a2 has a free slot and a slot in the window, but no free slot in the window.
    assert found(places, f"Schedule?{WINDOW}&_has:Slot:schedule:status=free") == {
        "sch-a1", "sch-b", "sch-doc"}


def test_has_combines_with_ordinary_criteria(places: Any) -> None:
    assert found(places, "Schedule?actor=Location/pfg-a1,Location/pfg-a2"
                         "&_has:Slot:schedule:status=free"
                         "&_has:Slot:schedule:start=lt2030-03-11") == {"sch-a1"}


def test_revinclude_of_a_has_path_returns_the_referring_resources_that_met_it(
        places: Any) -> None:
    bundle = search(places, f"Schedule?_revinclude=Slot:schedule&{WINDOW}"
                            "&_has:Slot:schedule:status=free")
    assert sorted(ids(bundle)) == ["sch-a1", "sch-b", "sch-doc"]
    assert bundle["total"] == 3
    assert sorted(ids(bundle, "include")) == ["a1-free", "b-free", "doc-free"]
    # Without _has, _revinclude keeps its R4 meaning: every referring Slot.
    every = search(places, "Schedule?_id=sch-a1&_revinclude=Slot:schedule")
    assert sorted(ids(every, "include")) == ["a1-busy", "a1-free"]


def test_has_on_other_types_and_nested(client: Any) -> None:
    load(client,
         practitioner("p1", "81001"), practitioner("p2", "81002"),
         role("r1", "p1", specialty=[{"coding": [{"system": "urn:s", "code": "GP"}]}]),
         role("r2", "p2"),
         schedule("s1", "PractitionerRole/r1"),
         slot("x1", "s1", "2030-03-10T10:00:00+01:00"))
    assert found(client, "Practitioner?_has:PractitionerRole:practitioner:specialty=GP") == {
        "p1"}
    assert found(client, "Practitioner?_has:PractitionerRole:practitioner:_has:Schedule:actor:"
                         "_has:Slot:schedule:status=free") == {"p1"}
    assert found(client, "PractitionerRole?_has:Schedule:actor:_id=s1") == {"r1"}


def test_has_sees_only_live_referring_resources_and_local_references(places: Any) -> None:
    assert get(places, "Slot/b-free").status_code == 200
    assert places.delete("/fhir/Slot/b-free").status_code == 200
    assert found(places, "Schedule?_has:Slot:schedule:status=free") == {
        "sch-a1", "sch-a2", "sch-doc"}
    load(places, slot("remote", "https://other.example/fhir/Schedule/sch-b",
                      "2030-03-10T15:00:00+01:00"))
    assert found(places, "Schedule?_has:Slot:schedule:_id=remote") == set()


def test_typed_chain_through_two_references(places: Any) -> None:
    key = "actor:Location.organization.identifier"
    assert found(places, f"Schedule?{key}={IDNST}|312345678900011") == {"sch-a1", "sch-a2"}
    # The SIRET stored without its prefix is found by the prefixed IDNST, and two values OR.
    assert found(places, f"Schedule?{key}={IDNST}|398765432100019,{IDNST}|312345678900011"
                 ) == {"sch-a1", "sch-a2", "sch-b"}
    assert found(places, f"Schedule?{key}={RPPS_OID}|312345678900011") == set()


def test_the_sos_medecins_request_shape(places: Any) -> None:
    """The SOS question as an ordinary FHIR search (the association named by reference, not
    by SIRET: the SIRET form is answered in the SAS shape, tests/test_sas_sos.py)."""
    bundle = search(places, "Schedule?_revinclude=Slot:schedule&_include=Schedule:actor:Location"
                            f"&_include:iterate=Location:organization&{WINDOW}"
                            "&_has:Slot:schedule:status=free"
                            "&actor:Location.organization=Organization/sos-a")
    assert ids(bundle) == ["sch-a1"]
    assert sorted(refs(bundle, "include")) == [
        "Location/pfg-a1", "Organization/sos-a", "Slot/a1-free"]
    assert {e["resource"]["resourceType"] for e in entries(bundle)} == {"Schedule"}


def test_malformed_or_unknown_has_is_refused_under_strict_handling(places: Any) -> None:
    strict = {"Prefer": "handling=strict"}
    for query, word in (("_has:Slot:schedule=free", "Malformed"),
                        ("_has:Nothing:schedule:status=free", "Nothing"),
                        ("_has:Slot:status:status=free", "status"),
                        ("_has:Slot:schedule:colour=red", "colour"),
                        ("_has:Appointment:slot:status=booked", "slot")):
        response = get(places, f"Schedule?{query}", headers=strict)
        outcome = assert_outcome(response, 400)
        assert word in outcome["issue"][0]["diagnostics"], outcome
    # Lenient handling ignores an unknown _has and says so, like any unknown parameter.
    lenient = search(places, "Schedule?_has:Slot:schedule:colour=red")
    assert lenient["total"] == 4
    assert "colour" in str(lenient)


def test_has_counts_towards_the_search_limits(places: Any) -> None:
    values = ",".join(f"id{n}" for n in range(101))
    response = get(places, f"Schedule?_has:Slot:schedule:_id={values}")
    outcome = assert_outcome(response, 400, "too-costly")
    assert "_has:Slot:schedule:_id" in outcome["issue"][0]["diagnostics"]
    # Each criterion of a `_has` counts as a parameter, although they form one reverse chain.
    keys = "&".join(f"_has:Slot:schedule:_id=x{n}" for n in range(21))
    outcome = assert_outcome(get(places, f"Schedule?{keys}"), 400, "too-costly")
    assert "21 parameters" in outcome["issue"][0]["diagnostics"]
