"""INT_R03 end to end: appointments booked by SAS regulators are told to a real HTTPS receiver
with mutual TLS standing in for SAS (tests/support/receiver.py), through the outbox and the
delivery worker: one POST, then a conditional PUT on each change, every body a valid
FrAppointmentSAS.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import Engine

from app.state import state_of
from app.subscriptions.worker import Worker
from tests.support.pki import Pki
from tests.support.receiver import SasReceiver
from tests.support.sas_agenda import (
    APPOINTMENT_SYSTEM,
    DOCTOR_RPPS,
    IDNPS,
    OTHER_RPPS,
    REGULATOR_RPPS,
    REGULATOR_TECH_ID,
    SAS_SYSTEM,
    Agenda,
    assert_sas_body,
    drain,
    national,
    outbox_rows,
    prefixed,
    regulator,
    regulator_url,
    sas_app,
    sas_id,
    sas_url_query,
    stored_body,
    technical,
)
from tests.support.sas_fixtures import pki_fixture, sas_ca_bundle_only, sas_fixture  # noqa: F401

SAS_CONTENT_TYPE = "application/json+fhir; charset=utf-8"


@pytest.fixture
def app(engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> Flask:
    return sas_app(engine, database_url, sas, pki)


@pytest.fixture
def agenda(app: Flask) -> Agenda:
    return Agenda(app)


def _statuses(rows: list[dict[str, Any]]) -> list[str]:
    return [row["status"] for row in rows]


def test_booking_then_each_change_reach_sas_once_and_in_order(
        agenda: Agenda, app: Flask, sas: SasReceiver, pki: Pki) -> None:
    doctor, other = agenda.doctor(), agenda.doctor(OTHER_RPPS, "Bernard")
    operator = agenda.regulator()
    appointment = agenda.book([doctor], operator)
    drain(app)
    steps: list[tuple[dict[str, Any], str, list[str], int]] = [
        ({"minutes": 45}, "booked", [DOCTOR_RPPS], 45),            # time moved
        ({"doctors": [other]}, "booked", [OTHER_RPPS], 45),         # participants changed
        ({"doctors": [doctor, other]}, "booked", [DOCTOR_RPPS, OTHER_RPPS], 45),
        ({"status": "fulfilled"}, "fulfilled", [DOCTOR_RPPS, OTHER_RPPS], 45),
        ({"status": "noshow"}, "noshow", [DOCTOR_RPPS, OTHER_RPPS], 45),
        ({"status": "cancelled"}, "cancelled", [DOCTOR_RPPS, OTHER_RPPS], 45),
    ]
    for changes, _, _, _ in steps:
        appointment = agenda.change(appointment, **changes)
        drain(app)

    seen = sas.requests
    assert [r.method for r in seen] == ["POST"] + ["PUT"] * len(steps)
    assert seen[0].path == "/fhir/Appointment"
    for request in seen[1:]:
        assert request.query == {"identifier": [sas_url_query(appointment)]}
        assert request.path.startswith("/fhir/Appointment?identifier=")
    assert [r.status for r in seen] == [201] + [200] * len(steps)
    assert {r.client_subject for r in seen} == {pki.client_subject}
    assert {r.tls_version for r in seen} <= {"TLSv1.2", "TLSv1.3"}
    assert {r.headers["Content-Type"] for r in seen} == {SAS_CONTENT_TYPE}
    assert_sas_body(seen[0].body, appointment, status="booked", doctors=[DOCTOR_RPPS], minutes=0)
    for request, (_, status, doctors, minutes) in zip(seen[1:], steps, strict=True):
        assert_sas_body(request.body, appointment, status=status, doctors=doctors,
                        minutes=minutes)
    assert {r.body["identifier"][0]["value"] for r in seen} == {sas_id(appointment)}
    # SAS ends with one appointment, in the last state.
    (held,) = sas.appointments
    assert held["status"] == "cancelled" and held["meta"]["versionId"] == str(len(steps) + 1)
    rows = outbox_rows(state_of(app).engine)
    assert _statuses(rows) == ["delivered"] * len(seen)
    assert [r["last_status"] for r in rows] == [201] + [200] * len(steps)
    assert [r["version"] for r in rows] == sorted(r["version"] for r in rows)
    assert [stored_body(r) for r in rows] == [r.body for r in seen]


def test_changes_that_sas_does_not_see_send_nothing(agenda: Agenda, app: Flask,
                                                     sas: SasReceiver) -> None:
    doctor, operator = agenda.doctor(), agenda.regulator()
    appointment = agenda.book([doctor], operator)
    drain(app)
    # arrived/checked-in are still "booked" for SAS, a comment is not in FrAppointmentSAS.
    appointment = agenda.change(appointment, status="arrived")
    appointment = agenda.change(appointment, status="checked-in", comment="En salle d'attente")
    drain(app)
    assert [r.method for r in sas.requests] == ["POST"]
    assert len(outbox_rows(state_of(app).engine)) == 1


def test_changes_made_while_no_worker_runs_collapse_into_the_final_state(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    doctor, operator = agenda.doctor(), agenda.regulator()
    appointment = agenda.book([doctor], operator)
    for minutes in (15, 30, 60):
        appointment = agenda.change(appointment, minutes=minutes)
    appointment = agenda.change(appointment, status="cancelled")
    drain(app)
    seen = sas.requests
    assert [r.method for r in seen] == ["POST", "PUT"]
    assert_sas_body(seen[0].body, appointment, status="booked", doctors=[DOCTOR_RPPS], minutes=0)
    assert_sas_body(seen[1].body, appointment, status="cancelled", doctors=[DOCTOR_RPPS],
                    minutes=60)
    assert _statuses(outbox_rows(state_of(app).engine)) == [
        "delivered", "superseded", "superseded", "superseded", "delivered"]
    (held,) = sas.appointments
    assert (held["status"], held["start"]) == ("cancelled", appointment["start"])


def test_operator_identifier_follows_the_regulator_to_its_national_id(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    doctor, operator = agenda.doctor(), agenda.regulator()
    appointment = agenda.book([doctor], operator)
    drain(app)
    # SAS gives the regulator their national id (INT_R02): same account.
    switched = agenda.write("PUT", regulator_url(SAS_SYSTEM, REGULATOR_TECH_ID),
                            regulator(national()))
    assert switched["id"] == operator
    appointment = agenda.change(appointment, minutes=30)
    drain(app)
    first, second = sas.requests
    assert_sas_body(first.body, appointment, status="booked", doctors=[DOCTOR_RPPS],
                    operator=("INTRN", SAS_SYSTEM, REGULATOR_TECH_ID))
    assert_sas_body(second.body, appointment, status="booked", doctors=[DOCTOR_RPPS],
                    operator=("IDNPS", IDNPS, prefixed(REGULATOR_RPPS)), minutes=30)
    assert second.method == "PUT" and second.query["identifier"] == [sas_url_query(appointment)]


def test_a_participant_given_as_practitioner_role_is_told_by_the_doctors_idnps(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    doctor, operator = agenda.doctor(), agenda.regulator()
    appointment = agenda.book([agenda.role(doctor)], operator, role=True)
    drain(app)
    (request,) = sas.requests
    assert_sas_body(request.body, appointment, status="booked", doctors=[DOCTOR_RPPS])


def test_deleting_an_announced_appointment_cancels_it_at_sas(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    doctor, operator = agenda.doctor(), agenda.regulator()
    appointment = agenda.book([doctor], operator, minutes=10)
    drain(app)
    assert agenda.send("DELETE", f"Appointment/{appointment['id']}").status_code in (200, 204)
    drain(app)
    first, second = sas.requests
    assert (first.method, second.method) == ("POST", "PUT")
    assert_sas_body(second.body, appointment, status="cancelled", doctors=[DOCTOR_RPPS],
                    minutes=10)
    (held,) = sas.appointments
    assert held["status"] == "cancelled"


def test_a_proposal_is_told_only_once_booked(agenda: Agenda, app: Flask,
                                             sas: SasReceiver) -> None:
    doctor, operator = agenda.doctor(), agenda.regulator()
    appointment = agenda.book([doctor], operator, status="proposed")
    drain(app)
    assert sas.requests == []
    appointment = agenda.change(appointment, status="booked")
    drain(app)
    (request,) = sas.requests
    assert request.method == "POST"
    assert_sas_body(request.body, appointment, status="booked", doctors=[DOCTOR_RPPS])


def test_appointments_not_booked_by_an_active_regulator_send_nothing(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    doctor, other = agenda.doctor(), agenda.doctor(OTHER_RPPS, "Bernard")
    inactive = agenda.regulator(active=False)
    plain = agenda.book([doctor], None)                  # booked by the agenda itself
    by_inactive = agenda.book([doctor], inactive, minutes=30)
    by_a_doctor = agenda.book([doctor], other, minutes=60)  # operator is no regulator
    for appointment in (plain, by_inactive, by_a_doctor):
        changed = agenda.change(appointment, minutes=90)
        agenda.change(changed, status="cancelled")
    drain(app)
    assert sas.requests == []
    assert outbox_rows(state_of(app).engine) == []


def test_cancellation_is_told_even_after_the_regulator_left(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    doctor, operator = agenda.doctor(), agenda.regulator()
    appointment = agenda.book([doctor], operator)
    drain(app)
    agenda.write("PUT", regulator_url(SAS_SYSTEM, REGULATOR_TECH_ID),
                 regulator(technical(), active=False))
    appointment = agenda.change(appointment, status="cancelled")
    drain(app)
    assert [r.method for r in sas.requests] == ["POST", "PUT"]
    assert sas.requests[1].body["status"] == "cancelled"


# -- mutual TLS ---------------------------------------------------------------------------------

def test_receiver_refuses_a_client_certificate_from_another_ca(sas: SasReceiver, pki: Pki
                                                                ) -> None:
    body = {"resourceType": "Appointment", "status": "booked"}
    for cert in ((str(pki.intruder_cert), str(pki.intruder_key)), None):
        with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one
            requests.post(f"{sas.base_url}/Appointment", json=body, cert=cert,
                          verify=str(pki.ca_cert), timeout=5)
    assert sas.wait_for(lambda: len(sas.handshake_failures) == 2, timeout=5)
    assert sas.requests == []
    # Ours goes through, and the receiver sees who we are.
    answer = requests.post(f"{sas.base_url}/Appointment", json=body,
                           headers={"Content-Type": "application/fhir+json"},
                           cert=(str(pki.client_cert), str(pki.client_key)),
                           verify=str(pki.ca_cert), timeout=5)
    assert answer.status_code == 201
    assert answer.headers["Location"].startswith(f"{sas.base_url}/Appointment/")
    assert [r.client_subject for r in sas.requests] == [pki.client_subject]
    assert pki.client_subject == "CN=fhir-agenda agenda client,O=fhir-agenda tests,C=FR"


def test_a_worker_with_a_certificate_sas_does_not_trust_delivers_nothing(
        engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> None:
    app = sas_app(engine, database_url, sas, pki, sas_client_cert=str(pki.intruder_cert),
                  sas_client_key=str(pki.intruder_key), outbox_base_delay_seconds=5)
    agenda = Agenda(app)
    agenda.book([agenda.doctor()], agenda.regulator())
    assert Worker(state_of(app)).run(once=True) == 1
    assert sas.requests == []
    (row,) = outbox_rows(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "SSL" in row["last_error"] or "Connection" in row["last_error"]
    assert sas.wait_for(lambda: bool(sas.handshake_failures), timeout=5)
    assert "certificate verify failed" in sas.handshake_failures[0]


def test_a_receiver_with_a_certificate_from_an_unknown_ca_is_refused(
        engine: Engine, database_url: str, pki: Pki) -> None:
    with SasReceiver(pki, server_cert=pki.rogue_server_cert,
                     server_key=pki.rogue_server_key) as rogue:
        # Backoff of 0.1–0.3 s: one attempt per worker pass, due again after the sleep.
        app = sas_app(engine, database_url, rogue, pki, outbox_base_delay_seconds=0.2)
        agenda = Agenda(app)
        agenda.book([agenda.doctor()], agenda.regulator())
        for attempt in (1, 2, 3):
            assert Worker(state_of(app)).run(once=True) == 1
            (row,) = outbox_rows(engine)
            assert (row["status"], row["attempts"]) == ("pending", attempt)
            assert "CERTIFICATE_VERIFY_FAILED" in row["last_error"]
            assert row["last_status"] is None and row["delivered_at"] is None
            assert row["next_attempt_at"] > row["created_at"]  # to be retried later
            time.sleep(0.35)
        assert rogue.requests == []


def test_sas_ca_bundle_wins_over_requests_ca_bundle(
        monkeypatch: pytest.MonkeyPatch, agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    system_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(system_bundle if system_bundle.exists()
                                                  else Path(requests.certs.where())))
    appointment = agenda.book([agenda.doctor()], agenda.regulator())
    assert Worker(state_of(app)).run(once=True) == 1
    assert [r.method for r in sas.requests] == ["POST"], \
        outbox_rows(state_of(app).engine)[0]["last_error"]
    assert sas.matching(APPOINTMENT_SYSTEM, sas_id(appointment))
