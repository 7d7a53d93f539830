"""The `sas_place` projection follows every write the SAS answer depends on (both databases)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from app.storage.schema import sas_place
from tests.factories import body
from tests.sas_data import (
    BLANC,
    FAURE,
    IDNPS,
    MARTIN,
    NOEL,
    agenda,
    load,
    sas_slot,
    sas_url,
)
from tests.support.reindex import reindex_after_wiping
from tests.test_regulators import by_identifier, national, regulator, send
from tests.test_sas_search import ask, of_type, slot_ids

Resource = dict[str, Any]
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
MARTIN_SLOTS = ["m-a-public", "m-a-pro-snp", "m-a-mixed", "m-b-cpts"]


@pytest.fixture
def sas(client: Any) -> Any:
    load(client, agenda())
    return client


def stored(client: Any, kind: str, resource_id: str) -> Resource:
    resource: Resource = body(client.get(f"/fhir/{kind}/{resource_id}"))
    return {k: v for k, v in resource.items() if k != "meta"}


def put(client: Any, resource: Resource, status: int = 200) -> None:
    response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code == status, body(response)


def projection(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(sas_place).order_by(sas_place.c.schedule_id, sas_place.c.idnps))]


def test_location_address_change_shows_up_and_removal_unpublishes(sas: Any) -> None:
    location = stored(sas, "Location", "loc-b")
    location["address"] = {"line": ["12 rue Neuve"], "city": "Lyon", "postalCode": "69001"}
    put(sas, location)
    roles = of_type(ask(sas, sas_url(MARTIN, BLANC)), "PractitionerRole")
    for role_id in ("role-martin-b", "role-blanc"):
        assert roles[role_id]["contained"][0]["address"]["line"] == ["12 rue Neuve"]
    del location["address"]
    put(sas, location)
    bundle = ask(sas, sas_url(MARTIN, BLANC))
    assert slot_ids(bundle) == ["m-a-public", "m-a-pro-snp", "m-a-mixed"]
    assert set(of_type(bundle, "PractitionerRole")) == {"role-martin-a"}
    assert sas.delete("/fhir/Location/loc-a").status_code == 200
    assert ask(sas, sas_url(MARTIN))["total"] == 0


def test_deactivated_role_and_practitioner_disappear_and_come_back(sas: Any) -> None:
    role = stored(sas, "PractitionerRole", "role-blanc")
    put(sas, {**role, "active": False})
    assert ask(sas, sas_url(BLANC))["total"] == 0
    put(sas, role)
    assert slot_ids(ask(sas, sas_url(BLANC))) == ["blanc-1"]
    person = stored(sas, "Practitioner", "martin")
    put(sas, {**person, "active": False})
    assert ask(sas, sas_url(MARTIN))["total"] == 0
    put(sas, person)
    assert slot_ids(ask(sas, sas_url(MARTIN))) == MARTIN_SLOTS
    assert sas.delete("/fhir/Practitioner/noel").status_code == 200
    assert ask(sas, sas_url(NOEL))["total"] == 0


def test_practitioner_identifier_switch_rekeys_the_places(sas: Any) -> None:
    person = stored(sas, "Practitioner", "martin")
    person["identifier"] = [{"system": IDNPS, "value": "10000000074"}]  # stored unprefixed
    person["name"] = [{"family": "Martin-Durand", "given": ["Élise"]}]
    put(sas, person)
    assert ask(sas, sas_url(MARTIN))["total"] == 0
    bundle = ask(sas, sas_url("810000000074"))
    assert slot_ids(bundle) == MARTIN_SLOTS
    (shaped,) = of_type(bundle, "Practitioner").values()
    assert shaped["identifier"][0]["value"] == "810000000074"
    assert shaped["name"][0]["family"] == "Martin-Durand"


def test_organization_changes_reach_the_role(sas: Any) -> None:
    organization = stored(sas, "Organization", "org-siret")
    organization["name"] = "Maison de santé du Rhône"
    organization["identifier"] = [{"system": IDNST_SYSTEM, "value": "398765432100018"}]
    put(sas, organization)
    roles = of_type(ask(sas, sas_url(BLANC, NOEL)), "PractitionerRole")
    assert roles["role-blanc"]["organization"]["identifier"]["value"] == "398765432100018"
    assert roles["role-noel"]["organization"]["identifier"]["value"] == "398765432100018"
    assert sas.delete("/fhir/Organization/org-siret").status_code == 200
    roles = of_type(ask(sas, sas_url(BLANC, NOEL)), "PractitionerRole")
    assert "organization" not in roles["role-blanc"]
    assert "organization" not in roles["role-noel"]


def test_deleted_schedule_and_moved_role(sas: Any) -> None:
    assert sas.delete("/fhir/Schedule/sch-martin-b").status_code == 200
    assert slot_ids(ask(sas, sas_url(MARTIN))) == MARTIN_SLOTS[:3]
    # The role of Martin's other place moves to Blanc: the Schedule naming it follows.
    role = stored(sas, "PractitionerRole", "role-martin-a")
    put(sas, {**role, "practitioner": {"reference": "Practitioner/blanc"}})
    assert ask(sas, sas_url(MARTIN))["total"] == 0
    bundle = ask(sas, sas_url(BLANC))
    assert set(of_type(bundle, "Schedule")) == {"sch-martin-a", "sch-blanc"}
    assert of_type(bundle, "Schedule")["sch-martin-a"]["actor"][0] == {
        "reference": "Practitioner/blanc"}


def test_schedule_naming_only_the_practitioner_follows_the_roles(sas: Any) -> None:
    # Faure's Schedule names the practitioner and loc-c: the role at loc-c is the place.
    role = stored(sas, "PractitionerRole", "role-faure-c")
    put(sas, {**role, "location": [{"reference": "Location/loc-b"}]})
    # No role at the Schedule's Location any more, and two roles: no place.
    assert ask(sas, sas_url(FAURE))["total"] == 0
    assert sas.delete("/fhir/PractitionerRole/role-faure-a").status_code == 200
    # Only one role left: it is the place, with its own Location first.
    bundle = ask(sas, sas_url(FAURE))
    assert slot_ids(bundle) == ["faure-1"]
    place = of_type(bundle, "PractitionerRole")["role-faure-c"]["contained"][0]
    assert place["address"]["line"] == ["10 cours Gambetta"]


def test_a_regulator_with_the_same_rpps_never_appears(sas: Any) -> None:
    before = ask(sas, sas_url(MARTIN))
    account = regulator(national(MARTIN))
    response = send(sas, "PUT", by_identifier(IDNPS, MARTIN), account)
    assert response.status_code == 201, body(response)
    regulator_id = body(response)["id"]
    # Even given a practice place of its own, a regulator account is never an effector.
    load(sas, [{"resourceType": "PractitionerRole", "id": "role-regul", "active": True,
                "practitioner": {"reference": f"Practitioner/{regulator_id}"},
                "location": [{"reference": "Location/loc-a"}]},
               {"resourceType": "Schedule", "id": "sch-regul", "active": True,
                "actor": [{"reference": f"Practitioner/{regulator_id}"},
                          {"reference": "PractitionerRole/role-regul"}]},
               sas_slot("regul-1", "sch-regul", "2030-03-11T11:00:00+01:00",
                        "2030-03-11T11:15:00+01:00", "PUBLIC")])
    after = ask(sas, sas_url(MARTIN))
    assert slot_ids(after) == slot_ids(before)
    assert set(of_type(after, "Practitioner")) == {"martin"}


def test_a_failed_transaction_leaves_the_projection_unchanged(sas: Any,
                                                              engine: Engine) -> None:
    before = projection(engine)
    location = stored(sas, "Location", "loc-a")
    location["address"]["city"] = "Villeurbanne"
    broken = {"resourceType": "Slot", "id": "broken", "status": "free"}
    response = sas.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": location, "request": {"method": "PUT", "url": "Location/loc-a"}},
        {"request": {"method": "DELETE", "url": "Schedule/sch-blanc"}},
        {"resource": broken, "request": {"method": "PUT", "url": "Slot/broken"}}]})
    assert response.status_code == 422
    assert projection(engine) == before
    roles = of_type(ask(sas, sas_url(MARTIN, BLANC)), "PractitionerRole")
    assert roles["role-martin-a"]["contained"][0]["address"]["city"] == "Lyon"
    assert "role-blanc" in roles


def test_reindex_rebuilds_the_projection_identically(sas: Any, app: Flask,
                                                     engine: Engine) -> None:
    person = stored(sas, "Practitioner", "martin")
    put(sas, {**person, "identifier": [*person["identifier"],
                                        {"system": IDNPS, "value": "0691234599"}]})
    assert sas.delete("/fhir/PractitionerRole/role-faure-a").status_code == 200
    incremental = projection(engine)
    assert {row[1] for row in incremental if row[0] == "sch-martin-a"} == {
        MARTIN, "0691234599"}
    output = reindex_after_wiping(app, engine, "DELETE FROM sas_place")
    assert "6 practice places" in output
    assert projection(engine) == incremental


def test_connections_dropped_by_the_server_are_replaced_at_checkout(engine: Engine) -> None:
    # The engine has no pool_pre_ping (one round trip per request): app/db.py checks the
    # pooled sockets locally instead.
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite connections are not dropped by a server")
    with engine.connect() as conn:
        pooled = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    killer = create_engine(engine.url, poolclass=NullPool)
    with killer.connect() as conn:
        killed = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    killer.dispose()
    assert killed >= 1
    time.sleep(0.2)  # the servers' FATAL messages reach the idle sockets
    for _ in range(3):
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pooled


def test_a_search_inside_the_transaction_that_writes_sees_the_places(client: Any) -> None:
    """Places and slots are projected once per unit of work (deferred): a SAS search entry
    of the same transaction still answers from the unit's writes."""
    from tests.factories import bundle, entry

    writes = [entry("PUT", f"{r['resourceType']}/{r['id']}", r) for r in agenda()]
    search = entry("GET", sas_url(MARTIN).removeprefix("/fhir/"))
    response = client.post("/fhir", json=bundle("transaction", *writes, search))
    assert response.status_code == 200, body(response)
    answer = body(response)["entry"][-1]["resource"]
    assert sorted(slot_ids(answer)) == sorted(MARTIN_SLOTS)
