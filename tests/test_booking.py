"""The booking rule (app/scheduling): an appointment holds its slots, whichever way it is
written — REST, conditional writes, batch and transaction Bundles, several gunicorn workers
at once — on both databases."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import Engine

from app.auth.principal import CLIENT, Principal
from app.auth.scopes import Scopes
from tests.conftest import TEST_BASE_URL
from tests.factories import (
    FHIR_JSON,
    assert_outcome,
    body,
    bundle,
    entry,
    search,
    send,
    urn,
)
from tests.sas_data import MARTIN, agenda, load, sas_url
from tests.support.live_server import LiveServer
from tests.support.principals import production_app

Resource = dict[str, Any]
AUTHOR = "https://fhir-agenda.org/fhir/StructureDefinition/version-author"
PATIENT = {"resourceType": "Patient", "id": "p-1", "name": [{"family": "Durand"}]}
SAS_VISIBLE = ["m-a-public", "m-a-pro-snp", "m-a-mixed", "m-b-cpts"]  # Dr Martin, free
SLOT_TIMES = {r["id"]: (r["start"], r["end"]) for r in agenda() if r["resourceType"] == "Slot"}


def appointment(*slot_ids: str, status: str = "booked", **extra: Any) -> Resource:
    # At the time of its first slot: Dr Martin is in one appointment at a time
    # (app/scheduling/overlap.py).
    start, end = SLOT_TIMES.get(slot_ids[0] if slot_ids else "", SLOT_TIMES["m-a-public"])
    return {"resourceType": "Appointment", "status": status, "start": start, "end": end,
            "slot": [{"reference": f"Slot/{s}"} for s in slot_ids],
            "participant": [{"actor": {"reference": "Practitioner/martin"},
                             "status": "accepted"},
                            {"actor": {"reference": "Patient/p-1"}, "status": "accepted"}],
            **extra}


@pytest.fixture
def agendas(client: Any) -> Any:
    load(client, [*agenda(), PATIENT])
    return client


def book(client: Any, *slot_ids: str, status: str = "booked") -> Resource:
    response = send(client, "POST", "Appointment", appointment(*slot_ids, status=status))
    assert response.status_code == 201, body(response)
    return body(response)


def slot(client: Any, slot_id: str) -> Resource:
    response = client.get(f"/fhir/Slot/{slot_id}")
    assert response.status_code == 200, body(response)
    return body(response)


def status(client: Any, slot_id: str) -> str:
    return str(slot(client, slot_id)["status"])


def sas_slots(client: Any) -> list[str]:
    """What SAS is offered of Dr Martin's agenda (the INT_R01 search, over `sas_slot`)."""
    response = client.get(sas_url(MARTIN), headers={"Accept": "application/json+fhir"})
    assert response.status_code == 200, body(response)
    return [e["resource"]["id"] for e in body(response).get("entry", [])
            if e["search"]["mode"] == "match"]


def change(client: Any, resource: Resource, **changes: Any) -> Any:
    changed = {**resource, **changes}
    return send(client, "PUT", f"{resource['resourceType']}/{resource['id']}", changed)


def history(client: Any, path: str) -> list[Resource]:
    response = client.get(f"/fhir/{path}/_history")
    assert response.status_code == 200, body(response)
    return list(body(response)["entry"])


def totals(client: Any) -> tuple[int, int]:
    """Every version in the system history, and every AuditEvent."""
    versions = body(client.get("/fhir/_history?_count=1"))["total"]
    return versions, search(client, "AuditEvent", "_summary=count")["total"]


def conflict(response: Any, slot_id: str) -> str:
    outcome = assert_outcome(response, 409, "conflict")
    diagnostics = " ".join(i["diagnostics"] for i in outcome["issue"])
    assert f"Slot/{slot_id}" in diagnostics
    return diagnostics


# -- booking -------------------------------------------------------------------------------------

