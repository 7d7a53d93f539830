"""GAP flows 6a/6b (CI-SIS Gestion d'Agendas Partagés): appointments declared (`booked`) or
requested (`proposed`, with a slot or with participants only), accepted or declined by a
conditional update on their business identifier, the requester told through its
Subscription; and the overlap rule (app/scheduling/overlap.py): one appointment at a time per
practitioner, role or device unless a Schedule allows overbooking. On both databases."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from flask.testing import FlaskClient

from app.scheduling.overlap import OVERBOOKING_URL
from tests.factories import (
    FHIR_JSON,
    assert_outcome,
    body,
    bundle,
    entry,
    expressions,
    search,
    search_ids,
    send,
    urn,
)
from tests.support.sas_agenda import start_worker, stop_worker

Resource = dict[str, Any]
DAY = datetime.fromisoformat("2030-04-02T09:00:00+02:00")
REQUESTER = "urn:example:agenda-requerant"  # the requesting agenda's appointment ids
LEROY, MOREL, ROLE, ECHO = ("Practitioner/leroy", "Practitioner/morel",
                            "PractitionerRole/role-leroy", "Device/echo")
CABINET, SERVICE = "Location/cabinet", "HealthcareService/consultation"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
TIMEOUT = 30


def at(minutes: int) -> str:
    return (DAY + timedelta(minutes=minutes)).isoformat()


def _slot(slot_id: str, minutes: int) -> Resource:
    return {"resourceType": "Slot", "id": slot_id, "status": "free",
            "schedule": {"reference": "Schedule/sch-leroy"},
            "start": at(minutes), "end": at(minutes + 20)}


def resources() -> list[Resource]:
    """Dr Leroy (also as a role), Dr Morel, an ultrasound device, a practice place, a
    service, two patients; Dr Leroy's agenda with three 20-minute slots from 09:00."""
    def doctor(ident: str, rpps: str, family: str) -> Resource:
        return {"resourceType": "Practitioner", "id": ident, "active": True,
                "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1", "value": rpps}],
                "name": [{"family": family, "given": ["Anne"], "prefix": ["Dr"]}]}

    return [
        doctor("leroy", "810001111111", "Leroy"), doctor("morel", "810002222222", "Morel"),
        {"resourceType": "Location", "id": "cabinet", "name": "Cabinet", "status": "active"},
        {"resourceType": "HealthcareService", "id": "consultation", "name": "Consultation"},
        {"resourceType": "PractitionerRole", "id": "role-leroy", "active": True,
         "practitioner": {"reference": LEROY}, "location": [{"reference": CABINET}]},
        {"resourceType": "Device", "id": "echo",
         "deviceName": [{"name": "Échographe", "type": "user-friendly-name"}]},
        {"resourceType": "Patient", "id": "p-1", "name": [{"family": "Durand"}]},
        {"resourceType": "Patient", "id": "p-2", "name": [{"family": "Petit"}]},
        {"resourceType": "Schedule", "id": "sch-leroy", "active": True,
         "actor": [{"reference": LEROY}, {"reference": CABINET}]},
        _slot("s-0900", 0), _slot("s-0920", 20), _slot("s-0940", 40),
    ]


def rdv(start: int, end: int, *actors: str, status: str = "booked", patient: str = "p-1",
        slots: tuple[str, ...] = (), identifier: str | None = None,
        actor_status: str | None = None) -> Resource:
    """An appointment from 09:00 + `start` to 09:00 + `end` minutes for the patient and
    `actors`; `identifier` is the requester's id for it."""
    actor_status = actor_status or ("needs-action" if status == "proposed" else "accepted")
    appointment: Resource = {
        "resourceType": "Appointment", "status": status, "start": at(start), "end": at(end),
        "created": "2030-03-28T10:00:00+02:00",
        "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"},
                        *({"actor": {"reference": a}, "status": actor_status} for a in actors)]}
    if slots:
        appointment["slot"] = [{"reference": f"Slot/{s}"} for s in slots]
    if identifier:
        appointment["identifier"] = [{"system": REQUESTER, "value": identifier}]
    return appointment


