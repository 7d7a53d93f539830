"""INT_R03 for the SOS Médecins offer: an appointment a regulator books at a fixed
consultation place reaches a real HTTPS receiver standing in for SAS (mutual TLS, outbox,
worker) as a valid sas-sos-appointment: pending appointments are told, effectors accepted or
awaiting confirmation (needs-action), the place itself the participant until a doctor is
named. Appointments elsewhere stay FrAppointmentSAS."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from app.validation.profiles import default_profiles
from tests.sas_offers import IG, sos
from tests.support.pki import Pki
from tests.support.receiver import SasReceiver
from tests.support.sas_agenda import (
    DOCTOR_RPPS,
    IDNPS,
    OPERATOR,
    SAS_PROFILE,
    TYPES,
    Agenda,
    at,
    drain,
    prefixed,
    sas_app,
)
from tests.support.sas_fixtures import pki_fixture, sas_ca_bundle_only, sas_fixture  # noqa: F401

Resource = dict[str, Any]
SOS_PROFILE = IG + "sas-sos-appointment"


@pytest.fixture
def app(engine: Engine, database_url: str, sas: SasReceiver, pki: Pki) -> Flask:
    return sas_app(engine, database_url, sas, pki)


@pytest.fixture
def agenda(app: Flask) -> Agenda:
    agenda = Agenda(app)
    places = [r for r in sos() if r["resourceType"] != "Slot" and r["id"] in {
        "sos-rennes", "pfg-nord", "sch-nord"}]
    for resource in places:
        agenda.write("PUT", f"{resource['resourceType']}/{resource['id']}", resource)
    agenda.write("PUT", "Slot/n-1", {
        "resourceType": "Slot", "id": "n-1", "status": "busy",
        "schedule": {"reference": "Schedule/sch-nord"}, "start": at(0), "end": at(20)})
    return agenda


def _book(agenda: Agenda, operator: str, **fields: Any) -> Resource:
    appointment: Resource = {
        "resourceType": "Appointment", "status": "booked", "start": at(0), "end": at(20),
        "slot": [{"reference": "Slot/n-1"}],
        "participant": [{"actor": {"reference": "Location/pfg-nord"}, "status": "accepted"}],
        "extension": [{"url": OPERATOR,
                       "valueReference": {"reference": f"Practitioner/{operator}"}}],
        **fields}
    return agenda.write("POST", "Appointment", appointment)


def _valid(body: Resource, profile: str = SOS_PROFILE) -> Resource:
    assert default_profiles().errors(body) == [], default_profiles().errors(body)
    assert body["meta"]["profile"] == [profile]
    return body


def _doctor(rpps: str, status: str) -> Resource:
    return {"actor": {"identifier": {"type": {"coding": [{"system": TYPES, "code": "IDNPS"}]},
                                     "system": IDNPS, "value": prefixed(rpps)}},
            "status": status}


def test_an_appointment_at_a_place_is_told_as_an_sos_appointment(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    operator = agenda.regulator()
    appointment = _book(agenda, operator)
    drain(app)
    first = _valid(sas.requests[0].body)
    assert sas.requests[0].method == "POST"
    (place,) = first["participant"]
    assert place["status"] == "accepted"
    assert place["actor"]["display"] == "Centre de consultation Rennes Nord"
    assert place["actor"]["identifier"]["value"] == "1111111111"
    # A doctor is proposed, awaiting his confirmation: the appointment is pending.
    doctor = agenda.doctor()
    appointment = agenda.change(appointment, status="pending", participant=[
        {"actor": {"reference": "Location/pfg-nord"}, "status": "accepted"},
        {"actor": {"reference": f"Practitioner/{doctor}"}, "status": "needs-action"}])
    drain(app)
    pending = _valid(sas.requests[1].body)
    assert pending["status"] == "pending"
    assert pending["participant"] == [_doctor(DOCTOR_RPPS, "needs-action")]
    # He accepts: booked, accepted.
    appointment = agenda.change(appointment, status="booked", participant=[
        {"actor": {"reference": f"Practitioner/{doctor}"}, "status": "accepted"}])
    drain(app)
    booked = _valid(sas.requests[2].body)
    assert (booked["status"], booked["participant"]) == (
        "booked", [_doctor(DOCTOR_RPPS, "accepted")])
    assert [r.method for r in sas.requests] == ["POST", "PUT", "PUT"]
    assert {r.body["identifier"][0]["value"] for r in sas.requests} == {
        first["identifier"][0]["value"]}


def test_an_appointment_elsewhere_stays_frappointmentsas(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    doctor, operator = agenda.doctor(), agenda.regulator()
    agenda.book([doctor], operator)
    # Pending is not told outside the SOS offer.
    agenda.book([doctor], operator, minutes=30, status="pending")
    drain(app)
    (request,) = sas.requests
    _valid(request.body, SAS_PROFILE)
    assert request.body["participant"] == [_doctor(DOCTOR_RPPS, "accepted")]


def test_the_place_is_known_by_its_location_participant_too(
        agenda: Agenda, app: Flask, sas: SasReceiver) -> None:
    operator = agenda.regulator()
    _book(agenda, operator, slot=[])
    drain(app)
    assert _valid(sas.requests[0].body)["participant"][0]["actor"]["display"].startswith(
        "Centre de consultation")