def test_a_booking_makes_its_slot_busy_and_takes_it_out_of_the_sas_answer(agendas: Any) -> None:
    assert sas_slots(agendas) == SAS_VISIBLE
    booked = book(agendas, "m-a-public")
    taken = slot(agendas, "m-a-public")
    assert taken["status"] == "busy" and taken["meta"]["versionId"] == "2"
    assert sas_slots(agendas) == SAS_VISIBLE[1:]
    assert search(agendas, "Slot", "_id=m-a-public&status=free")["total"] == 0
    # The Slot's version says who made it and why; its AuditEvent names the caller.
    (latest, _) = history(agendas, "Slot/m-a-public")
    (author,) = latest["request"]["extension"]
    assert author["url"] == AUTHOR
    caller = history(agendas, f"Appointment/{booked['id']}")[0]["request"]["extension"][0]
    assert author["valueString"] == (f"fhir-agenda booking rule (Appointment/{booked['id']}"
                                     f"/_history/1), on behalf of {caller['valueString']}")
    audit = [e["resource"] for e in search(agendas, "AuditEvent", "entity=Slot/m-a-public")
             .get("entry", []) if e["resource"]["action"] == "U"]
    assert [e["entity"][0]["what"]["reference"] for e in audit] == ["Slot/m-a-public/_history/2"]
    assert audit[0]["agent"][0]["name"] == caller["valueString"]


def test_a_second_booking_of_the_slot_is_409_and_writes_nothing(agendas: Any) -> None:
    first = book(agendas, "m-a-public")
    before = totals(agendas)
    response = send(agendas, "POST", "Appointment", appointment("m-a-public"))
    diagnostics = conflict(response, "m-a-public")
    assert "already taken" in diagnostics
    assert "Appointment.slot[0]" in [e for i in body(response)["issue"]
                                     for e in i.get("expression", [])]
    assert totals(agendas) == before
    holders = search(agendas, "Appointment", "slot=Slot/m-a-public")
    assert [e["resource"]["id"] for e in holders["entry"]] == [first["id"]]
    assert slot(agendas, "m-a-public")["meta"]["versionId"] == "2"


def test_a_failed_booking_of_several_slots_leaves_every_slot_unchanged(agendas: Any) -> None:
    book(agendas, "m-a-pro-snp")
    before = totals(agendas)
    response = send(agendas, "POST", "Appointment", appointment("m-a-public", "m-a-pro-snp"))
    conflict(response, "m-a-pro-snp")
    assert totals(agendas) == before
    assert slot(agendas, "m-a-public")["meta"]["versionId"] == "1"
    assert sas_slots(agendas) == ["m-a-public", "m-a-mixed", "m-b-cpts"]


@pytest.mark.parametrize("slot_id, slot_status", [("m-a-off", "busy-unavailable"),
                                                  ("m-a-public", "entered-in-error")])
def test_an_unavailable_or_erroneous_slot_cannot_be_booked(agendas: Any, slot_id: str,
                                                           slot_status: str) -> None:
    if slot_status == "entered-in-error":
        assert change(agendas, slot(agendas, slot_id), status=slot_status).status_code == 200
    before = totals(agendas)
    diagnostics = conflict(send(agendas, "POST", "Appointment", appointment(slot_id)), slot_id)
    assert slot_status in diagnostics
    assert totals(agendas) == before and status(agendas, slot_id) == slot_status


def test_a_busy_slot_that_no_appointment_holds_can_be_booked(agendas: Any) -> None:
    # An agenda that marks the slot busy first, then creates the appointment.
    book(agendas, "m-a-busy")
    assert slot(agendas, "m-a-busy")["meta"]["versionId"] == "1"  # nothing to change
    conflict(send(agendas, "POST", "Appointment", appointment("m-a-busy")), "m-a-busy")


def test_a_missing_slot_is_the_reference_check(agendas: Any) -> None:
    response = send(agendas, "POST", "Appointment", appointment("no-such-slot"))
    assert_outcome(response, 422, "not-found")


def test_tentative_statuses_hold_the_slot_tentatively(agendas: Any) -> None:
    pending = book(agendas, "m-a-public", status="pending")
    assert status(agendas, "m-a-public") == "busy-tentative"
    assert sas_slots(agendas) == SAS_VISIBLE[1:]
    conflict(send(agendas, "POST", "Appointment", appointment("m-a-public")), "m-a-public")
    assert change(agendas, pending, status="booked").status_code == 200
    assert status(agendas, "m-a-public") == "busy"


def test_a_waitlisted_appointment_holds_no_slot(agendas: Any) -> None:
    book(agendas, "m-a-public", status="waitlist")
    assert status(agendas, "m-a-public") == "free"