def load(client: Any) -> None:
    response = send(client, "POST", "", bundle("transaction", *(
        entry("PUT", f"{r['resourceType']}/{r['id']}", r) for r in resources())))
    assert response.status_code == 200, body(response)


@pytest.fixture
def gap(client: FlaskClient) -> FlaskClient:
    load(client)
    return client


def post(client: Any, appointment: Resource) -> Resource:
    response = send(client, "POST", "Appointment", appointment)
    assert response.status_code == 201, body(response)
    return body(response)  # type: ignore[no-any-return]


def put(client: Any, resource: Resource, **changes: Any) -> Any:
    return send(client, "PUT", f"{resource['resourceType']}/{resource['id']}",
                {**resource, **changes})


def by_identifier(value: str) -> str:
    return f"Appointment?identifier={quote(f'{REQUESTER}|{value}', safe='')}"


def slot_status(client: Any, slot_id: str) -> str:
    return str(body(client.get(f"/fhir/Slot/{slot_id}"))["status"])


def statuses(client: Any) -> list[str]:
    return [slot_status(client, s) for s in ("s-0900", "s-0920", "s-0940")]


def versions(client: Any) -> int:
    return int(body(client.get("/fhir/_history?_count=1"))["total"])


def overlap(response: Any, actor: str, other: str, participant: int) -> str:
    """The 409 of the overlap rule: names the actor and the appointment in the way, and
    points at the participant."""
    outcome = assert_outcome(response, 409, "conflict")
    diagnostics = outcome["issue"][0]["diagnostics"]
    assert f"{actor} already has Appointment/{other}" in diagnostics, diagnostics
    assert "overlaps it" in diagnostics and OVERBOOKING_URL in diagnostics
    assert "nothing was written" in diagnostics
    assert expressions(outcome) == [f"Appointment.participant[{participant}]"]
    return str(diagnostics)


def with_overbooking(client: Any, *actors: str, allowed: bool = True,
                     active: bool = True) -> None:
    schedule = {"resourceType": "Schedule", "id": "sch-surbooking", "active": active,
                "actor": [{"reference": a} for a in actors],
                "extension": [{"url": OVERBOOKING_URL, "valueBoolean": allowed}]}
    response = send(client, "PUT", "Schedule/sch-surbooking", schedule)
    assert response.status_code in (200, 201), body(response)


# -- flow 6a: declarations and requests --------------------------------------------------------

def test_a_declaration_books_its_slot(gap: FlaskClient) -> None:
    declared = post(gap, rdv(0, 20, LEROY, slots=("s-0900",), identifier="d-1"))
    assert declared["status"] == "booked"
    assert statuses(gap) == ["busy", "free", "free"]
    assert search_ids(gap, "Appointment", f"actor={LEROY}&date=ge{quote(at(0))}") == [
        declared["id"]]


def test_a_request_with_a_slot_holds_it_tentatively(gap: FlaskClient) -> None:
    request = post(gap, rdv(20, 40, LEROY, status="proposed", slots=("s-0920",),
                            identifier="r-1"))
    assert request["participant"][1]["status"] == "needs-action"
    assert statuses(gap) == ["free", "busy-tentative", "free"]


def test_a_request_without_consulting_slots_names_its_participants(gap: FlaskClient) -> None:
    request = post(gap, rdv(0, 30, LEROY, ECHO, status="proposed", identifier="r-1"))
    assert "slot" not in request and statuses(gap) == ["free", "free", "free"]
    # The time asked for is held tentatively: a declaration over it is refused.
    response = send(gap, "POST", "Appointment", rdv(20, 40, ECHO, patient="p-2"))
    overlap(response, ECHO, request["id"], 1)
    # A request without times (R4 lets a proposed appointment have none) holds nothing.
    untimed = rdv(0, 0, LEROY, status="proposed", identifier="r-2")
    del untimed["start"], untimed["end"]
    post(gap, untimed)


# -- the overlap rule -------------------------------------------------------------------------

