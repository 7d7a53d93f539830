"""Reference search, chains, _include and _revinclude through HTTP.

FHIR R4 search 3.1.1.4.12 (reference), 3.1.1.5.5 (chaining), 3.1.1.5.7 (_include/_revinclude).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.search_data import (
    BASE,
    RPPS,
    body,
    found,
    get,
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

EXTERNAL = "https://annuaire.example/fhir"


# -- plain references ------------------------------------------------------------------------

@pytest.fixture
def agendas(client: Any) -> Any:
    """A Practitioner and a PractitionerRole share the id `shared`; schedules point at them
    in different reference forms."""
    load(client,
         practitioner("shared", "81001"),
         practitioner("p2", "81002"),
         role("shared", "p2"),
         schedule("to-prac", "Practitioner/shared"),
         schedule("to-role", "PractitionerRole/shared"),
         schedule("absolute", f"{BASE}/Practitioner/p2"),
         schedule("versioned", "Practitioner/p2/_history/1"),
         slot("slot-rel", "to-prac", "2026-03-02T09:00:00+01:00"),
         slot("slot-abs", f"{BASE}/Schedule/to-prac", "2026-03-02T09:15:00+01:00"),
         slot("slot-role", "to-role", "2026-03-02T09:30:00+01:00"))
    return client


def test_type_and_id(agendas: Any) -> None:
    assert found(agendas, "Schedule?actor=Practitioner/shared") == {"to-prac"}
    assert found(agendas, "Schedule?actor=PractitionerRole/shared") == {"to-role"}
    assert found(agendas, "Schedule?actor=Practitioner/p2") == {"absolute", "versioned"}
    assert found(agendas, "Schedule?actor=Practitioner/nobody") == set()


def test_bare_id_matches_any_target_type(agendas: Any) -> None:
    assert found(agendas, "Schedule?actor=shared") == {"to-prac", "to-role"}


def test_absolute_url_on_our_base_is_a_local_reference(agendas: Any) -> None:
    assert found(agendas, f"Schedule?actor={BASE}/Practitioner/shared") == {"to-prac"}
    assert found(agendas, f"Schedule?actor={BASE}/Practitioner/p2") == {"absolute", "versioned"}


def test_stored_absolute_reference_matches_relative_search(agendas: Any) -> None:
    assert found(agendas, "Slot?schedule=Schedule/to-prac") == {"slot-rel", "slot-abs"}
    assert found(agendas, "Slot?schedule=to-prac") == {"slot-rel", "slot-abs"}


def test_type_modifier(agendas: Any) -> None:
    assert found(agendas, "Schedule?actor:Practitioner=shared") == {"to-prac"}
    assert found(agendas, "Schedule?actor:PractitionerRole=shared") == {"to-role"}
    assert found(agendas, "Schedule?actor:Practitioner=Practitioner/shared") == {"to-prac"}
    assert found(agendas, "Schedule?actor:PractitionerRole=Practitioner/shared") == set()


def test_or_and_and(agendas: Any) -> None:
    assert found(agendas, "Slot?schedule=to-prac,to-role") == {"slot-rel", "slot-abs",
                                                               "slot-role"}
    assert found(agendas, "Schedule?actor=Practitioner/shared,PractitionerRole/shared") == {
        "to-prac", "to-role"}
    assert found(agendas, "Slot?schedule=to-prac&schedule=to-role") == set()


def test_external_absolute_url(agendas: Any) -> None:
    load(agendas, schedule("external", f"{EXTERNAL}/Practitioner/shared"))
    assert found(agendas, f"Schedule?actor={EXTERNAL}/Practitioner/shared") == {"external"}


def test_external_reference_is_not_a_local_reference(agendas: Any) -> None:
    # R4: [type]/[id] and [id] designate "a resource using a local reference (i.e. a
    # relative reference)"; a reference to another server's Practitioner/shared is not one.
    load(agendas, schedule("external", f"{EXTERNAL}/Practitioner/shared"))
    assert found(agendas, "Schedule?actor=Practitioner/shared") == {"to-prac"}
    assert "external" not in found(agendas, "Schedule?actor=shared")
    assert "external" not in found(agendas, "Schedule?actor:Practitioner=shared")


def test_missing(agendas: Any) -> None:
    load(agendas, {"resourceType": "Schedule", "id": "no-actor-ref", "active": True,
                   "actor": [{"display": "Dr Sans Référence"}]})
    assert found(agendas, "Schedule?actor:missing=true") == {"no-actor-ref"}
    assert "no-actor-ref" not in found(agendas, "Schedule?actor:missing=false")


# -- chains ----------------------------------------------------------------------------------

@pytest.fixture
def directory(client: Any) -> Any:
    load(client,
         organization("cab", "Cabinet médical des Pentes"),
         organization("cds", "Centre de santé Gerland"),
         location("loc-cab", "Site des Pentes", organization_id="cab"),
         location("loc-cds", "Site de Gerland", organization_id="cds"),
         location("loc-none", "Site autonome"),
         practitioner("p1", "810001", family="Martin"),
         practitioner("p2", "810002", family="Durand"),
         practitioner("p3", "810003", family="Martinez"),
         role("r1", "p1", organization_id="cab"),
         role("r2", "p2", organization_id="cds"),
         role("r3", "p3", organization_id="cab"),
         schedule("s1", "Practitioner/p1", "PractitionerRole/r1"),
         schedule("s2", "Practitioner/p2"),
         schedule("s3", "Practitioner/p3"),
         schedule("s-role", "PractitionerRole/r2"),  # p2 only through the role
         slot("s1-a", "s1", "2026-03-02T09:00:00+01:00"),
         slot("s1-b", "s1", "2026-03-02T10:00:00+01:00", status="busy"),
         slot("s2-a", "s2", "2026-03-02T09:00:00+01:00"),
         slot("s3-a", "s3", "2026-03-02T09:00:00+01:00"),
         slot("role-a", "s-role", "2026-03-02T09:00:00+01:00"))
    return client


def test_chain_on_identifier(directory: Any) -> None:
    assert found(directory, f"PractitionerRole?practitioner.identifier={RPPS}|810001") == {"r1"}
    assert found(directory, "PractitionerRole?practitioner.identifier=810002") == {"r2"}
    assert found(directory, f"PractitionerRole?practitioner.identifier={RPPS}|999") == set()


def test_chain_with_or_values(directory: Any) -> None:
    assert found(directory, f"PractitionerRole?practitioner.identifier={RPPS}|810001,"
                            f"{RPPS}|810003") == {"r1", "r3"}


def test_chain_on_string(directory: Any) -> None:
    assert found(directory, "Location?organization.name=cabinet") == {"loc-cab"}
    assert found(directory, "Location?organization.name=centre de sante") == {"loc-cds"}
    assert found(directory, "Location?organization.name=hopital") == set()
    assert found(directory, "PractitionerRole?practitioner.family=martin") == {"r1", "r3"}
    assert found(directory, "PractitionerRole?practitioner.family:exact=Martin") == {"r1"}


def test_typed_two_level_chain_or_of_two_practitioners(directory: Any) -> None:
    query = (f"Slot?schedule.actor:Practitioner.identifier={RPPS}|810001,{RPPS}|810003")
    assert found(directory, query) == {"s1-a", "s1-b", "s3-a"}


def test_typed_chain_does_not_follow_other_actor_types(directory: Any) -> None:
    # s-role reaches p2 through a PractitionerRole only: `actor:Practitioner` excludes it.
    assert found(directory, f"Slot?schedule.actor:Practitioner.identifier={RPPS}|810002") == {
        "s2-a"}
    assert found(directory, "Slot?schedule.actor:PractitionerRole.practitioner="
                            "Practitioner/p2") == {"role-a"}


def test_chain_combined_with_other_criteria(directory: Any) -> None:
    query = (f"Slot?schedule.actor:Practitioner.identifier={RPPS}|810001,{RPPS}|810002"
             "&status=free&start=ge2026-03-02T00:00:00%2B01:00&start=le2026-03-02T23:59:59%2B01:00")
    assert found(directory, query) == {"s1-a", "s2-a"}


def test_untyped_two_level_chain(directory: Any) -> None:
    assert found(directory, f"Slot?schedule.actor.identifier={RPPS}|810001") == {"s1-a", "s1-b"}


def test_three_level_chain(directory: Any) -> None:
    assert found(directory, "Slot?schedule.actor:PractitionerRole.organization.name=centre") == {
        "role-a"}


def test_chain_ignores_deleted_targets(directory: Any) -> None:
    assert directory.delete("/fhir/Slot/s3-a").status_code == 200
    assert found(directory, f"Slot?schedule.actor:Practitioner.identifier={RPPS}|810003") == set()


def test_external_reference_is_not_followed_by_a_chain(client: Any) -> None:
    load(client, practitioner("p1", "810001"),
         schedule("local", "Practitioner/p1"),
         schedule("external", f"{EXTERNAL}/Practitioner/p1"))
    assert found(client, f"Schedule?actor:Practitioner.identifier={RPPS}|810001") == {"local"}


def test_unknown_chained_parameter_is_a_400_when_strict(directory: Any) -> None:
    response = get(directory, "Slot?schedule.actor:Practitioner.nope=x",
                   headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    assert body(response)["resourceType"] == "OperationOutcome"


# -- _include / _revinclude ------------------------------------------------------------------

def _modes(bundle: dict[str, Any]) -> Counter[str]:
    return Counter(e["search"]["mode"] for e in bundle.get("entry", []))


def _assert_each_once(bundle: dict[str, Any]) -> None:
    keys = [f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in bundle.get("entry", []) if e["search"]["mode"] != "outcome"]
    assert len(keys) == len(set(keys)), f"resources repeated: {keys}"
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        if entry["search"]["mode"] != "outcome":
            assert entry["fullUrl"] == f"{BASE}/{resource['resourceType']}/{resource['id']}"


def test_include_with_iterate(directory: Any) -> None:
    result = search(directory, "Slot?_id=s1-a,s1-b,s2-a"
                               "&_include=Slot:schedule&_include:iterate=Schedule:actor")
    _assert_each_once(result)
    assert set(refs(result, "match")) == {"Slot/s1-a", "Slot/s1-b", "Slot/s2-a"}
    assert set(refs(result, "include")) == {"Schedule/s1", "Schedule/s2", "Practitioner/p1",
                                            "PractitionerRole/r1", "Practitioner/p2"}
    assert result["total"] == 3
    # Matches come first.
    modes = [e["search"]["mode"] for e in result["entry"]]
    assert modes == ["match"] * 3 + ["include"] * 5


def test_chain_criteria_with_iterated_includes(directory: Any) -> None:
    # The typed chain `schedule.actor:Practitioner.identifier` together with
    # `_include:iterate=Schedule:actor` is the SAS request, which the server answers with
    # its own aggregator; the untyped chain keeps this an ordinary FHIR search.
    query = (f"Slot?schedule.actor.identifier={RPPS}|810001,{RPPS}|810002"
             "&status=free&start=ge2026-03-02&start=le2026-03-02"
             "&_include=Slot:schedule&_include:iterate=Schedule:actor")
    result = search(directory, query)
    _assert_each_once(result)
    assert set(refs(result, "match")) == {"Slot/s1-a", "Slot/s2-a"}
    assert set(refs(result, "include")) == {"Schedule/s1", "Schedule/s2", "Practitioner/p1",
                                            "PractitionerRole/r1", "Practitioner/p2"}


def test_include_iterate_with_target_type(directory: Any) -> None:
    result = search(directory, "Slot?_id=s1-a&_include=Slot:schedule"
                               "&_include:iterate=Schedule:actor:Practitioner")
    assert set(refs(result, "include")) == {"Schedule/s1", "Practitioner/p1"}


def test_include_without_iterate_does_not_follow_included_resources(directory: Any) -> None:
    result = search(directory, "Slot?_id=s1-a&_include=Slot:schedule&_include=Schedule:actor")
    assert refs(result, "match") == ["Slot/s1-a"]
    assert refs(result, "include") == ["Schedule/s1"]


def test_iterate_does_not_repeat_a_resource_reached_twice(directory: Any) -> None:
    # s1 reaches p1 directly and r1; r1 reaches p1 again and cab.
    result = search(directory, "Slot?_id=s1-a,s1-b&_include=Slot:schedule"
                               "&_include:iterate=Schedule:actor"
                               "&_include:iterate=PractitionerRole:practitioner"
                               "&_include:iterate=PractitionerRole:organization")
    _assert_each_once(result)
    assert Counter(refs(result, "include")) == Counter({
        "Schedule/s1": 1, "Practitioner/p1": 1, "PractitionerRole/r1": 1,
        "Organization/cab": 1})


def test_a_match_is_not_repeated_as_an_include(client: Any) -> None:
    load(client, location("parent", "Site principal"),
         {**location("child", "Annexe"), "partOf": {"reference": "Location/parent"}})
    result = search(client, "Location?_include=Location:partof")
    _assert_each_once(result)
    assert set(refs(result, "match")) == {"Location/parent", "Location/child"}
    assert refs(result, "include") == []


def test_include_of_a_page_only(directory: Any) -> None:
    result = search(directory, "Slot?_sort=_id&_count=1&_include=Slot:schedule")
    assert refs(result, "match") == ["Slot/role-a"]
    assert refs(result, "include") == ["Schedule/s-role"]
    assert result["total"] == 5


def test_revinclude(directory: Any) -> None:
    result = search(directory, "Practitioner?_id=p1&_revinclude=PractitionerRole:practitioner")
    _assert_each_once(result)
    assert refs(result, "match") == ["Practitioner/p1"]
    assert refs(result, "include") == ["PractitionerRole/r1"]
    assert result["total"] == 1


def test_revinclude_several(directory: Any) -> None:
    result = search(directory, "Practitioner?_id=p1,p2&_revinclude=PractitionerRole:practitioner"
                               "&_revinclude=Schedule:actor")
    _assert_each_once(result)
    assert set(refs(result, "match")) == {"Practitioner/p1", "Practitioner/p2"}
    assert set(refs(result, "include")) == {"PractitionerRole/r1", "PractitionerRole/r2",
                                            "Schedule/s1", "Schedule/s2"}
    assert _modes(result) == Counter({"match": 2, "include": 4})


def test_revinclude_and_include_together(directory: Any) -> None:
    result = search(directory, "Organization?_id=cab&_revinclude=PractitionerRole:organization"
                               "&_include:iterate=PractitionerRole:practitioner")
    _assert_each_once(result)
    assert refs(result, "match") == ["Organization/cab"]
    assert set(refs(result, "include")) == {"PractitionerRole/r1", "PractitionerRole/r3",
                                            "Practitioner/p1", "Practitioner/p3"}