def test_conditional_writes_book_too(agendas: Any) -> None:
    identifier = [{"system": "urn:example:rdv", "value": "42"}]
    created = send(agendas, "POST", "Appointment",
                   appointment("m-a-public", identifier=identifier),
                   {"If-None-Exist": "identifier=urn:example:rdv|42"})
    assert created.status_code == 201 and status(agendas, "m-a-public") == "busy"
    moved = send(agendas, "PUT", "Appointment?identifier=urn:example:rdv|42",
                 appointment("m-a-pro-snp", identifier=identifier))
    assert moved.status_code == 200
    assert (status(agendas, "m-a-public"), status(agendas, "m-a-pro-snp")) == ("free", "busy")
    conflict(send(agendas, "PUT", "Appointment?identifier=urn:example:other|1",
                  appointment("m-a-pro-snp")), "m-a-pro-snp")


# -- giving slots back ---------------------------------------------------------------------------

@pytest.mark.parametrize("final, slot_status", [
    ("cancelled", "free"), ("entered-in-error", "free"),
    ("noshow", "busy"), ("fulfilled", "busy"), ("arrived", "busy"), ("checked-in", "busy")])
def test_what_each_status_does_to_the_slot(agendas: Any, final: str, slot_status: str) -> None:
    booked = book(agendas, "m-a-public")
    assert change(agendas, booked, status=final).status_code == 200
    assert status(agendas, "m-a-public") == slot_status
    assert ("m-a-public" in sas_slots(agendas)) == (slot_status == "free")


def test_cancelling_frees_the_slot_for_the_next_booking(agendas: Any) -> None:
    first = book(agendas, "m-a-public")
    change(agendas, first, status="cancelled")
    (latest, _, _) = history(agendas, "Slot/m-a-public")
    assert latest["resource"]["status"] == "free"
    assert latest["request"]["extension"][0]["valueString"].startswith(
        f"fhir-agenda booking rule (Appointment/{first['id']}/_history/2)")
    second = book(agendas, "m-a-public")
    assert status(agendas, "m-a-public") == "busy"
    # The cancelled appointment cannot come back: its slot is someone else's now.
    conflict(change(agendas, first, status="booked"), "m-a-public")
    assert search(agendas, "Appointment", "slot=Slot/m-a-public&status=booked")["entry"][0][
        "resource"]["id"] == second["id"]


def test_deleting_the_appointment_frees_the_slot(agendas: Any) -> None:
    booked = book(agendas, "m-a-public")
    assert send(agendas, "DELETE", f"Appointment/{booked['id']}").status_code == 200
    assert status(agendas, "m-a-public") == "free"
    assert sas_slots(agendas) == SAS_VISIBLE


def test_a_slot_the_agenda_closed_meanwhile_stays_closed_on_cancel(agendas: Any) -> None:
    booked = book(agendas, "m-a-public")
    assert change(agendas, slot(agendas, "m-a-public"),
                  status="busy-unavailable").status_code == 200
    change(agendas, booked, status="cancelled")
    assert status(agendas, "m-a-public") == "busy-unavailable"


def test_moving_frees_the_old_slot_and_takes_the_new_one(agendas: Any) -> None:
    booked = book(agendas, "m-a-public", "m-a-mixed")
    other = book(agendas, "m-b-cpts")
    moved = change(agendas, booked, slot=[{"reference": "Slot/m-a-pro-snp"},
                                          {"reference": f"{TEST_BASE_URL}/Slot/m-a-mixed"}])
    assert moved.status_code == 200, body(moved)
    assert [status(agendas, s) for s in ("m-a-public", "m-a-pro-snp", "m-a-mixed")] == [
        "free", "busy", "busy"]
    assert slot(agendas, "m-a-mixed")["meta"]["versionId"] == "2"  # kept, not rewritten
    # Onto a taken slot: refused, and the old slots stay held.
    before = totals(agendas)
    conflict(change(agendas, body(moved), slot=[{"reference": "Slot/m-b-cpts"}]), "m-b-cpts")
    assert totals(agendas) == before
    assert sas_slots(agendas) == ["m-a-public"]
    assert other["slot"] == [{"reference": "Slot/m-b-cpts"}]


