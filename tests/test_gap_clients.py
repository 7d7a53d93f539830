"""GAP flows 3a/3b/3c (availability rules) and 6a/6b (appointment declarations, requests,
conditional update) driven by the two real FHIR client libraries against gunicorn, on
SQLite and PostgreSQL — flows 1, 2, 4 and 5 are in tests/test_gap_resources.py and
tests/test_gap_queries.py. The slots of the rules are derived by the worker's code, in
this process, on the same database.
"""

from __future__ import annotations

from typing import Any

from fhirclient.models.appointment import Appointment
from fhirclient.models.schedule import Schedule
from fhirclient.models.slot import Slot
from fhirclient.server import FHIRServer
from fhirpy.base.exceptions import OperationOutcome
from flask import Flask

from app.gap.derivation import derive_schedule
from app.state import state_of
from tests.test_gap_resources import (
    APPOINTMENT_IDS,
    fhirpy,
    issue_text,
    load,
    practitioner,
    run,
    schedule,
    smart,
)
from tests.test_gap_rules import MORNINGS, NOW, duration, period

Resource = dict[str, Any]
REQUEST_ID = "DEM-2030-0042"


def _derived_slots(server: FHIRServer, schedule_id: str) -> list[Slot]:
    found = Slot.where({"schedule": f"Schedule/{schedule_id}", "_count": "500",
                        "_sort": "start"}).perform_resources_iter(server)
    return [slot for slot in found if isinstance(slot, Slot)]


def test_flow_3_rules_with_fhirpy_then_slots_with_fhirclient(live_server: str,
                                                            app: Flask) -> None:
    load(live_server, practitioner(), schedule("agenda-dupont", "Practitioner/dupont"))

    async def flows() -> str:
        client = fhirpy(live_server)
        agenda = await client.resources("Schedule").search(_id="agenda-dupont").first()
        # 3a: the rules added by a PUT of the Schedule.
        agenda["extension"] = [duration(20), MORNINGS]
        await agenda.save()
        assert agenda["meta"]["versionId"] == "2"
        # 3b: a holiday added and the rule kept; 3c would remove one the same way.
        agenda["extension"] = [duration(20), MORNINGS,
                               period("ferie", "2030-04-01", "2030-04-02",
                                      kind="busy-unavailable")]
        await agenda.save()
        # A rule that cannot be expanded: 422, and the version stays.
        agenda["extension"] = [period("x", "2030-03-18T09:00:00+01:00",
                                      "2030-03-18T08:00:00+01:00")]
        try:
            await agenda.save()
        except OperationOutcome as refused:
            text = issue_text(refused.resource)
        else:
            raise AssertionError("an unusable rule was accepted")
        stored = await client.resources("Schedule").search(_id="agenda-dupont").first()
        assert stored["meta"]["versionId"] == "3" and len(stored["extension"]) == 3
        return text

    assert "Schedule.extension[0]: end must come after start" in run(flows())
    with state_of(app).writing("test") as repo:  # the worker's code, "now" in March 2030
        derive_schedule(repo, "agenda-dupont", NOW)
    server = smart(live_server)
    slots = _derived_slots(server, "agenda-dupont")
    starts = [slot.start.isostring for slot in slots]
    assert len(slots) == 8 * 2 * 9 - 9  # Mondays and Tuesdays, less the holiday Monday
    assert "2030-03-18T09:00:00+01:00" in starts and "2030-04-02T09:00:00+02:00" in starts
    assert not any(start.startswith("2030-04-01") for start in starts)
    assert Schedule.read("agenda-dupont", server).extension[0].url.endswith(
        "fr-core-service-type-duration")


def _appointment(status: str, participant_status: str, **extra: Any) -> Resource:
    return {"resourceType": "Appointment", "status": status,
            "identifier": [{"system": APPOINTMENT_IDS, "value": REQUEST_ID}],
            "start": "2030-03-19T09:00:00+01:00", "end": "2030-03-19T09:20:00+01:00",
            "participant": [{"actor": {"reference": "Practitioner/dupont"},
                             "status": participant_status}], **extra}


def test_flow_6_request_with_fhirclient_answered_with_fhirpy(live_server: str,
                                                             app: Flask) -> None:
    load(live_server, practitioner(), schedule("agenda-dupont", "Practitioner/dupont"))
    server = smart(live_server)
    # 6a, a request without consulting the agenda: participants and times only.
    request = Appointment(_appointment("proposed", "needs-action"))
    created = request.create(server)
    assert created["status"] == "proposed" and created["meta"]["versionId"] == "1"
    # 6a, a declaration over the requested time: the practitioner is taken.
    clash = Appointment(_appointment("booked", "accepted", identifier=[
        {"system": APPOINTMENT_IDS, "value": "RDV-2030-0043"}]))
    try:
        clash.create(server)
    except Exception as refused:  # fhirclient raises requests' HTTPError
        response = refused.response  # type: ignore[attr-defined]
        assert response.status_code == 409
        assert f"Appointment/{created['id']}" in issue_text(response.json())
    else:
        raise AssertionError("an overlapping appointment was accepted")

    async def answer() -> tuple[Any, bool]:
        # 6b: the agenda owner accepts by a conditional update on the business identifier.
        client = fhirpy(live_server)
        accepted = client.resource("Appointment", **_appointment("booked", "accepted"))
        return await client.resources("Appointment").search(
            identifier=f"{APPOINTMENT_IDS}|{REQUEST_ID}").update(accepted)

    updated, was_created = run(answer())
    assert not was_created and updated["id"] == created["id"]
    assert updated["meta"]["versionId"] == "2" and updated["status"] == "booked"
    final = Appointment.read(created["id"], server)
    assert final.participant[0].status == "accepted"
    found = Appointment.where({"identifier": f"{APPOINTMENT_IDS}|{REQUEST_ID}",
                               "status": "booked"}).perform_resources_iter(server)
    assert [a.id for a in found if isinstance(a, Appointment)] == [created["id"]]
