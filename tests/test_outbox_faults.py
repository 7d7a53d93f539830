"""The outbox and the delivery worker when SAS misbehaves: errors, outages, timeouts, refusals,
give-up, a worker killed mid-delivery, workers side by side. SAS is the mutual-TLS receiver of
tests/support/receiver.py; "no duplicate in effect" is judged on its FHIR state.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from app.cli import main as cli
from app.state import state_of
from app.subscriptions.worker import Worker
from tests.support.pki import Pki
from tests.support.receiver import Received, SasReceiver
from tests.support.sas_agenda import (
    APPOINTMENT_SYSTEM,
    DOCTOR_RPPS,
    Agenda,
    assert_sas_body,
    at,
    drain,
    outbox_rows,
    sas_app,
    sas_id,
    sas_url_query,
    start_worker,
    stop_worker,
    unsettled,
    wait_until,
    worker_env,
)
from tests.support.sas_fixtures import pki_fixture, sas_ca_bundle_only, sas_fixture  # noqa: F401

ADMIN = {"Authorization": "Bearer admin-secret"}


def _app(engine: Engine, database_url: str, sas: SasReceiver, pki: Pki,
         **overrides: Any) -> tuple[Flask, Agenda, str, str]:
    app = sas_app(engine, database_url, sas, pki, **overrides)
    agenda = Agenda(app)
    return app, agenda, agenda.doctor(), agenda.regulator()


def _statuses(engine: Engine) -> list[str]:
    return [row["status"] for row in outbox_rows(engine)]


def _of(requests: list[Received], appointment: dict[str, Any]) -> list[Received]:
    wanted = f"{APPOINTMENT_SYSTEM}|{sas_id(appointment)}"
    return [r for r in requests if r.identifier == wanted]


def _sas_state(sas: SasReceiver, appointment: dict[str, Any]) -> dict[str, Any]:
    (held,) = sas.matching(APPOINTMENT_SYSTEM, sas_id(appointment))  # one, never two
    return held


# -- retryable failures -------------------------------------------------------------------------

def test_server_errors_then_recovery_deliver_once_and_in_order(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki)
    sas.fail(times=2, status=500)
    appointment = agenda.book([doctor], operator)
    drain(app)
    sas.fail(times=1, status=503, retry_after="0")
    appointment = agenda.change(appointment, minutes=30)
    drain(app)
    appointment = agenda.change(appointment, status="cancelled")
    drain(app)

    seen = sas.requests
    assert [(r.method, r.status) for r in seen] == [
        ("POST", 500), ("PUT", 500), ("PUT", 201), ("PUT", 503), ("PUT", 200), ("PUT", 200)]
    # The first announcement is retried as the conditional PUT: a retry cannot create twice.
    assert seen[0].path == "/fhir/Appointment"
    assert all(r.query == {"identifier": [sas_url_query(appointment)]} for r in seen[1:])
    assert [r.body["start"] for r in seen] == [at(0)] * 3 + [at(30)] * 2 + [at(30)]
    assert [r.body["status"] for r in seen][-1] == "cancelled"
    held = _sas_state(sas, appointment)
    assert (held["status"], held["start"], held["meta"]["versionId"]) == ("cancelled", at(30),
                                                                           "3")
    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"], r["last_status"]) for r in rows] == [
        ("delivered", 3, 201), ("delivered", 2, 200), ("delivered", 1, 200)]


def test_receiver_down_for_a_while_then_everything_is_delivered_in_order(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki)
    sas.stop()
    first = agenda.book([doctor], operator)
    second = agenda.book([doctor], operator, minutes=60)
    first = agenda.change(first, minutes=15)

    def heads_tried(times: int) -> bool:
        rows = outbox_rows(engine)
        heads = {}
        for row in rows:
            heads.setdefault(row["ordering_key"], row)
        return all(h["attempts"] >= times for h in heads.values())

    drain(app, timeout=15, until=lambda: heads_tried(4))  # several passes, with backoff
    rows = outbox_rows(engine)
    assert [r["status"] for r in rows] == ["pending"] * 3
    assert [r["attempts"] >= 4 for r in rows] == [True, True, False]  # the PUT waits its turn
    assert rows[2]["attempts"] == 0
    assert all("ConnectionError" in r["last_error"] for r in rows[:2])
    assert rows[0]["next_attempt_at"] > rows[0]["created_at"]
    # More changes while SAS is away.
    second = agenda.change(second, status="cancelled")
    first = agenda.change(first, minutes=20)
    sas.start()
    drain(app)

    seen = sas.requests
    assert all(r.status in (200, 201) for r in seen)
    for appointment, starts, status in ((first, [0, 20], "booked"), (second, [60, 60],
                                                                       "cancelled")):
        mine = _of(seen, appointment)
        # A retried announcement goes as the conditional PUT, then the latest state follows.
        assert [(r.method, r.status) for r in mine] == [("PUT", 201), ("PUT", 200)]
        assert [r.body["start"] for r in mine] == [at(m) for m in starts]
        assert mine[-1].body["status"] == status
        held = _sas_state(sas, appointment)
        assert (held["start"], held["status"]) == (at(starts[-1]), status)
    assert len(sas.appointments) == 2
    assert _statuses(engine) == ["delivered", "delivered", "superseded", "delivered",
                                 "delivered"]


def test_timeouts_are_retried_without_duplicates_at_sas(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki,
                                         outbound_timeout_seconds=0.5)
    sas.slow(1.5)  # SAS takes the POST in, but answers after we gave up
    appointment = agenda.book([doctor], operator)
    drain(app)
    sas.slow(1.5)
    appointment = agenda.change(appointment, minutes=30)
    drain(app)

    seen = sas.requests
    assert [r.method for r in seen] == ["POST", "PUT", "PUT", "PUT"]
    assert [r.fault for r in seen] == ["slow", None, "slow", None]
    assert all(r.applied for r in seen)
    held = _sas_state(sas, appointment)  # one appointment: the retry updated it
    assert (held["start"], held["meta"]["versionId"]) == (at(30), "4")
    assert [action for action, _, _ in sas.effects] == ["create", "update", "update", "update"]
    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"]) for r in rows] == [("delivered", 2), ("delivered", 2)]


# -- non-retryable answers, parking, replay -----------------------------------------------------

def test_a_rejected_message_is_parked_listed_holds_back_its_key_and_is_replayed(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki)
    outcome = sas.reject("Appointment.participant[0]: praticien inconnu du SAS")
    appointment = agenda.book([doctor], operator)
    other = agenda.book([doctor], operator, minutes=120)  # another key: not held back
    drain(app)
    appointment = agenda.change(appointment, minutes=30)
    appointment = agenda.change(appointment, minutes=60)
    drain(app)
    assert [(r.method, r.status) for r in sas.requests] == [("POST", 400), ("POST", 201)]
    assert _sas_state(sas, other)["start"] == at(120)
    rows = outbox_rows(engine)
    parked = rows[0]
    assert [r["status"] for r in rows] == ["parked", "delivered", "superseded", "pending"]
    assert (parked["attempts"], parked["last_status"]) == (1, 400)
    assert json.loads(parked["last_error"].removeprefix("HTTP 400: ")) == outcome
    assert rows[3]["attempts"] == 0  # waiting behind the parked one, never sent

    runner = app.test_cli_runner()
    listed = runner.invoke(cli, ["outbox", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "delivered=1 parked=1 pending=1 superseded=1"
    assert lines[1].startswith(f"#{parked['pk']} parked attempts=1 POST {sas.base_url}/Appointment")
    assert "last=400 HTTP 400: " in lines[1] and "OperationOutcome" in lines[1]
    assert lines[2].startswith(f"#{rows[3]['pk']} pending attempts=0 PUT ")
    assert runner.invoke(cli, ["outbox", "list", "--status", "parked"]).output.count("#") == 1

    client = app.test_client()
    assert client.get("/admin/outbox").status_code == 401
    assert client.get("/admin/outbox", headers={"Authorization": "Bearer nope"}
                      ).status_code == 401
    view = client.get("/admin/outbox", headers=ADMIN)
    assert view.status_code == 200
    document = view.get_json()
    assert document["counts"] == {"delivered": 1, "parked": 1, "pending": 1, "superseded": 1}
    shown = {m["pk"]: m for m in document["messages"]}
    assert set(shown) == {parked["pk"], rows[3]["pk"]}
    assert shown[parked["pk"]]["status"] == "parked"
    assert shown[parked["pk"]]["last_status"] == 400
    assert "praticien inconnu du SAS" in shown[parked["pk"]]["last_error"]
    assert shown[parked["pk"]]["retrying"] is False
    only = client.get("/admin/outbox?status=parked", headers=ADMIN).get_json()
    assert [m["pk"] for m in only["messages"]] == [parked["pk"]]

    assert runner.invoke(cli, ["outbox", "replay"]).exit_code == 2  # ids or --all
    replayed = runner.invoke(cli, ["outbox", "replay", str(parked["pk"])])
    assert replayed.exit_code == 0 and "1 parked messages queued again" in replayed.output
    drain(app)  # SAS accepts it now
    seen = sas.requests
    # A replayed announcement may have landed before: it goes as the conditional PUT.
    assert [(r.method, r.status) for r in seen] == [
        ("POST", 400), ("POST", 201), ("PUT", 201), ("PUT", 200)]
    assert_sas_body(seen[3].body, appointment, status="booked", doctors=[DOCTOR_RPPS],
                    minutes=60)
    held = _sas_state(sas, appointment)
    assert (held["start"], held["meta"]["versionId"]) == (at(60), "2")
    assert _statuses(engine) == ["delivered", "delivered", "superseded", "delivered"]


def test_give_up_horizon_parks_a_message_that_keeps_failing(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki,
                                         outbox_give_up_hours=1e-7)  # 0.36 ms
    sas.fail(times=1, status=503)
    appointment = agenda.book([doctor], operator)
    time.sleep(0.01)
    drain(app)
    appointment = agenda.change(appointment, status="cancelled")
    drain(app)
    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"], r["last_status"]) for r in rows] == [
        ("parked", 1, 503), ("pending", 0, None)]
    assert rows[0]["last_error"].startswith("gave up: HTTP 503")
    assert len(sas.requests) == 1
    result = app.test_cli_runner().invoke(cli, ["outbox", "replay", "--all"])
    assert "1 parked messages queued again" in result.output
    drain(app)
    assert [(r.method, r.status) for r in sas.requests] == [
        ("POST", 503), ("PUT", 201), ("PUT", 200)]
    assert _sas_state(sas, appointment)["status"] == "cancelled"


def test_replaying_an_announcement_that_may_have_landed_does_not_duplicate(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki,
                                         outbound_timeout_seconds=0.5,
                                         outbox_give_up_hours=1e-7)
    sas.slow(1.0)  # taken in, answered too late: parked at once ("gave up")
    appointment = agenda.book([doctor], operator)
    time.sleep(0.01)
    drain(app)
    assert _statuses(engine) == ["parked"]
    app.test_cli_runner().invoke(cli, ["outbox", "replay", "--all"])
    drain(app)
    assert [r.method for r in sas.requests] == ["POST", "PUT"]
    _sas_state(sas, appointment)  # exactly one appointment at SAS


def test_an_unusable_retry_after_does_not_stop_the_worker(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki)
    sas.fail(times=1, status=503, retry_after="inf")
    appointment = agenda.book([doctor], operator)
    Worker(state_of(app)).run(once=True)
    assert _statuses(engine) == ["pending"]
    drain(app)
    _sas_state(sas, appointment)


def test_a_late_outcome_after_the_lease_expired_does_not_reopen_a_delivered_message(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki)
    sas.hold(apply_first=True, drop=True)
    appointment = agenda.book([doctor], operator)
    stalled = Worker(state_of(app))
    stalled.lease = timedelta(seconds=0.3)  # stands for a worker stalled past its lease
    thread = threading.Thread(target=stalled.step)
    thread.start()
    try:
        assert sas.wait_for(lambda: sas.holding == 1, timeout=10)
        time.sleep(0.4)
        drain(app)  # another worker takes the expired lease over and delivers
        appointment = agenda.change(appointment, minutes=30)
        drain(app)
        assert _statuses(engine) == ["delivered", "delivered"]
    finally:
        sas.release()  # the stalled worker's connection is cut: ConnectionError, late
        thread.join(timeout=10)
    drain(app)
    assert _statuses(engine) == ["delivered", "delivered"]
    assert _sas_state(sas, appointment)["start"] == at(30)


# -- workers as processes -----------------------------------------------------------------------

def test_worker_killed_mid_delivery_then_restarted_delivers_once_in_order(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki,
        tmp_path: Path) -> None:
    # The lease is 2 × timeout + 5 s: 9 s here, the time the restarted worker waits.
    env = worker_env(database_url, sas, pki, OUTBOUND_TIMEOUT_SECONDS="2")
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki)
    sas.hold(apply_first=True)  # SAS takes the POST in; the answer never reaches us
    appointment = agenda.book([doctor], operator)
    log = tmp_path / "worker.log"
    worker = start_worker(env, log)
    try:
        assert sas.wait_for(lambda: sas.holding == 1, timeout=30), log.read_text()
        appointment = agenda.change(appointment, minutes=30)  # queued behind the POST
        assert stop_worker(worker, signal.SIGKILL) == -signal.SIGKILL
    finally:
        stop_worker(worker, signal.SIGKILL)
        sas.release()
    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"]) for r in rows] == [("delivering", 1), ("pending", 0)]

    restarted = start_worker(env, log)
    try:
        wait_until(lambda: not unsettled(engine), 40, "the restarted worker")
    finally:
        assert stop_worker(restarted) == 0, log.read_text()  # SIGTERM: a clean stop
    seen = sas.requests
    assert [r.method for r in seen] == ["POST", "PUT", "PUT"]
    assert seen[1].arrived_at - seen[0].arrived_at > 5  # not before the lease expired
    assert seen[1].query["identifier"] == [sas_url_query(appointment)]  # the retry form
    assert [r.body["start"] for r in seen] == [at(0), at(0), at(30)]
    assert [r.status for r in seen[1:]] == [200, 200]
    held = _sas_state(sas, appointment)
    assert (held["start"], held["meta"]["versionId"]) == (at(30), "3")
    assert [(r["status"], r["attempts"]) for r in outbox_rows(engine)] == [
        ("delivered", 2), ("delivered", 1)]


def test_two_workers_in_parallel_keep_order_per_appointment(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki,
        tmp_path: Path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers side by side need PostgreSQL (SKIP LOCKED)")
    app, agenda, doctor, operator = _app(engine, database_url, sas, pki)
    env = worker_env(database_url, sas, pki)
    workers = [start_worker(env, tmp_path / f"worker-{n}.log") for n in (1, 2)]
    final: dict[str, dict[str, Any]] = {}
    try:
        appointments = [agenda.book([doctor], operator, minutes=1000 * n) for n in range(20)]
        for step in range(1, 10):  # 20 bookings + 180 changes, interleaved
            for n, appointment in enumerate(appointments):
                changes: dict[str, Any] = {"minutes": 1000 * n + step}
                if step == 9 and n % 3 == 0:
                    changes["status"] = "cancelled"
                appointments[n] = agenda.change(appointment, **changes)
        final = {sas_id(a): a for a in appointments}
        wait_until(lambda: not unsettled(engine), 60, "two workers to drain the outbox")
    finally:
        codes = [stop_worker(w) for w in workers]
    logs = "\n".join((tmp_path / f"worker-{n}.log").read_text() for n in (1, 2))
    assert codes == [0, 0], logs
    assert "Traceback" not in logs, logs

    seen = sas.requests
    rows = outbox_rows(engine)
    assert {r["status"] for r in rows} <= {"delivered", "superseded"}
    assert len(seen) == sum(r["status"] == "delivered" for r in rows)  # each sent once
    assert all(r.status in (200, 201) and r.applied for r in seen)
    by_identifier: dict[str, list[Received]] = defaultdict(list)
    for request in seen:
        by_identifier[request.identifier or ""].append(request)
    assert set(by_identifier) == {f"{APPOINTMENT_SYSTEM}|{key}" for key in final}
    for identifier, requests in by_identifier.items():
        appointment = final[identifier.split("|", 1)[1]]
        assert [r.method for r in requests] == ["POST"] + ["PUT"] * (len(requests) - 1)
        starts = [r.body["start"] for r in requests]
        assert starts == sorted(set(starts)), f"out of order or twice: {starts}"
        assert (requests[-1].body["start"], requests[-1].body["status"]) == (
            appointment["start"], "cancelled" if appointment["status"] == "cancelled"
            else "booked")
        held = _sas_state(sas, appointment)
        assert (held["start"], held["status"]) == (appointment["start"], appointment["status"])
    assert len(sas.appointments) == 20
    # Both workers took part: each keeps its own connection to SAS.
    assert len({r.peer for r in seen}) >= 2