# -- direct writes of a held slot ----------------------------------------------------------------

def test_a_held_slot_cannot_be_written_free_but_may_change_otherwise(agendas: Any) -> None:
    booked = book(agendas, "m-a-public")
    held = slot(agendas, "m-a-public")
    diagnostics = conflict(change(agendas, held, status="free"), "m-a-public")
    assert f"Appointment/{booked['id']}" in diagnostics
    assert status(agendas, "m-a-public") == "busy"
    assert change(agendas, held, comment="Salle 2").status_code == 200
    change(agendas, booked, status="cancelled")
    assert change(agendas, slot(agendas, "m-a-public"), status="free").status_code == 200


# -- Bundles -------------------------------------------------------------------------------------

def test_a_transaction_books_and_changes_the_slot_with_its_if_match(agendas: Any) -> None:
    current = slot(agendas, "m-a-public")
    response = send(agendas, "POST", "", bundle(
        "transaction",
        entry("PUT", "Slot/m-a-public", {**current, "status": "busy", "comment": "Salle 2"},
              if_match='W/"1"'),
        entry("POST", "Appointment", appointment("m-a-public"), full_url=urn(1))))
    assert response.status_code == 200, body(response)
    written = slot(agendas, "m-a-public")
    assert (written["status"], written["comment"], written["meta"]["versionId"]) == (
        "busy", "Salle 2", "2")
    # The client left the status free while booking: the booking still takes the slot.
    current = slot(agendas, "m-a-pro-snp")
    response = send(agendas, "POST", "", bundle(
        "transaction",
        entry("PUT", "Slot/m-a-pro-snp", {**current, "comment": "Salle 3"}, if_match='W/"1"'),
        entry("POST", "Appointment", appointment("m-a-pro-snp"), full_url=urn(2))))
    assert response.status_code == 200, body(response)
    written = slot(agendas, "m-a-pro-snp")
    assert (written["status"], written["comment"]) == ("busy", "Salle 3")


def test_a_transaction_books_a_slot_it_creates_after_the_appointment(agendas: Any) -> None:
    new_slot = {"resourceType": "Slot", "status": "free",
                "schedule": {"reference": "Schedule/sch-martin-a"},
                "start": "2030-03-12T09:00:00+01:00", "end": "2030-03-12T09:20:00+01:00"}
    booking = {**appointment(), "slot": [{"reference": urn(2)}]}
    response = send(agendas, "POST", "", bundle(
        "transaction", entry("POST", "Appointment", booking, full_url=urn(1)),
        entry("POST", "Slot", new_slot, full_url=urn(2))))
    assert response.status_code == 200, body(response)
    slot_id = body(response)["entry"][1]["response"]["location"].split("/")[-3]
    assert status(agendas, slot_id) == "busy"


def test_a_transaction_that_cancels_and_rebooks_in_one_go(agendas: Any) -> None:
    first = book(agendas, "m-a-public")
    response = send(agendas, "POST", "", bundle(
        "transaction",
        entry("PUT", f"Appointment/{first['id']}", {**first, "status": "cancelled"}),
        entry("POST", "Appointment", appointment("m-a-public"), full_url=urn(1))))
    assert response.status_code == 200, body(response)
    assert status(agendas, "m-a-public") == "busy"
    assert search(agendas, "Appointment", "slot=Slot/m-a-public&status=booked")["total"] == 1


def test_a_transaction_booking_one_slot_twice_writes_nothing(agendas: Any) -> None:
    before = totals(agendas)
    response = send(agendas, "POST", "", bundle(
        "transaction", entry("POST", "Appointment", appointment("m-a-public"), full_url=urn(1)),
        entry("POST", "Appointment", appointment("m-a-public"), full_url=urn(2))))
    conflict(response, "m-a-public")
    assert totals(agendas) == before and status(agendas, "m-a-public") == "free"


def test_a_batch_books_each_entry_on_its_own(agendas: Any) -> None:
    response = send(agendas, "POST", "", bundle(
        "batch", entry("POST", "Appointment", appointment("m-a-public")),
        entry("POST", "Appointment", appointment("m-a-public")),
        entry("POST", "Appointment", appointment("m-a-pro-snp"))))
    assert response.status_code == 200, body(response)
    entries = body(response)["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created", "409 Conflict",
                                                          "201 Created"]
    assert "Slot/m-a-public" in entries[1]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert sas_slots(agendas) == ["m-a-mixed", "m-b-cpts"]