@pytest.mark.parametrize("actor", [LEROY, ROLE, ECHO])
def test_an_overlap_is_refused_and_nothing_is_written(gap: FlaskClient, actor: str) -> None:
    first = post(gap, rdv(0, 20, actor, slots=("s-0900",)))
    before = versions(gap)
    response = send(gap, "POST", "Appointment",
                    rdv(10, 30, MOREL, actor, patient="p-2", slots=("s-0920",)))
    diagnostics = overlap(response, actor, first["id"], 2)
    assert f"from {at(0)} to {at(20)}" in diagnostics and f"({at(10)} to {at(30)})" in diagnostics
    assert versions(gap) == before and statuses(gap) == ["busy", "free", "free"]
    assert search_ids(gap, "Appointment") == [first["id"]]


def test_other_actors_places_patients_and_adjacent_times_do_not_conflict(
        gap: FlaskClient) -> None:
    post(gap, rdv(0, 20, LEROY, CABINET, SERVICE, slots=("s-0900",)))
    post(gap, rdv(0, 20, MOREL, CABINET, SERVICE))  # same place, service and patient
    post(gap, rdv(20, 40, LEROY, slots=("s-0920",)))  # starts when the first ends
    post(gap, rdv(-20, 0, LEROY, patient="p-2"))  # ends when the first starts
    assert statuses(gap) == ["busy", "busy", "free"]
    overlap(send(gap, "POST", "Appointment", rdv(39, 41, MOREL, LEROY)), LEROY,
            search_ids(gap, "Appointment", "slot=Slot/s-0920")[0], 2)


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "waitlist"])
def test_appointments_that_hold_no_time_never_conflict(gap: FlaskClient, status: str) -> None:
    post(gap, rdv(0, 20, LEROY, status=status))
    post(gap, rdv(0, 20, LEROY, status=status))
    post(gap, rdv(0, 20, LEROY))


def test_participants_who_do_not_attend_are_not_busy(gap: FlaskClient) -> None:
    post(gap, rdv(0, 20, LEROY))
    declined = rdv(0, 20, MOREL, LEROY, actor_status="accepted")
    declined["participant"][2]["status"] = "declined"
    post(gap, declined)
    optional = rdv(0, 20, MOREL, LEROY)
    optional["participant"][1]["status"] = "declined"
    optional["participant"][2]["required"] = "information-only"
    post(gap, optional)
    # FR Core's appointmentOperator: who entered the appointment, not who takes part.
    entered = rdv(0, 20, MOREL, LEROY)
    entered["participant"][1]["status"] = "declined"
    entered["participant"][2]["type"] = [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "ENT"}]}]
    post(gap, entered)


def test_cancelling_frees_the_time_and_the_slot(gap: FlaskClient) -> None:
    first = post(gap, rdv(0, 20, LEROY, slots=("s-0900",)))
    assert put(gap, first, status="cancelled").status_code == 200
    assert statuses(gap) == ["free", "free", "free"]
    second = post(gap, rdv(0, 20, LEROY, patient="p-2", slots=("s-0900",)))
    assert statuses(gap) == ["busy", "free", "free"]
    # The cancelled one cannot come back over the time (nor the slot) now taken.
    moved = put(gap, first, status="booked", slot=[{"reference": "Slot/s-0940"}],
                start=at(10), end=at(30))
    overlap(moved, LEROY, second["id"], 1)
    assert statuses(gap) == ["busy", "free", "free"]
    # Deleting frees the time too.
    assert send(gap, "DELETE", f"Appointment/{second['id']}").status_code == 200
    assert put(gap, first, status="booked", start=at(10), end=at(30)).status_code == 200


def test_an_appointment_moves_over_its_own_time(gap: FlaskClient) -> None:
    first = post(gap, rdv(0, 20, LEROY, slots=("s-0900",)))
    other = post(gap, rdv(40, 60, LEROY, slots=("s-0940",)))
    longer = put(gap, first, end=at(30), comment="Prolongé")
    assert longer.status_code == 200, body(longer)
    overlap(put(gap, body(longer), start=at(30), end=at(50)), LEROY, other["id"], 1)
    assert body(gap.get(f"/fhir/Appointment/{first['id']}"))["end"] == at(30)


