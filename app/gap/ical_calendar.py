"""Slots and appointments as iCalendar components, and the calendar that carries them:
pure functions, no database, no Flask (the rules are app/gap/ical.py's).

A Slot is a VFREEBUSY (FBTYPE from its status, periods in UTC as RFC 5545 requires); an
Appointment a VEVENT (STATUS, ATTENDEE with ROLE and PARTSTAT, LOCATION), as the GAP
guide's iCalendar annex maps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import (
    Calendar,
    Component,
    Timezone,
    vCalAddress,
    vDuration,
    vPeriod,
)

from app.gap.ical import PRODID, Resource, ical_priority, new_component

FBTYPES = {"free": "FREE", "busy": "BUSY", "busy-unavailable": "BUSY-UNAVAILABLE",
           "busy-tentative": "BUSY-TENTATIVE"}
EVENT_STATUS = {"booked": "CONFIRMED", "arrived": "CONFIRMED", "checked-in": "CONFIRMED",
                "fulfilled": "CONFIRMED", "noshow": "CONFIRMED", "proposed": "TENTATIVE",
                "pending": "TENTATIVE", "waitlist": "TENTATIVE", "cancelled": "CANCELLED"}
ROLES = {"required": "REQ-PARTICIPANT", "optional": "OPT-PARTICIPANT",
         "information-only": "NON-PARTICIPANT"}
PARTSTATS = {"accepted": "ACCEPTED", "declined": "DECLINED", "tentative": "TENTATIVE",
             "needs-action": "NEEDS-ACTION"}


# -- slots and appointments ------------------------------------------------------------------

@dataclass(frozen=True)
class Party:
    """A participant as a calendar address: `uri` (mailto: or the FHIR URL), its name."""

    uri: str
    name: str | None = None
    kind: str | None = None  # CUTYPE: INDIVIDUAL, GROUP, RESOURCE, ROOM
    role: str | None = None  # FHIR participant.required
    status: str | None = None  # FHIR participant.status


def resource_uid(resource: Resource, base_url: str) -> str:
    """The annex's UID = identifier; without one, the resource's URL (globally unique)."""
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("value"):
            return str(identifier["value"])
    return f"{base_url.rstrip('/')}/{resource['resourceType']}/{resource['id']}"


def slot_freebusy(slot: Resource, uid: str, attendees: Sequence[Party],
                  stamp: datetime) -> Component | None:
    """One Slot as one VFREEBUSY; None for a slot entered in error or without times."""
    fbtype = FBTYPES.get(slot.get("status", ""))
    if fbtype is None or not slot.get("start") or not slot.get("end"):
        return None
    start, end = _utc(slot["start"]), _utc(slot["end"])
    component = new_component("VFREEBUSY")
    component.add("uid", uid)
    component.add("dtstamp", stamp.astimezone(UTC))
    component.add("dtstart", start)
    component.add("dtend", end)
    for party in attendees:
        component.add("attendee", _address(party))
    if slot.get("comment"):
        component.add("comment", str(slot["comment"]))
    period = vPeriod((start, end))
    period.params.pop("TZID", None)  # UTC times (a TZID=UTC would contradict the Z)
    period.params["FBTYPE"] = fbtype
    component.add("freebusy", period)
    return component


@dataclass(frozen=True)
class EventDetails:
    """What an Appointment's VEVENT shows besides the Appointment itself."""

    uid: str
    summary: str
    attendees: Sequence[Party] = ()
    organizer: Party | None = None
    location: str | None = None
    url: str | None = None


def appointment_event(appointment: Resource, details: EventDetails,
                      zone: ZoneInfo) -> Component | None:
    """One Appointment as one VEVENT; None when it has no start or was entered in error."""
    status = EVENT_STATUS.get(appointment.get("status", ""))
    if status is None or not appointment.get("start"):
        return None
    event = new_component("VEVENT")
    event.add("uid", details.uid)
    stamp = version_time(appointment)
    event.add("dtstamp", stamp)
    event.add("last-modified", stamp)
    if appointment.get("created"):
        event.add("created", _utc(appointment["created"]))
    start = _aware(appointment["start"], zone).astimezone(zone)
    event.add("dtstart", start)
    if appointment.get("end"):
        event.add("dtend", _aware(appointment["end"], zone).astimezone(zone))
    elif isinstance(appointment.get("minutesDuration"), int):
        event.add("duration", timedelta(minutes=appointment["minutesDuration"]))
    event.add("summary", details.summary)
    if appointment.get("description"):
        event.add("description", str(appointment["description"]))
    if details.location:
        event.add("location", details.location)
    event.add("status", status)
    # Health data: calendar programs that share a calendar show private events as "busy".
    event.add("class", "PRIVATE")
    event.add("transp", "TRANSPARENT" if status == "CANCELLED" else "OPAQUE")
    if isinstance(appointment.get("priority"), int):
        event.add("priority", ical_priority(appointment["priority"]))
    if details.organizer is not None:
        event.add("organizer", _address(details.organizer))
    for party in details.attendees:
        event.add("attendee", _address(party))
    if details.url:
        event.add("url", details.url)
    return event


def _address(party: Party) -> vCalAddress:
    address = vCalAddress(party.uri)
    if party.name:
        address.params["CN"] = party.name
    if party.kind:
        address.params["CUTYPE"] = party.kind
    if party.role in ROLES:
        address.params["ROLE"] = ROLES[party.role]
    if party.status in PARTSTATS:
        address.params["PARTSTAT"] = PARTSTATS[party.status]
    return address


def version_time(resource: Resource) -> datetime:
    """The version's time: stable from one fetch of a feed to the next."""
    updated = (resource.get("meta") or {}).get("lastUpdated")
    return _utc(updated) if updated else datetime.now(UTC).replace(microsecond=0)


def _aware(value: str, zone: ZoneInfo) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _utc(value: str) -> datetime:
    return _aware(value, ZoneInfo("UTC")).astimezone(UTC).replace(microsecond=0)


# -- the calendar ----------------------------------------------------------------------------

# Europe/Paris as calendar programs write it (EU rules since 1996, valid with no end date).
PARIS_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Paris
BEGIN:DAYLIGHT
TZNAME:CEST
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZNAME:CET
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""


def vtimezone(zone_name: str) -> Component:
    if zone_name == "Europe/Paris":
        return Timezone.from_ical(PARIS_VTIMEZONE.replace("\n", "\r\n"))
    return Timezone.from_tzid(zone_name)


def new_calendar(name: str, zone_name: str, components: Iterable[Component], *,
                 refresh: timedelta = timedelta(minutes=15)) -> Calendar:
    """A published calendar (METHOD:PUBLISH) with its VTIMEZONE and a refresh hint."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", name)  # RFC 7986
    calendar.add("x-wr-calname", name)  # what Google Calendar and Apple read
    calendar.add("x-wr-timezone", zone_name)
    calendar.add("refresh-interval", vDuration(refresh), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(refresh))
    calendar.add_component(vtimezone(zone_name))
    for component in components:
        calendar.add_component(component)
    return calendar