# -- who may book --------------------------------------------------------------------------------

BOOKERS = {
    # An agenda that writes appointments and only reads slots: the server updates the slot.
    "booker": Principal(CLIENT, "booker", Scopes.parse(
        "system/Appointment.cruds system/Slot.rs system/Patient.rs")),
    "martin-only": Principal(CLIENT, "martin-only", Scopes.parse("system/*.*"),
                             practitioners=frozenset({"martin"})),
}


@pytest.fixture
def secured(agendas: Any, engine: Engine, database_url: str,
            monkeypatch: pytest.MonkeyPatch) -> Flask:
    return production_app(engine, database_url, monkeypatch, BOOKERS)


def as_client(app: Flask, who: str, method: str, path: str, resource: Any = None) -> Any:
    headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON, "Authorization": f"Bearer {who}"}
    return app.test_client().open(path, method=method, json=resource, headers=headers)


def test_a_client_without_slot_write_rights_books_through_the_server(
        secured: Flask, agendas: Any) -> None:
    refused = as_client(secured, "booker", "PUT", "/fhir/Slot/m-a-public",
                        slot(agendas, "m-a-public"))
    assert_outcome(refused, 403, "forbidden")
    response = as_client(secured, "booker", "POST", "/fhir/Appointment",
                         appointment("m-a-public"))
    assert response.status_code == 201, body(response)
    history = body(as_client(secured, "booker", "GET", "/fhir/Slot/m-a-public/_history"))
    assert history["entry"][0]["resource"]["status"] == "busy"
    assert history["entry"][0]["request"]["extension"][0]["valueString"].endswith(
        "on behalf of oauth-client booker")


def test_a_restricted_client_books_only_slots_of_its_agendas(secured: Flask,
                                                             agendas: Any) -> None:
    # Dr Martin's appointment on Dr Blanc's slot: the appointment is in the client's
    # agendas, the slot the server would take is not.
    response = as_client(secured, "martin-only", "POST", "/fhir/Appointment",
                         appointment("blanc-1"))
    assert "Slot/blanc-1" in assert_outcome(response, 403, "forbidden")["issue"][0]["diagnostics"]
    assert status(agendas, "blanc-1") == "free"
    response = as_client(secured, "martin-only", "POST", "/fhir/Appointment",
                         appointment("m-a-public"))
    assert response.status_code == 201, body(response)


# -- concurrency ---------------------------------------------------------------------------------

def test_fifty_parallel_bookings_of_one_slot_leave_one_appointment(
        threaded_server: LiveServer, engine: Engine) -> None:
    from app.storage.maintenance import truncate_all

    truncate_all(engine)
    base, headers = threaded_server.base_url, {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    loaded = requests.post(base, json=bundle("transaction", *(
        entry("PUT", f"{r['resourceType']}/{r['id']}", r) for r in [*agenda(), PATIENT])),
        headers=headers, timeout=60)
    assert loaded.status_code == 200, loaded.text
    start = threading.Barrier(50, timeout=60)

    def attempt(n: int) -> tuple[int, Resource]:
        resource = appointment("m-a-public",
                               identifier=[{"system": "urn:example:rdv", "value": str(n)}])
        with requests.Session() as session:
            start.wait()
            response = session.post(f"{base}/Appointment", json=resource, headers=headers,
                                    timeout=60)
            return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(attempt, range(50)))
    statuses = [code for code, _ in answers]
    assert statuses.count(201) == 1 and statuses.count(409) == 49, statuses
    assert all("Slot/m-a-public" in outcome["issue"][0]["diagnostics"]
               for code, outcome in answers if code == 409)
    holders = requests.get(f"{base}/Appointment?slot=Slot/m-a-public", headers=headers,
                           timeout=30).json()
    assert holders["total"] == 1
    versions = requests.get(f"{base}/Slot/m-a-public/_history", headers=headers,
                            timeout=30).json()
    assert [e["resource"]["status"] for e in versions["entry"]] == ["busy", "free"]