def test_a_schedule_with_overbooking_allows_it_for_each_of_its_actors(gap: FlaskClient) -> None:
    first = post(gap, rdv(0, 20, LEROY, ECHO, MOREL))
    with_overbooking(gap, LEROY, ECHO)
    post(gap, rdv(10, 30, LEROY, ECHO, patient="p-2"))
    post(gap, rdv(10, 30, ECHO))
    # Not for Dr Morel, whose Schedules do not say so.
    overlap(send(gap, "POST", "Appointment", rdv(5, 15, LEROY, MOREL)), MOREL, first["id"], 2)


@pytest.mark.parametrize("allowed, active", [(False, True), (True, False)])
def test_overbooking_false_or_on_an_inactive_schedule_allows_nothing(
        gap: FlaskClient, allowed: bool, active: bool) -> None:
    first = post(gap, rdv(0, 20, LEROY))
    with_overbooking(gap, LEROY, allowed=allowed, active=active)
    overlap(send(gap, "POST", "Appointment", rdv(10, 30, LEROY)), LEROY, first["id"], 1)


def test_overlaps_an_agenda_allowed_are_left_alone_afterwards(gap: FlaskClient) -> None:
    with_overbooking(gap, LEROY)
    first = post(gap, rdv(0, 20, LEROY))
    second = post(gap, rdv(10, 30, LEROY))
    with_overbooking(gap, LEROY, allowed=False)
    # Within the time each already holds: a comment, a status that still holds, shorter.
    assert put(gap, first, comment="Salle 2").status_code == 200
    assert put(gap, second, status="fulfilled", start=at(15)).status_code == 200
    current = body(gap.get(f"/fhir/Appointment/{first['id']}"))
    overlap(put(gap, current, end=at(40)), LEROY, second["id"], 1)


def test_a_transaction_moves_two_appointments_past_each_other(gap: FlaskClient) -> None:
    early = post(gap, rdv(0, 20, LEROY, slots=("s-0900",)))
    late = post(gap, rdv(20, 40, LEROY, patient="p-2", slots=("s-0920",)))
    swapped = send(gap, "POST", "", bundle(
        "transaction",
        entry("PUT", f"Appointment/{early['id']}", {**early, "start": at(20), "end": at(40),
                                                     "slot": [{"reference": "Slot/s-0920"}]}),
        entry("PUT", f"Appointment/{late['id']}", {**late, "start": at(0), "end": at(20),
                                                    "slot": [{"reference": "Slot/s-0900"}]})))
    assert swapped.status_code == 200, body(swapped)
    assert statuses(gap) == ["busy", "busy", "free"]
    assert search_ids(gap, "Appointment", "slot=Slot/s-0900") == [late["id"]]
    # Two new appointments of a transaction that overlap each other: nothing written.
    before = versions(gap)
    response = send(gap, "POST", "", bundle(
        "transaction", entry("POST", "Appointment", rdv(40, 60, LEROY), full_url=urn(1)),
        entry("POST", "Appointment", rdv(50, 70, ROLE, LEROY), full_url=urn(2))))
    assert "overlaps it" in assert_outcome(response, 409, "conflict")["issue"][0]["diagnostics"]
    assert versions(gap) == before and statuses(gap) == ["busy", "busy", "free"]


def test_a_batch_answers_each_overlap_on_its_own(gap: FlaskClient) -> None:
    response = send(gap, "POST", "", bundle(
        "batch", entry("POST", "Appointment", rdv(0, 20, LEROY)),
        entry("POST", "Appointment", rdv(10, 30, LEROY)),
        entry("POST", "Appointment", rdv(10, 30, MOREL))))
    assert response.status_code == 200, body(response)
    answers = [e["response"] for e in body(response)["entry"]]
    assert [a["status"] for a in answers] == ["201 Created", "409 Conflict", "201 Created"]
    assert answers[1]["outcome"]["issue"][0]["expression"] == ["Appointment.participant[1]"]


# -- flow 6b: accepting and declining a request by its identifier ------------------------------

