"""GAP flows 3a/3b/3c: availability rules on a Schedule (FR Core availabilityTime and
service-type duration) become slots, kept in line as rules, exceptions and appointments
change. Both databases.

The derivation is run at a chosen "now" (derive_schedule) for the calendar cases, and
through the worker's queue (derive_due) for the queueing ones.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, delete, select

from app.gap.availability import AVAILABILITY_URL, DURATION_URL
from app.gap.derivation import derive_due, derive_schedule
from app.gap.derive import DERIVED_CODE, DERIVED_SYSTEM
from app.state import state_of
from app.storage.schema import gap_derivation
from tests.factories import BASE_URL, assert_outcome, body, practitioner, put, read, search
from tests.support.sas_agenda import start_worker, stop_worker

TYPE = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-schedule-type"
RFC2445 = "https://www.ietf.org/rfc/rfc2445"
NOW = datetime(2030, 3, 18, 0, 0, tzinfo=UTC)  # a Monday; summer time starts on 2030-03-31


def period(identifier: str, start: str, end: str, *, kind: str = "free",
           rrule: dict[str, Any] | None = None) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "identifier", "valueIdentifier": {"value": identifier}},
        {"url": "type", "valueCoding": {"system": TYPE, "code": kind}},
        {"url": "start", "valueDateTime": start},
        {"url": "end", "valueDateTime": end}]
    if rrule is not None:
        rule: list[dict[str, Any]] = [
            {"url": "freq", "valueCoding": {"system": RFC2445, "code": rrule["freq"]}}]
        rule += [{"url": "byDay", "valueString": day} for day in rrule.get("byDay", [])]
        if "until" in rrule:
            rule.append({"url": "until", "valueDateTime": rrule["until"]})
        if "interval" in rrule:
            rule.append({"url": "interval", "valueInteger": rrule["interval"]})
        if "wkst" in rrule:  # FR Core binds it to DaysOfWeek: mon, tue…
            rule.append({"url": "wkst", "valueCode": rrule["wkst"]})
        parts.append({"url": "rrule", "extension": rule})
    return {"url": AVAILABILITY_URL, "extension": parts}


def duration(minutes: int) -> dict[str, Any]:
    return {"url": DURATION_URL, "extension": [
        {"url": "serviceType", "valueCodeableConcept": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "124",
             "display": "General Practice"}]}},
        {"url": "duration", "valueDuration": {"value": minutes, "unit": "min",
                                              "system": "http://unitsofmeasure.org",
                                              "code": "min"}}]}


MORNINGS = period("matins", "2030-03-18T09:00:00+01:00", "2030-03-18T12:00:00+01:00",
                  rrule={"freq": "WEEKLY", "byDay": ["MO", "TU"]})


def agenda(client: Any, *rules: dict[str, Any], minutes: int = 20) -> dict[str, Any]:
    put(client, practitioner("810000000111", resource_id="dr-regle"))
    return put(client, {"resourceType": "Schedule", "id": "sch-regle", "active": True,
                        "actor": [{"reference": "Practitioner/dr-regle"}],
                        "extension": [duration(minutes), *rules]})


def derive(app: Flask, now: datetime = NOW) -> Any:
    with state_of(app).writing("test") as repo:
        return derive_schedule(repo, "sch-regle", now)


def derived(client: Any) -> dict[str, dict[str, Any]]:
    found = search(client, "Slot", "schedule=Schedule/sch-regle&_count=1000&_sort=start"
                                   f"&_tag={DERIVED_SYSTEM}|{DERIVED_CODE}")
    return {e["resource"]["start"]: e["resource"] for e in found.get("entry", [])}


def test_a_weekly_rule_becomes_slots_at_local_time_across_daylight_saving(
        client: Any, app: Flask) -> None:
    agenda(client, MORNINGS)
    result = derive(app)
    slots = derived(client)
    # 8 weeks (56 days) × Monday and Tuesday × 9 slots of 20 minutes from 09:00 to 12:00.
    assert result.created == len(slots) == 8 * 2 * 9
    assert "2030-03-18T09:00:00+01:00" in slots and "2030-03-18T11:40:00+01:00" in slots
    assert "2030-03-18T12:00:00+01:00" not in slots
    # Summer time: still 09:00 local, i.e. one hour earlier in UTC.
    assert slots["2030-04-01T09:00:00+02:00"]["end"] == "2030-04-01T09:20:00+02:00"
    first = slots["2030-03-18T09:00:00+01:00"]
    assert first["status"] == "free"
    assert first["schedule"] == {"reference": "Schedule/sch-regle"}
    assert first["serviceType"][0]["coding"][0]["code"] == "124"
    assert not any(s.startswith("2030-03-20") for s in slots)  # a Wednesday


def test_derivation_is_stable_ids_and_versions_unchanged(client: Any, app: Flask) -> None:
    agenda(client, MORNINGS)
    derive(app)
    before = {start: (s["id"], s["meta"]["versionId"]) for start, s in derived(client).items()}
    again = derive(app)
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert {start: (s["id"], s["meta"]["versionId"])
            for start, s in derived(client).items()} == before


def test_a_holiday_exception_removes_that_days_slots_only(client: Any, app: Flask) -> None:
    agenda(client, MORNINGS)
    derive(app)
    before = derived(client)
    agenda(client, MORNINGS, period("ferie", "2030-04-01", "2030-04-02",
                                    kind="busy-unavailable"))
    result = derive(app)
    after = derived(client)
    assert result.deleted == 9 and result.created == 0
    assert not any(start.startswith("2030-04-01") for start in after)
    assert {k: v["id"] for k, v in after.items()} == {
        k: v["id"] for k, v in before.items() if not k.startswith("2030-04-01")}


def test_end_of_validity_of_a_rule(client: Any, app: Flask) -> None:
    limited = period("matins", "2030-03-18T09:00:00+01:00", "2030-03-18T12:00:00+01:00",
                     rrule={"freq": "WEEKLY", "byDay": ["MO"],
                            "until": "2030-04-01T23:59:59+02:00"})
    agenda(client, limited)
    derive(app)
    days = sorted({start[:10] for start in derived(client)})
    assert days == ["2030-03-18", "2030-03-25", "2030-04-01"]


def test_every_other_week_with_a_week_start(client: Any, app: Flask) -> None:
    fortnightly = period("quinzaine", "2030-03-18T09:00:00+01:00", "2030-03-18T10:00:00+01:00",
                         rrule={"freq": "WEEKLY", "byDay": ["MO"], "interval": 2,
                                "wkst": "mon"})
    agenda(client, fortnightly)
    derive(app)
    assert sorted({start[:10] for start in derived(client)}) == [
        "2030-03-18", "2030-04-01", "2030-04-15", "2030-04-29"]


def book(client: Any, slot: dict[str, Any], status: str = "booked") -> dict[str, Any]:
    return put(client, {"resourceType": "Appointment", "id": f"rdv-{slot['id']}"[:64],
                        "status": status, "start": slot["start"], "end": slot["end"],
                        "slot": [{"reference": f"Slot/{slot['id']}"}],
                        "participant": [{"actor": {"reference": "Practitioner/dr-regle"},
                                         "status": "accepted"}]})


def test_a_booked_slot_survives_an_exception_and_a_rule_edit(client: Any, app: Flask) -> None:
    agenda(client, MORNINGS)
    derive(app)
    slot = derived(client)["2030-04-01T09:00:00+02:00"]
    appointment = book(client, slot)
    assert read(client, "Slot", slot["id"]).get_json()["status"] == "busy"
    # Afternoons instead of mornings, and a holiday over the booked slot.
    afternoons = period("apres-midi", "2030-03-18T14:00:00+01:00",
                        "2030-03-18T17:00:00+01:00", rrule={"freq": "WEEKLY", "byDay": ["MO"]})
    agenda(client, afternoons, period("ferie", "2030-04-01", "2030-04-02",
                                      kind="busy-unavailable"))
    derive(app)
    slots = derived(client)
    assert slots["2030-04-01T09:00:00+02:00"]["status"] == "busy"  # kept for its appointment
    assert "2030-04-02T09:00:00+02:00" not in slots  # free morning slots went away
    assert "2030-04-08T14:00:00+02:00" in slots
    assert not any(s.startswith("2030-04-01T1") for s in slots)  # the holiday afternoon
    # Cancelled: the slot is free again (booking rule), then the rules no longer give it.
    put(client, {**appointment, "status": "cancelled"})
    assert read(client, "Slot", slot["id"]).get_json()["status"] == "free"
    assert derive(app).deleted == 1
    assert read(client, "Slot", slot["id"]).status_code == 410


def test_an_appointment_declared_without_slot_takes_the_rules_time(
        client: Any, app: Flask, engine: Engine) -> None:
    agenda(client, MORNINGS)
    derive(app)
    before = derived(client)
    with engine.begin() as conn:
        conn.execute(delete(gap_derivation))
    declared = put(client, {
        "resourceType": "Appointment", "id": "rdv-declare", "status": "booked",
        "start": "2030-03-19T09:10:00+01:00", "end": "2030-03-19T10:00:00+01:00",
        "participant": [{"actor": {"reference": "Practitioner/dr-regle"},
                         "status": "accepted"}]})
    with engine.connect() as conn:  # the agenda of its practitioner is queued
        assert conn.execute(select(gap_derivation.c.schedule_id)).scalars().all() == [
            "sch-regle"]
    assert derive(app).deleted == 3  # 09:00, 09:20 and 09:40 overlap 09:10–10:00
    after = derived(client)
    assert sorted(set(before) - set(after)) == [
        "2030-03-19T09:00:00+01:00", "2030-03-19T09:20:00+01:00", "2030-03-19T09:40:00+01:00"]
    put(client, {**declared, "status": "cancelled"})
    assert derive(app).created == 3
    assert {k: v["id"] for k, v in derived(client).items()} == {
        k: v["id"] for k, v in before.items()}


def test_a_rule_that_cannot_be_expanded_is_refused_and_nothing_written(client: Any) -> None:
    put(client, practitioner("810000000111", resource_id="dr-regle"))
    broken = period("x", "2030-03-18T09:00:00+01:00", "2030-03-18T08:00:00+01:00")
    weird = period("y", "2030-03-18T09:00:00+01:00", "2030-03-18T10:00:00+01:00",
                   rrule={"freq": "SOMETIMES"})
    response = client.put("/fhir/Schedule/sch-regle", json={
        "resourceType": "Schedule", "id": "sch-regle", "active": True,
        "actor": [{"reference": "Practitioner/dr-regle"}], "extension": [broken, weird]},
        headers={"Content-Type": "application/fhir+json"})
    outcome = assert_outcome(response, 422)
    text = " ".join(i["diagnostics"] for i in outcome["issue"])
    assert "Schedule.extension[0]: end must come after start" in text
    assert "Schedule.extension[1]" in text and "SOMETIMES" in text
    assert read(client, "Schedule", "sch-regle").status_code == 404


def test_the_worker_queue_derives_and_rolls_the_horizon(client: Any, app: Flask,
                                                        engine: Engine) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    daily = period("tous-les-jours", f"{tomorrow}T10:00:00+01:00", f"{tomorrow}T11:00:00+01:00",
                   rrule={"freq": "DAILY"})
    agenda(client, daily, minutes=30)
    with engine.connect() as conn:
        assert conn.execute(select(gap_derivation.c.schedule_id)).scalars().all() == [
            "sch-regle"]
    assert derive_due(state_of(app), budget_seconds=60) == 1
    assert len(derived(client)) >= 2 * (app.extensions["agenda"].settings.gap_horizon_days - 2)
    with engine.connect() as conn:
        due = conn.execute(select(gap_derivation.c.due_at)).scalar_one()
    assert due > datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=23)
    assert derive_due(state_of(app), budget_seconds=60) == 0  # nothing due until tomorrow
    # The Schedule deleted: its free derived slots go, the queue forgets it.
    assert client.delete("/fhir/Schedule/sch-regle").status_code == 200
    assert derive_due(state_of(app), budget_seconds=60) == 1
    assert derived(client) == {}
    with engine.connect() as conn:
        assert conn.execute(select(gap_derivation)).all() == []


def test_rules_in_a_transaction_bundle_are_queued_once(client: Any, engine: Engine) -> None:
    put(client, practitioner("810000000111", resource_id="dr-regle"))
    schedule = {"resourceType": "Schedule", "id": "sch-regle", "active": True,
                "actor": [{"reference": "Practitioner/dr-regle"}],
                "extension": [duration(15), MORNINGS]}
    response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                          "entry": [{"resource": schedule, "request": {
                                              "method": "PUT", "url": "Schedule/sch-regle"}}]},
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, body(response)
    with engine.connect() as conn:
        assert len(conn.execute(select(gap_derivation)).all()) == 1


def test_the_worker_process_derives_a_rule_written_through_the_api(
        client: Any, database_url: str, tmp_path: Path) -> None:
    """`fhir-agenda worker` (as `make run` starts it) shows a new rule's slots within
    seconds."""
    env = {**os.environ, "DATABASE_URL": database_url, "FHIR_BASE_URL": BASE_URL,
           "SECRET_KEY": "tests", "SECURITY_PROFILE": "development",
           "GAP_POLL_SECONDS": "0.2", "WORKER_POLL_SECONDS": "0.05"}
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        monday = datetime.now(UTC).date() + timedelta(days=7 - datetime.now(UTC).weekday())
        agenda(client, period("lundis", f"{monday}T09:00:00+01:00", f"{monday}T10:00:00+01:00",
                              rrule={"freq": "WEEKLY", "byDay": ["MO"]}), minutes=30)
        deadline = time.monotonic() + 20
        while not derived(client) and time.monotonic() < deadline:
            time.sleep(0.2)
        slots = derived(client)
        assert len(slots) >= 2 * 7 and all(s["status"] == "free" for s in slots.values())
        assert min(slots)[:10] == str(monday)
    finally:
        assert stop_worker(worker) == 0, (tmp_path / "worker.log").read_text()
