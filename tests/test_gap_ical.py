"""iCalendar (app/gap/ical.py, feeds.py, ical_import.py): availability rules ↔ VAVAILABILITY
both ways, the token-protected feeds of an agenda and of a regulator's bookings read back
with `icalendar`, a daylight-saving week, the `import-ics` and `ical-url` commands."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar, Component
from sqlalchemy import update

from app.cli import main as cli
from app.gap import ical, ical_calendar
from app.gap.feeds import feed_token, regulator_path, schedule_path
from app.storage.schema import user_accounts
from tests.factories import body, put, send
from tests.support.accounts import account_row
from tests.support.booking_pages import (
    SCHEDULE,
    booking_link,
    load_agenda,
    paris,
    signed_up_regulator,
    text,
)
from tests.test_web_booking import book, sign_in

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy import Engine

PARIS = ZoneInfo("Europe/Paris")
URL = ical.AVAILABILITY_URL
CODE = ical.SCHEDULE_TYPE_SYSTEM
Resource = dict[str, Any]


# -- test data -------------------------------------------------------------------------------

def rule(uid: str, kind: str, start: str, end: str, *rrule: Resource,
         **more: Resource) -> Resource:
    parts: list[Resource] = [
        {"url": "identifier", "valueIdentifier": {"system": "urn:example:regles", "value": uid}},
        {"url": "type", "valueCoding": {"system": CODE, "code": kind,
                                        "display": ical.TYPE_DISPLAY[kind]}},
        {"url": "start", "valueDateTime": start}, {"url": "end", "valueDateTime": end}]
    if rrule:
        parts.append({"url": "rrule", "extension": list(rrule)})
    parts += [{"url": name, **value} for name, value in more.items()]
    return {"url": URL, "extension": parts}


def freq(code: str) -> Resource:
    return {"url": "freq", "valueCoding": {"system": ical.FREQ_SYSTEM, "code": code}}


def part(name: str, **value: Any) -> Resource:
    return {"url": name, **value}


def weekly_rules(*, wkst: bool = True) -> list[Resource]:
    """Mornings on Mondays and Thursdays, a Saturday of priority 2, Easter Monday off, and
    Wednesday afternoons off ten times (a coded reason)."""
    weekly = [freq("WEEKLY"), part("byDay", valueString="MO"), part("byDay", valueString="TH"),
              part("until", valueDateTime="2027-06-30T23:59:59+02:00")]
    return [
        rule("matins", "free", "2027-03-01T09:00:00+01:00", "2027-03-01T12:00:00+01:00",
             *weekly, *([part("wkst", valueCode="mon")] if wkst else []),
             created={"valueDateTime": "2027-01-15T10:00:00+01:00"}),
        rule("samedi", "free", "2027-03-06T09:00:00+01:00", "2027-03-06T12:00:00+01:00",
             priority={"valueInteger": 2}),
        rule("paques", "busy-unavailable", "2027-03-29", "2027-03-30",
             unavailabilityReason={"valueCodeableConcept": {"text": "Lundi de Pâques"}}),
        rule("mercredis", "busy-unavailable", "2027-03-03T14:00:00+01:00",
             "2027-03-03T18:00:00+01:00", freq("WEEKLY"), part("count", valueInteger=10),
             part("interval", valueInteger=1),
             unavailabilityReason={"valueCodeableConcept": {"coding": [
                 {"system": "urn:example:motifs", "code": "FORM", "display": "Formation"}]}}),
    ]


def canonical(extensions: list[Resource]) -> list[str]:
    """Rules compared whatever the order of their parts (iCalendar orders RRULE parts)."""
    def sort(item: Resource) -> Resource:
        if "extension" in item:
            item = {**item, "extension": sorted((sort(i) for i in item["extension"]),
                                                key=lambda i: json.dumps(i, sort_keys=True))}
        return item
    return sorted(json.dumps(sort(e), sort_keys=True) for e in extensions)


def calendar_of(rules: list[Resource]) -> Calendar:
    schedule = {"resourceType": "Schedule", "id": "s1", "extension": rules}
    found, problems = ical.rules_of(schedule, PARIS)
    assert problems == []
    components = ical.availability_components(found, PARIS, uid="urn:test:s1",
                                              stamp=datetime(2027, 1, 1, tzinfo=UTC))
    text_ = ical_calendar.new_calendar("Test", "Europe/Paris", components).to_ical()
    return Calendar.from_ical(text_)


def back_to_fhir(calendar: Calendar) -> list[Resource]:
    return [ical.extension_from_rule(r, PARIS) for r in ical.rules_from_calendar(calendar, PARIS)]


def ics(*components: str) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//FR", *components,
             "END:VCALENDAR", ""]
    return "\r\n".join(lines).encode()


def available(uid: str, start: str, end: str, rrule: str | None = None, *extra: str) -> str:
    lines = ["BEGIN:AVAILABLE", f"UID:{uid}", "DTSTAMP:20270101T000000Z",
             f"DTSTART;TZID=Europe/Paris:{start}", f"DTEND;TZID=Europe/Paris:{end}",
             *([f"RRULE:{rrule}"] if rrule else []), *extra, "END:AVAILABLE"]
    return "\r\n".join(lines)


def vavailability(*children: str, extra: tuple[str, ...] = ()) -> str:
    return "\r\n".join(["BEGIN:VAVAILABILITY", "UID:dispos@test", "DTSTAMP:20270101T000000Z",
                        *extra, *children, "END:VAVAILABILITY"])


# -- rules ↔ VAVAILABILITY, no database -----------------------------------------------------

def test_rules_become_available_components_in_paris_time_and_come_back_the_same() -> None:
    rules = weekly_rules()
    calendar = calendar_of(rules)
    containers = calendar.walk("VAVAILABILITY")
    free = [c for c in containers if any(s.name == "AVAILABLE" for s in c.subcomponents)]
    assert [str(c.get("priority", "-")) for c in free] == ["-", "2"]
    assert all(str(c["busytype"]) == "BUSY-UNAVAILABLE" for c in containers)
    matins = next(c for c in calendar.walk("AVAILABLE") if str(c["uid"]) == "matins")
    start = matins.decoded("dtstart")
    assert start == datetime(2027, 3, 1, 9, tzinfo=PARIS) and start.tzinfo.key == "Europe/Paris"
    assert matins.decoded("dtend") == datetime(2027, 3, 1, 12, tzinfo=PARIS)
    assert matins["rrule"].to_ical() == (b"FREQ=WEEKLY;UNTIL=20270630T215959Z;BYDAY=MO,TH;"
                                         b"WKST=MO")
    assert matins["uid"].params[ical.SYSTEM_PARAM] == "urn:example:regles"
    assert matins.decoded("created") == datetime(2027, 1, 15, 9, tzinfo=UTC)
    # Unavailabilities: a VAVAILABILITY of their own, no AVAILABLE, the reason said.
    paques = next(c for c in containers if str(c["uid"]) == "paques")
    assert paques.subcomponents == [] and paques.decoded("dtstart") == date(2027, 3, 29)
    assert str(paques["description"]) == "Lundi de Pâques"
    mercredis = next(c for c in containers if str(c["uid"]) == "mercredis")
    assert mercredis["rrule"].to_ical() == b"FREQ=WEEKLY;COUNT=10;INTERVAL=1"
    assert str(mercredis["description"]) == "Formation"
    # Europe/Paris is declared, once.
    assert [str(t["tzid"]) for t in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]
    # And back: the same rules.
    assert canonical(back_to_fhir(calendar)) == canonical(rules)


def test_the_vtimezone_written_is_right_on_both_sides_of_the_change() -> None:
    zone = ical_calendar.vtimezone("Europe/Paris").to_tz()
    assert datetime(2027, 3, 27, 9, tzinfo=zone).utcoffset() == timedelta(hours=1)
    assert datetime(2027, 3, 29, 9, tzinfo=zone).utcoffset() == timedelta(hours=2)
    assert datetime(2027, 11, 1, 9, tzinfo=zone).utcoffset() == timedelta(hours=1)


def test_a_weekly_0900_rule_stays_0900_local_across_the_last_sunday_of_march() -> None:
    # 2027: summer time starts on Sunday 28 March.
    calendar = calendar_of([rule("lundis", "free", "2027-03-15T09:00:00+01:00",
                                 "2027-03-15T12:00:00+01:00", freq("WEEKLY"),
                                 part("byDay", valueString="MO"))])
    component = calendar.walk("AVAILABLE")[0]
    start = component.decoded("dtstart")
    occurrences = list(rrulestr(component["rrule"].to_ical().decode(), dtstart=start)[:3])
    assert [o.strftime("%d %H:%M") for o in occurrences] == ["15 09:00", "22 09:00",
                                                             "29 09:00"]
    assert [o.astimezone(UTC).hour for o in occurrences] == [8, 8, 7]
    # The other way: a 09:00 rule written in the summer comes back at 09:00 +02:00.
    summer = ics(vavailability(available("ete", "20270405T090000", "20270405T100000",
                                         "FREQ=WEEKLY")))
    [back] = back_to_fhir(Calendar.from_ical(summer))
    start_part = next(p for p in back["extension"] if p["url"] == "start")
    assert start_part["valueDateTime"] == "2027-04-05T09:00:00+02:00"


def test_a_vavailability_end_bounds_its_recurring_available() -> None:
    data = ics(vavailability(
        available("lundis", "20270301T090000", "20270301T120000", "FREQ=WEEKLY;BYDAY=MO"),
        available("avant", "20270101T090000", "20270101T100000"),
        extra=("DTSTART;TZID=Europe/Paris:20270201T000000",
               "DTEND;TZID=Europe/Paris:20270701T000000")))
    rules = ical.rules_from_calendar(Calendar.from_ical(data), PARIS)
    assert [r.uid for r in rules] == ["lundis"]  # the January one is outside the bounds
    assert rules[0].rrule is not None
    assert rules[0].rrule["UNTIL"] == [datetime(2027, 6, 30, 21, 59, 59, tzinfo=UTC)]


@pytest.mark.parametrize(("component", "message"), [
    (available("a", "20270301T090000", "20270301T120000", "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1"),
     "RRULE part BYSETPOS is not supported"),
    (available("a", "20270301T090000", "20270301T120000", "FREQ=WEEKLY",
               "EXDATE;TZID=Europe/Paris:20270308T090000"), "EXDATE is not supported"),
    (available("a", "20270301T090000", "20270301T120000", "FREQ=DAILY;BYMINUTE=0"),
     "BYMINUTE=0 is not supported"),
    (available("a", "20270301T090000", "20270301T120000",
               "FREQ=DAILY;COUNT=3;UNTIL=20270401T000000Z"), "both COUNT and UNTIL"),
    (available("a", "20270301T090000", "20270301T080000"), "ends before it starts"),
    ("\r\n".join(["BEGIN:AVAILABLE", "UID:a", "DTSTAMP:20270101T000000Z",
                  "DTSTART;TZID=Europe/Paris:20270301T090000", "END:AVAILABLE"]),
     "needs DTEND or DURATION"),
])
def test_what_fr_core_cannot_hold_is_refused_with_a_reason(component: str,
                                                           message: str) -> None:
    with pytest.raises(ical.IcsError) as refused:
        ical.rules_from_calendar(Calendar.from_ical(ics(vavailability(component))), PARIS)
    assert message in str(refused.value)


def test_a_file_without_vavailability_is_refused() -> None:
    event = "\r\n".join(["BEGIN:VEVENT", "UID:e", "DTSTAMP:20270101T000000Z",
                         "DTSTART:20270301T090000Z", "END:VEVENT"])
    with pytest.raises(ical.IcsError, match="no VAVAILABILITY"):
        ical.rules_from_calendar(Calendar.from_ical(ics(event)), PARIS)


# -- the agenda's feed -----------------------------------------------------------------------

def feed(client: FlaskClient, path: str, token: str | None = "valid") -> Any:
    if token == "valid":
        token = feed_token(client.application.secret_key, path)
    return client.get(path + (f"?token={token}" if token is not None else ""))


def parsed(response: Any) -> Calendar:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "private, max-age=300"
    return Calendar.from_ical(response.data)


def by_uid(calendar: Calendar, name: str) -> dict[str, Component]:
    return {str(c["uid"]): c for c in calendar.walk(name)}


def appointment(slot_id: str, start: str, end: str, status: str, **extra: Any) -> Resource:
    return {"resourceType": "Appointment", "status": status, "start": start, "end": end,
            "slot": [{"reference": f"Slot/{slot_id}"}],
            "participant": [
                {"actor": {"reference": "Practitioner/dupont"}, "required": "required",
                 "status": "accepted"},
                {"actor": {"reference": "Patient/durand"}, "status": "accepted"}], **extra}


@pytest.fixture
def agenda(client: FlaskClient) -> FlaskClient:
    """Dr Dupont's agenda (the booking pages' world) with rules and a few appointments."""
    load_agenda(client)
    schedule = body(client.get(f"/fhir/Schedule/{SCHEDULE}"))
    put(client, {**schedule, "extension": weekly_rules(wkst=False)})
    put(client, {"resourceType": "Patient", "id": "durand",
                 "name": [{"family": "Durand", "given": ["Léa"]}]})
    put(client, {"resourceType": "Slot", "id": "ferme-1", "schedule": {
        "reference": f"Schedule/{SCHEDULE}"}, "status": "busy-unavailable",
        "start": paris(1, 13), "end": paris(1, 13, 20)})
    created = [
        send(client, "POST", "Appointment", appointment(
            "cabinet-1", paris(1, 9), paris(1, 9, 20), "booked",
            identifier=[{"system": "urn:example:rdv", "value": "rdv-42"}],
            description="Renouvellement d'ordonnance")),
        send(client, "POST", "Appointment", appointment(
            "video-1", paris(1, 10), paris(1, 10, 20), "proposed")),
        send(client, "POST", "Appointment", appointment(
            "domicile-2", paris(2, 14), paris(2, 14, 30), "booked")),
    ]
    assert [r.status_code for r in created] == [201, 201, 201], [body(r) for r in created]
    cancelled = body(created[2])
    assert send(client, "PUT", f"Appointment/{cancelled['id']}",
                {**cancelled, "status": "cancelled"}).status_code == 200
    return client


def test_the_agenda_feed_has_its_rules_slots_and_appointments(agenda: FlaskClient) -> None:
    response = feed(agenda, schedule_path(SCHEDULE))
    calendar = parsed(response)
    assert str(calendar["method"]) == "PUBLISH"
    assert "Dr Hélène Dupont" in str(calendar["x-wr-calname"])
    # The rules, as stored.
    assert canonical(back_to_fhir(calendar)) == canonical(weekly_rules(wkst=False))
    # One VFREEBUSY per slot of the window, the FBTYPE of its status (UTC periods).
    slots = by_uid(calendar, "VFREEBUSY")
    base = "http://localhost/fhir/Slot/"
    fbtypes = {uid.removeprefix(base): str(c["freebusy"].params["FBTYPE"])
               for uid, c in slots.items()}
    assert fbtypes == {"cabinet-1": "BUSY", "video-1": "BUSY-TENTATIVE", "domicile-2": "FREE",
                       "patients-1": "FREE", "occupe-1": "BUSY", "hier": "FREE",
                       "plus-tard": "FREE", "ferme-1": "BUSY-UNAVAILABLE"}
    cabinet = slots[base + "cabinet-1"]
    period = cabinet["freebusy"].dt
    assert period[0] == datetime.fromisoformat(paris(1, 9))
    assert period[0].utcoffset() == timedelta(0)
    assert "TZID" not in cabinet["freebusy"].params
    assert any("Hélène Dupont" in str(a.params.get("CN")) for a in cabinet["attendee"])
    # The appointments: status, UID (identifier, else the URL), local times.
    events = by_uid(calendar, "VEVENT")
    booked = events["rdv-42"]
    assert str(booked["status"]) == "CONFIRMED"
    assert booked.decoded("dtstart") == datetime.fromisoformat(paris(1, 9))
    assert booked.decoded("dtstart").tzinfo.key == "Europe/Paris"
    assert booked.decoded("dtend") == datetime.fromisoformat(paris(1, 9, 20))
    assert str(booked["description"]) == "Renouvellement d'ordonnance"
    assert str(booked["location"]).startswith("Cabinet des Terreaux, 4 place des Terreaux")
    attendee = booked["attendee"]
    assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    statuses = sorted(str(e["status"]) for e in events.values())
    assert statuses == ["CANCELLED", "CONFIRMED", "TENTATIVE"]
    cancelled = next(e for e in events.values() if str(e["status"]) == "CANCELLED")
    assert str(cancelled["summary"]).startswith("Annulé : ")
    # Patients are never named in a feed.
    assert b"Durand" not in response.data and b"Patient/" not in response.data


def test_reading_the_agenda_feed_is_audited(agenda: FlaskClient) -> None:
    parsed(feed(agenda, schedule_path(SCHEDULE)))
    events = body(agenda.get("/fhir/AuditEvent?agent-name:contains=iCalendar"))
    entities = [e["what"]["reference"] for entry in events.get("entry", [])
                for e in entry["resource"].get("entity", [])]
    assert len(entities) == 3 and all(e.startswith("Appointment/") for e in entities)


def test_a_feed_url_without_its_own_token_is_not_found(agenda: FlaskClient) -> None:
    path = schedule_path(SCHEDULE)
    other = schedule_path("autre-agenda")
    answers = [feed(agenda, path, token=None), feed(agenda, path, token="nope"),
               feed(agenda, path, token=feed_token(agenda.application.secret_key, other)),
               feed(agenda, path, token=feed_token(agenda.application.secret_key,
                                                   regulator_path(1))),
               feed(agenda, path, token=feed_token("another key", path)),
               feed(agenda, other),  # a valid token, for an agenda that does not exist
               feed(agenda, regulator_path(999))]
    assert [a.status_code for a in answers] == [404] * 7
    assert len({a.data for a in answers}) == 1  # nothing tells them apart
    assert feed(agenda, path).status_code == 200


# -- the regulator's feed --------------------------------------------------------------------

@pytest.fixture
def regulator(client: FlaskClient, engine: Engine) -> str:
    return signed_up_regulator(client, engine)


def test_the_regulator_subscribes_to_his_bookings_from_his_page(
        app: Flask, client: FlaskClient, engine: Engine, regulator: str) -> None:
    sign_in(client, engine, regulator, booking_link("video-1"))
    booked = book(client, "video-1")
    assert booked.status_code in (302, 303), booked.get_data(as_text=True)
    appointment_id = booked.location.rstrip("/").rsplit("/", 1)[-1]
    page = client.get("/rendez-vous")
    shown = text(page.get_data(as_text=True))
    assert "Abonner mon agenda (iCalendar)" in shown
    account = account_row(engine, regulator).pk
    url = next(u for u in _links(page.get_data(as_text=True)) if "/ical/" in u)
    assert urlsplit(url).path == regulator_path(account)
    printed = app.test_cli_runner().invoke(cli, ["ical-url", "regulator", str(account)])
    assert printed.exit_code == 0 and printed.output.strip() == url
    calendar = parsed(client.get(_path(url)))
    [event] = calendar.walk("VEVENT")
    stored = body(client.get(f"/fhir/Appointment/{appointment_id}"))
    assert str(event["uid"]) == ical_calendar.resource_uid(stored, "http://localhost/fhir")
    assert str(event["status"]) == "CONFIRMED"
    assert str(event["summary"]).startswith("Rendez-vous avec Dr Hélène Dupont")
    assert str(event["url"]).endswith(f"/rendez-vous/{appointment_id}")
    assert event.decoded("dtstart") == datetime.fromisoformat(paris(1, 10))
    assert "Sébastien" in str(event["organizer"].params.get("CN"))
    assert b"Durand" not in client.get(_path(url)).data  # the patient is not named
    # A deactivated account's feed is gone.
    with engine.begin() as conn:
        conn.execute(update(user_accounts).where(user_accounts.c.pk == account)
                     .values(active=False))
    assert client.get(_path(url)).status_code == 404


def _links(page: str) -> list[str]:
    return [m.replace("&amp;", "&") for m in re.findall(r'href="([^"]+)"', page)]


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# -- the commands ----------------------------------------------------------------------------

def test_ical_url_prints_a_working_feed_url(app: Flask, agenda: FlaskClient,
                                            engine: Engine) -> None:
    runner = app.test_cli_runner()
    printed = runner.invoke(cli, ["ical-url", f"Schedule/{SCHEDULE}"])
    assert printed.exit_code == 0, printed.output
    url = printed.output.strip()
    base = app.extensions["agenda"].settings.public_web_url
    assert url.startswith(f"{base}{schedule_path(SCHEDULE)}?token=")
    assert agenda.get(_path(url)).status_code == 200
    unknown = runner.invoke(cli, ["ical-url", "Schedule/inconnu"])
    assert unknown.exit_code != 0 and "Schedule/inconnu is not known" in unknown.output
    assert runner.invoke(cli, ["ical-url", "regulator", "12345"]).exit_code != 0


def test_import_ics_replaces_the_rules_and_the_feed_gives_them_back(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    load_agenda(client)
    duration = {"url": "https://hl7.fr/ig/fhir/core/StructureDefinition/"
                       "fr-core-service-type-duration",
                "extension": [{"url": "duration", "valueDuration": {
                    "value": 20, "unit": "min", "system": "http://unitsofmeasure.org",
                    "code": "min"}}]}
    schedule = body(client.get(f"/fhir/Schedule/{SCHEDULE}"))
    put(client, {**schedule, "extension": [duration, rule(
        "ancienne", "free", "2027-01-04T08:00:00+01:00", "2027-01-04T10:00:00+01:00")]})
    data = ics(
        vavailability(available("matins", "20270301T090000", "20270301T120000",
                                "FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20270630T215959Z"),
                      available("apres-midi", "20270302T140000", "20270302T180000",
                                "FREQ=WEEKLY;INTERVAL=2;COUNT=8")),
        "\r\n".join(["BEGIN:VAVAILABILITY", "UID:conges", "DTSTAMP:20270101T000000Z",
                     "BUSYTYPE:BUSY-UNAVAILABLE", "PRIORITY:1",
                     "DTSTART;VALUE=DATE:20270412", "DTEND;VALUE=DATE:20270419",
                     "SUMMARY:Congés de printemps", "END:VAVAILABILITY"]))
    file = tmp_path / "dispos.ics"
    file.write_bytes(data)
    runner = app.test_cli_runner()
    done = runner.invoke(cli, ["import-ics", f"Schedule/{SCHEDULE}", str(file)])
    assert done.exit_code == 0, done.output
    assert "version 3, 2 availability and 1 unavailability rules" in done.output
    stored = body(client.get(f"/fhir/Schedule/{SCHEDULE}"))
    assert stored["meta"]["versionId"] == "3"
    rules = [e for e in stored["extension"] if e["url"] == URL]
    assert duration in stored["extension"] and len(rules) == 3  # the old rule replaced
    conges = next(r for r in rules if {"url": "identifier", "valueIdentifier": {
        "value": "conges"}} in r["extension"])
    assert {"url": "unavailabilityReason", "valueCodeableConcept": {
        "text": "Congés de printemps"}} in conges["extension"]
    assert {"url": "priority", "valueInteger": 1} in conges["extension"]
    # The write is audited like any other.
    audit = body(client.get("/fhir/AuditEvent?agent-name:contains=import-ics"))
    assert audit["total"] == 1
    # ics → Schedule → feed → the same rules.
    from_file = back_to_fhir(Calendar.from_ical(data))
    from_feed = back_to_fhir(parsed(feed(client, schedule_path(SCHEDULE))))
    assert canonical(from_feed) == canonical(from_file) == canonical(rules)


def test_import_ics_refuses_what_it_cannot_hold_and_writes_nothing(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    load_agenda(client)
    runner = app.test_cli_runner()
    empty = tmp_path / "evenements.ics"
    empty.write_bytes(ics("\r\n".join(["BEGIN:VEVENT", "UID:e", "DTSTAMP:20270101T000000Z",
                                       "DTSTART:20270301T090000Z", "END:VEVENT"])))
    refused = runner.invoke(cli, ["import-ics", f"Schedule/{SCHEDULE}", str(empty)])
    assert refused.exit_code != 0 and "no VAVAILABILITY component" in refused.output
    setpos = tmp_path / "setpos.ics"
    setpos.write_bytes(ics(vavailability(available(
        "a", "20270301T090000", "20270301T120000", "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1"))))
    refused = runner.invoke(cli, ["import-ics", f"Schedule/{SCHEDULE}", str(setpos)])
    assert refused.exit_code != 0 and "BYSETPOS is not supported" in refused.output
    unknown = runner.invoke(cli, ["import-ics", "Schedule/inconnu", str(setpos)])
    assert unknown.exit_code != 0
    good = tmp_path / "ok.ics"
    good.write_bytes(ics(vavailability(available("a", "20270301T090000", "20270301T120000"))))
    unknown = runner.invoke(cli, ["import-ics", "Schedule/inconnu", str(good)])
    assert unknown.exit_code != 0 and "(404)" in unknown.output
    assert body(client.get(f"/fhir/Schedule/{SCHEDULE}"))["meta"]["versionId"] == "1"


def test_an_agenda_feed_imported_back_gives_the_same_rules(
        app: Flask, agenda: FlaskClient, tmp_path: Path) -> None:
    # FHIR → ics (the whole feed: slots and events are not rules, and are left aside) → FHIR.
    file = tmp_path / "flux.ics"
    file.write_bytes(feed(agenda, schedule_path(SCHEDULE)).data)
    done = app.test_cli_runner().invoke(cli, ["import-ics", f"Schedule/{SCHEDULE}", str(file)])
    assert done.exit_code == 0, done.output
    stored = body(agenda.get(f"/fhir/Schedule/{SCHEDULE}"))
    assert canonical([e for e in stored["extension"] if e["url"] == URL]) == canonical(
        weekly_rules(wkst=False))