def accept(client: Any, request: Resource) -> Any:
    accepted = {k: v for k, v in request.items() if k not in ("id", "meta")}
    accepted["status"] = "booked"
    accepted["participant"] = [{**p, "status": "accepted"} for p in request["participant"]]
    return send(client, "PUT", by_identifier(request["identifier"][0]["value"]), accepted)


def decline(client: Any, request: Resource, actor: str) -> Any:
    declined = {k: v for k, v in request.items() if k not in ("id", "meta")}
    declined["status"] = "cancelled"
    declined["participant"] = [
        {**p, "status": "declined"} if p["actor"]["reference"] == actor else p
        for p in request["participant"]]
    return send(client, "PUT", by_identifier(request["identifier"][0]["value"]), declined)


def test_the_agenda_accepts_or_declines_requests_by_their_identifier(gap: FlaskClient) -> None:
    first = post(gap, rdv(0, 20, LEROY, status="proposed", slots=("s-0900",), identifier="r-1"))
    second = post(gap, rdv(20, 40, LEROY, status="proposed", patient="p-2",
                           slots=("s-0920",), identifier="r-2"))
    assert statuses(gap) == ["busy-tentative", "busy-tentative", "free"]
    accepted = accept(gap, first)
    assert accepted.status_code == 200, body(accepted)
    stored = body(accepted)
    assert (stored["id"], stored["meta"]["versionId"], stored["status"]) == (
        first["id"], "2", "booked")
    assert {p["status"] for p in stored["participant"]} == {"accepted"}
    declined = decline(gap, second, LEROY)
    assert declined.status_code == 200, body(declined)
    assert (body(declined)["id"], body(declined)["status"]) == (second["id"], "cancelled")
    assert statuses(gap) == ["busy", "free", "free"]
    assert search_ids(gap, "Appointment", "part-status=declined") == [second["id"]]
    third = post(gap, rdv(40, 60, LEROY, status="proposed", identifier="r-3"))
    # An identifier that matches several appointments is 412 (R4 conditional update).
    post(gap, rdv(100, 120, MOREL, identifier="r-3"))
    assert_outcome(accept(gap, third), 412)
    assert search(gap, "Appointment", f"identifier={REQUESTER}|r-3")["total"] == 2


# -- concurrency ---------------------------------------------------------------------------------

ROUNDS = 6


def test_concurrent_overlapping_writes_leave_one_appointment(live_server: str) -> None:
    """Two clients at once, each round, through gunicorn (two processes): for one practitioner
    one 201 and one 409; the actor's row lock makes the second see the first."""
    loaded = requests.post(live_server, json=bundle("transaction", *(
        entry("PUT", f"{r['resourceType']}/{r['id']}", r) for r in resources())),
        headers=HEADERS, timeout=TIMEOUT)
    assert loaded.status_code == 200, loaded.text
    barrier = threading.Barrier(2, timeout=TIMEOUT)

    def write(round_: int, n: int) -> tuple[int, Resource]:
        # No slots: only the overlap rule can refuse the second of the round.
        start = 60 * round_ + 10 * n
        with requests.Session() as session:
            barrier.wait()
            response = session.post(f"{live_server}/Appointment", headers=HEADERS,
                                    json=rdv(start, start + 30, LEROY, patient=f"p-{n + 1}"),
                                    timeout=TIMEOUT)
            return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for round_ in range(ROUNDS):
            answers = list(pool.map(lambda n, r=round_: write(r, n), range(2)))
            assert sorted(code for code, _ in answers) == [201, 409], answers
            (refused,) = [outcome for code, outcome in answers if code == 409]
            assert "overlaps it" in refused["issue"][0]["diagnostics"]
    found = requests.get(f"{live_server}/Appointment?actor={LEROY}&_summary=count",
                         headers=HEADERS, timeout=TIMEOUT).json()
    assert found["total"] == ROUNDS


# -- the requester is told: a Subscription, the worker, a real HTTP receiver ------------------

@dataclass(frozen=True)
class Hook:
    method: str
    path: str
    body: Resource | None


class Subscriber:
    """The requesting agenda's rest-hook endpoint: records every request, answers 200."""

    def __init__(self) -> None:
        self.received: list[Hook] = []
        self.lock = threading.Lock()
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                with subscriber.lock:
                    subscriber.received.append(
                        Hook(self.command, self.path, json.loads(data) if data else None))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _record

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = TIMEOUT) -> list[Hook]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"{count} notifications expected, got {self.received}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    receiver = Subscriber()
    yield receiver
    receiver.close()


def test_the_requester_is_told_of_the_acceptance_and_the_refusal(
        live_server: str, database_url: str, subscriber: Subscriber, tmp_path: Path) -> None:
    """End to end: gunicorn takes the writes, a `fhir-agenda worker` process delivers."""
    def call(method: str, path: str, resource: Resource | None = None) -> Any:
        response = requests.request(method, f"{live_server}/{path}", json=resource,
                                    headers=HEADERS, timeout=TIMEOUT)
        assert response.status_code in (200, 201), response.text
        return response.json()

    call("POST", "", bundle("transaction", *(
        entry("PUT", f"{r['resourceType']}/{r['id']}", r) for r in resources())))
    channel = {"type": "rest-hook", "payload": FHIR_JSON}
    # The requester follows its own request, and every answer of Dr Leroy's agenda.
    for path, criteria in (("mine", f"Appointment?identifier={REQUESTER}|r-1"),
                           ("answers", f"Appointment?status=booked,cancelled&actor={LEROY}")):
        call("POST", "Subscription", {
            "resourceType": "Subscription", "status": "requested", "reason": "Réponses",
            "criteria": criteria,
            "channel": {**channel, "endpoint": f"{subscriber.url}/{path}"}})
    env = {"DATABASE_URL": database_url, "FHIR_BASE_URL": live_server,
           "WORKER_POLL_SECONDS": "0.05", "OUTBOX_BASE_DELAY_SECONDS": "0.05"}
    worker = start_worker({**_environment(), **env}, tmp_path / "worker.log")
    try:
        first = call("POST", "Appointment", rdv(0, 20, LEROY, status="proposed",
                                                 slots=("s-0900",), identifier="r-1"))
        second = call("POST", "Appointment", rdv(20, 40, LEROY, status="proposed",
                                                  patient="p-2", slots=("s-0920",),
                                                  identifier="r-2"))
        # Told before it is answered (an undelivered version would be superseded).
        subscriber.wait(1)
        accepted = {k: v for k, v in first.items() if k not in ("id", "meta")}
        accepted.update(status="booked",
                        participant=[{**p, "status": "accepted"} for p in first["participant"]])
        call("PUT", by_identifier("r-1"), accepted)
        declined = {k: v for k, v in second.items() if k not in ("id", "meta")}
        declined.update(status="cancelled", participant=[
            second["participant"][0], {**second["participant"][1], "status": "declined"}])
        call("PUT", by_identifier("r-2"), declined)
        hooks = subscriber.wait(4)
    finally:
        stop_worker(worker)
    got = sorted((h.method, h.path, h.body["status"] if h.body else None) for h in hooks)
    assert got == sorted([
        ("PUT", f"/answers/Appointment/{first['id']}", "booked"),
        ("PUT", f"/answers/Appointment/{second['id']}", "cancelled"),
        ("PUT", f"/mine/Appointment/{first['id']}", "booked"),
        ("PUT", f"/mine/Appointment/{first['id']}", "proposed"),
    ]), (got, (tmp_path / "worker.log").read_text())
    # In order per appointment: the request first, then its acceptance.
    mine = [h.body for h in hooks if h.path.startswith("/mine/") and h.body]
    assert [(b["status"], b["meta"]["versionId"]) for b in mine] == [("proposed", "1"),
                                                                      ("booked", "2")]
    told = next(h.body for h in hooks if h.path == f"/answers/Appointment/{second['id']}")
    assert told and told["participant"][1] == {"actor": {"reference": LEROY},
                                               "status": "declined"}
    assert call("GET", "Slot/s-0900")["status"] == "busy"
    assert call("GET", "Slot/s-0920")["status"] == "free"


def _environment() -> dict[str, str]:
    # As tests/support/sas_agenda.py: requests would prefer these to the worker's own CA.
    return {k: v for k, v in os.environ.items()
            if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
