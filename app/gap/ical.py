"""Agenda resources as iCalendar (RFC 5545, and RFC 7953 for availability) and back: pure
functions, no database, no Flask.

What maps to what follows the GAP guide's annex « Mise en correspondance avec iCalendar »
(gap-ig/pages/mapping.md):

- an availabilityTime of type `free` (FR Core `fr-core-schedule-availability-time`) is an
  AVAILABLE sub-component of a VAVAILABILITY: UID = identifier, CREATED = created,
  DTSTART = start, DTEND = end, RRULE = rrule. AVAILABLE has no PRIORITY (RFC 7953), so
  the free rules are grouped in one VAVAILABILITY per priority, whose PRIORITY it is;
- an availabilityTime of type `busy-unavailable` (the annex is silent on them) is a
  VAVAILABILITY of its own with BUSYTYPE:BUSY-UNAVAILABLE and no AVAILABLE, which is how
  RFC 7953 blocks DTSTART–DTEND; a recurring one carries its RRULE there (RFC 7953 has no
  recurring VAVAILABILITY: readers that ignore it see the first occurrence);
  unavailabilityReason is DESCRIPTION;
- a Slot is a VFREEBUSY: UID = identifier, DTSTART/DTEND = start/end, ATTENDEE =
  schedule.actor, COMMENT = comment, FREEBUSY;FBTYPE = status (the same codes);
- an Appointment is a VEVENT: UID = identifier, DTSTART/DTEND = start/end (DURATION =
  minutesDuration), CREATED, DESCRIPTION = description, PRIORITY, STATUS (booked… →
  CONFIRMED, proposed/pending → TENTATIVE, cancelled → CANCELLED), ATTENDEE = participants
  (ROLE from `required`, PARTSTAT from `status`), LOCATION = the Location participant.

Local times carry TZID (the server's zone, Europe/Paris by default) with a VTIMEZONE, so a
09:00 weekly rule stays 09:00 on both sides of a daylight-saving change; free/busy periods
are in UTC, as RFC 5545 requires of VFREEBUSY.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import (
    Calendar,
    Component,
    vRecur,
)

from app.gap.availability import (
    AVAILABILITY_URL,
    FREE,
    FREQ_SYSTEM,
    RRULE_PARTS,
    SCHEDULE_TYPE_SYSTEM,
    UNAVAILABLE,
)

TYPE_DISPLAY = {FREE: "Disponibilité", UNAVAILABLE: "Indisponibilité"}
PRODID = "-//fhir-agenda//Agenda iCalendar//FR"
# The UID's identifier system travels as a parameter, so that the round trip keeps it.
SYSTEM_PARAM = "X-FHIR-SYSTEM"
# An unavailability reason with codes: the CodeableConcept itself, as JSON.
REASON_PROPERTY = "X-FHIR-UNAVAILABILITY-REASON"

ICAL_PARTS = {part: name for name, (part, _) in RRULE_PARTS.items()}
FREQUENCIES = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# wkst is bound to FHIR's DaysOfWeek (mon, tue…), iCalendar says MO, TU…
DAYS_OF_WEEK = {"mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH", "fri": "FR", "sat": "SA",
                "sun": "SU"}
WEEKDAY_RE = re.compile(r"^[+-]?(?:[1-9]|[1-4][0-9]|5[0-3])?(MO|TU|WE|TH|FR|SA|SU)$")

Resource = dict[str, Any]
Moment = datetime | date


class IcsError(ValueError):
    """iCalendar content that cannot become availability rules; `problems` says why."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


# -- the rule, between the two worlds ------------------------------------------------------

@dataclass(frozen=True)
class PeriodRule:
    """One availabilityTime: a period, repeated when `rrule` is set (iCalendar parts)."""

    kind: str  # FREE | UNAVAILABLE
    uid: str
    start: Moment  # aware datetime, or a date (whole days)
    end: Moment
    rrule: dict[str, list[Any]] | None = None
    uid_system: str | None = None
    created: Moment | None = None
    priority: int | None = None
    reason: Resource | None = None  # unavailabilityReason (CodeableConcept)
    extra_identifiers: tuple[Resource, ...] = field(default=())


def rules_of(schedule: Resource, zone: ZoneInfo) -> tuple[list[PeriodRule], list[str]]:
    """The Schedule's availabilityTime extensions as rules, and a message for each one that
    cannot be read (left out)."""
    rules: list[PeriodRule] = []
    problems: list[str] = []
    for index, extension in enumerate(schedule.get("extension") or []):
        if isinstance(extension, dict) and extension.get("url") == AVAILABILITY_URL:
            try:
                rules.append(rule_from_extension(extension, zone, fallback_uid=_fallback_uid(
                    schedule, extension)))
            except ValueError as problem:
                problems.append(f"Schedule.extension[{index}]: {problem}")
    return rules, problems


def _fallback_uid(schedule: Resource, extension: Resource) -> str:
    """A stable UID for a rule stored without identifier (FR Core wants one)."""
    digest = hashlib.sha256(json.dumps(extension, sort_keys=True).encode()).hexdigest()[:16]
    return extension.get("id") or f"{schedule.get('id', 'schedule')}-rule-{digest}"


def rule_from_extension(extension: Resource, zone: ZoneInfo, *,
                        fallback_uid: str = "rule") -> PeriodRule:
    parts = _sub_extensions(extension)
    kind = (_value(parts, "type") or {}).get("code")
    if kind not in (FREE, UNAVAILABLE):
        raise ValueError(f"type must be {FREE!r} or {UNAVAILABLE!r}, not {kind!r}")
    start = _fhir_moment(_value(parts, "start"), "start", zone)
    end = _fhir_moment(_value(parts, "end"), "end", zone)
    if _sortable(end, zone) <= _sortable(start, zone):
        raise ValueError("end must come after start")
    identifiers = [i for i in _values(parts, "identifier") if isinstance(i, dict)]
    first = next((i for i in identifiers if i.get("value")), None)
    created = _value(parts, "created")
    priority = _value(parts, "priority")
    rrule = _value_extension(parts, "rrule")
    return PeriodRule(
        kind=kind, start=start, end=end,
        uid=str(first["value"]) if first else fallback_uid,
        uid_system=first.get("system") if first else None,
        extra_identifiers=tuple(i for i in identifiers if i is not first),
        rrule=_rrule_from_fhir(rrule, start, zone) if rrule is not None else None,
        created=_fhir_moment(created, "created", zone) if created else None,
        priority=priority if isinstance(priority, int) else None,
        reason=_value(parts, "unavailabilityReason"))


def extension_from_rule(rule: PeriodRule, zone: ZoneInfo) -> Resource:
    """The FR Core availabilityTime extension of a rule (times in the server's zone)."""
    identifier: Resource = {"value": rule.uid}
    if rule.uid_system:
        identifier = {"system": rule.uid_system, "value": rule.uid}
    parts: list[Resource] = [
        {"url": "identifier", "valueIdentifier": identifier},
        *({"url": "identifier", "valueIdentifier": i} for i in rule.extra_identifiers),
        {"url": "type", "valueCoding": {"system": SCHEDULE_TYPE_SYSTEM, "code": rule.kind,
                                        "display": TYPE_DISPLAY[rule.kind]}},
        {"url": "start", "valueDateTime": _fhir_text(rule.start, zone)},
        {"url": "end", "valueDateTime": _fhir_text(rule.end, zone)}]
    if rule.rrule:
        parts.append({"url": "rrule", "extension": _rrule_to_fhir(rule.rrule, zone)})
    if rule.created is not None:
        parts.append({"url": "created", "valueDateTime": _fhir_text(rule.created, zone)})
    if rule.priority is not None:
        parts.append({"url": "priority", "valueInteger": rule.priority})
    if rule.reason:
        parts.append({"url": "unavailabilityReason", "valueCodeableConcept": rule.reason})
    return {"url": AVAILABILITY_URL, "extension": parts}


# -- FHIR values ---------------------------------------------------------------------------

def _sub_extensions(extension: Resource) -> list[tuple[str, Resource]]:
    return [(str(part.get("url")), part) for part in extension.get("extension") or []
            if isinstance(part, dict)]


def _value_of(part: Resource) -> Any:
    return next((v for k, v in part.items() if k.startswith("value")), None)


def _values(parts: list[tuple[str, Resource]], name: str) -> list[Any]:
    return [_value_of(part) for url, part in parts if url == name]


def _value(parts: list[tuple[str, Resource]], name: str) -> Any:
    found = _values(parts, name)
    return found[0] if found else None


def _value_extension(parts: list[tuple[str, Resource]], name: str) -> Resource | None:
    return next((part for url, part in parts if url == name), None)


def _fhir_moment(value: Any, name: str, zone: ZoneInfo) -> Moment:
    """A FHIR dateTime: a date stays a date; a time without offset is local time."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} (valueDateTime) is required")
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a FHIR dateTime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _fhir_text(moment: Moment, zone: ZoneInfo) -> str:
    if not isinstance(moment, datetime):
        return moment.isoformat()
    return moment.astimezone(zone).isoformat(timespec="seconds")


def _sortable(moment: Moment, zone: ZoneInfo) -> datetime:
    """A date as the start of that day, local time (as app/gap/availability.py reads it)."""
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, time.min, tzinfo=zone)


def _rrule_from_fhir(extension: Resource, start: Moment, zone: ZoneInfo) -> dict[str, list[Any]]:
    """FR Core rrule sub-extensions → iCalendar RRULE parts (UNTIL in UTC, or a date for
    an all-day rule, as RFC 5545 wants with a DTSTART in a time zone)."""
    rule: dict[str, list[Any]] = {}
    for url, part in _sub_extensions(extension):
        if url not in RRULE_PARTS:
            raise ValueError(f"rrule part {url!r} is not one of FR Core's")
        name, value = RRULE_PARTS[url][0], _value_of(part)
        if value is None:
            raise ValueError(f"rrule.{url} has no value")
        rule.setdefault(name, []).extend(_ical_values(name, value, start, zone))
    if not rule.get("FREQ"):
        raise ValueError("rrule needs freq")
    return rule


def _ical_values(name: str, value: Any, start: Moment, zone: ZoneInfo) -> list[Any]:
    if name == "FREQ":
        code = str(value.get("code") if isinstance(value, dict) else value).upper()
        if code not in FREQUENCIES:
            raise ValueError(f"rrule.freq {code!r} is not an iCalendar frequency")
        return [code]
    if name == "UNTIL":
        until = _sortable(_fhir_moment(value, "rrule.until", zone), zone)
        return [until.astimezone(zone).date() if not isinstance(start, datetime)
                else until.astimezone(UTC)]
    if name == "WKST":
        day = str(value)
        return [DAYS_OF_WEEK.get(day.lower(), day.upper())]
    if name in ("BYDAY", "BYYEARDAY"):  # strings, sometimes written "MO,TU" in one
        return [item.strip().upper() for item in str(value).split(",") if item.strip()]
    return [int(value)]


def _rrule_to_fhir(rule: dict[str, list[Any]], zone: ZoneInfo) -> list[Resource]:
    parts: list[Resource] = []
    for name, values in rule.items():
        url = ICAL_PARTS[name]
        kind = RRULE_PARTS[url][1]
        for value in values:
            if name == "FREQ":
                fhir_value: Any = {"system": FREQ_SYSTEM, "code": value}
            elif name == "UNTIL":
                fhir_value = _fhir_text(value, zone)
            elif name == "WKST":
                fhir_value = next(k for k, v in DAYS_OF_WEEK.items() if v == value)
            elif kind == "valueString":
                fhir_value = str(value)
            else:
                fhir_value = int(value)
            parts.append({"url": url, kind: fhir_value})
    return parts


# -- availability: FHIR → iCalendar ----------------------------------------------------------

def availability_components(rules: Sequence[PeriodRule], zone: ZoneInfo, *, uid: str,
                            stamp: datetime, summary: str = "Disponibilités"
                            ) -> list[Component]:
    """The free rules as AVAILABLE components of one VAVAILABILITY per priority, each
    unavailability as a VAVAILABILITY of its own."""
    components: list[Component] = []
    priorities = sorted({r.priority for r in rules if r.kind == FREE},
                        key=lambda p: -1 if p is None else p)
    for priority in priorities:
        container = new_component("VAVAILABILITY")
        container.add("uid", uid if priority is None else f"{uid}-priority-{priority}")
        container.add("dtstamp", stamp.astimezone(UTC))
        # Outside its AVAILABLE times the agenda is not open (RFC 7953's default, said).
        container.add("busytype", "BUSY-UNAVAILABLE")
        container.add("summary", summary)
        if priority is not None:
            container.add("priority", ical_priority(priority))
        for rule in rules:
            if rule.kind == FREE and rule.priority == priority:
                container.add_component(_period(new_component("AVAILABLE"), rule, zone, stamp))
        components.append(container)
    for rule in rules:
        if rule.kind == UNAVAILABLE:
            components.append(_unavailability(rule, zone, stamp))
    return components


def _unavailability(rule: PeriodRule, zone: ZoneInfo, stamp: datetime) -> Component:
    component = _period(new_component("VAVAILABILITY"), rule, zone, stamp)
    component.add("busytype", "BUSY-UNAVAILABLE")
    if rule.priority is not None:
        component.add("priority", ical_priority(rule.priority))
    if rule.reason:
        label = rule.reason.get("text") or next(
            (c.get("display") or c.get("code") for c in rule.reason.get("coding") or []), None)
        if label:
            component.add("description", str(label))
        if rule.reason.get("coding"):
            component.add(REASON_PROPERTY, json.dumps(rule.reason, ensure_ascii=False,
                                                      separators=(",", ":")))
    return component


def _period(component: Component, rule: PeriodRule, zone: ZoneInfo,
            stamp: datetime) -> Component:
    component.add("uid", rule.uid, parameters={SYSTEM_PARAM: rule.uid_system}
                  if rule.uid_system else None)
    component.add("dtstamp", stamp.astimezone(UTC))
    component.add("summary", TYPE_DISPLAY[rule.kind])
    component.add("dtstart", _ical_moment(rule.start, zone))
    component.add("dtend", _ical_moment(rule.end, zone))
    if rule.rrule:
        component.add("rrule", vRecur(rule.rrule))
    if rule.created is not None:
        component.add("created", _sortable(rule.created, zone).astimezone(UTC))
    return component


def ical_priority(priority: int) -> int:
    return min(max(priority, 0), 9)  # iCalendar's range


def _ical_moment(moment: Moment, zone: ZoneInfo) -> Moment:
    return moment.astimezone(zone) if isinstance(moment, datetime) else moment


def new_component(name: str) -> Component:
    component = Component()
    component.name = name
    return component


# -- availability: iCalendar → FHIR ----------------------------------------------------------

def parse_calendar(data: bytes | str) -> Calendar:
    try:
        return Calendar.from_ical(data)
    except (ValueError, IndexError, KeyError) as problem:
        raise IcsError([f"not an iCalendar file: {problem}"]) from None


def rules_from_calendar(calendar: Calendar, zone: ZoneInfo) -> list[PeriodRule]:
    """Every VAVAILABILITY of the calendar as rules; raises IcsError naming each problem."""
    containers = [c for c in calendar.walk("VAVAILABILITY")]
    if not containers:
        raise IcsError(["the file has no VAVAILABILITY component (RFC 7953): nothing says "
                        "when the agenda is available"])
    rules: list[PeriodRule] = []
    problems: list[str] = []
    for number, container in enumerate(containers, 1):
        where = f"VAVAILABILITY #{number} (UID {container.get('uid', '?')})"
        available = [c for c in container.subcomponents if c.name == "AVAILABLE"]
        try:
            if not available:
                rules.append(_rule(container, UNAVAILABLE, zone, None))
                continue
            priority = _priority(container)
            for child in available:
                rule = _bounded(_rule(child, FREE, zone, priority), container, zone)
                if rule is not None:
                    rules.append(rule)
        except ValueError as problem:
            problems.append(f"{where}: {problem}")
    uids = Counter(rule.uid for rule in rules)
    problems += [f"UID {uid} names several rules (each needs its own)"
                 for uid, count in sorted(uids.items()) if count > 1]
    if problems:
        raise IcsError(problems)
    return rules


def _priority(component: Component) -> int | None:
    value = component.get("priority")
    return int(value) if value is not None else None


def _rule(component: Component, kind: str, zone: ZoneInfo,
          priority: int | None) -> PeriodRule:
    name = component.name
    for unsupported in ("RDATE", "EXDATE", "RECURRENCE-ID"):
        if unsupported in component:
            raise ValueError(f"{name} with {unsupported} is not supported (FR Core rules have "
                             "no exceptions: write them as unavailabilities)")
    if "DTSTART" not in component:
        raise ValueError(f"{name} needs DTSTART")
    start = _ics_moment(component.decoded("dtstart"), zone)
    end = _end(component, start, zone)
    if _sortable(end, zone) <= _sortable(start, zone):
        raise ValueError(f"{name} ends before it starts")
    uid = component.get("uid")
    if kind == UNAVAILABLE and priority is None:
        priority = _priority(component)
    return PeriodRule(
        kind=kind, start=start, end=end,
        uid=str(uid) if uid else _content_uid(component),
        uid_system=uid.params.get(SYSTEM_PARAM) if uid is not None else None,
        rrule=_rrule_from_ics(component, start, zone),
        created=_ics_moment(component.decoded("created"), zone) if "CREATED" in component
        else None,
        priority=priority,
        reason=_reason(component) if kind == UNAVAILABLE else None)


def _end(component: Component, start: Moment, zone: ZoneInfo) -> Moment:
    if "DTEND" in component:
        return _ics_moment(component.decoded("dtend"), zone)
    if "DURATION" in component:
        return start + component.decoded("duration")
    raise ValueError(f"{component.name} needs DTEND or DURATION (an availabilityTime has an "
                     "end)")


def _ics_moment(value: Any, zone: ZoneInfo) -> Moment:
    """Aware in the server's zone; a floating time is local time."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(zone)
    if isinstance(value, date):
        return value
    raise ValueError(f"{value!r} is not a date or a date-time")


def _content_uid(component: Component) -> str:
    digest = hashlib.sha256(component.to_ical()).hexdigest()[:16]
    return f"ics-{digest}"


def _reason(component: Component) -> Resource | None:
    coded = component.get(REASON_PROPERTY)
    if coded is not None:
        try:
            concept = json.loads(str(coded))
        except ValueError:
            concept = None
        if isinstance(concept, dict):
            return concept
    text = component.get("description") or component.get("summary")
    if text and str(text) != TYPE_DISPLAY[UNAVAILABLE]:
        return {"text": str(text)}
    return None


def _rrule_from_ics(component: Component, start: Moment,
                    zone: ZoneInfo) -> dict[str, list[Any]] | None:
    found = component.get("rrule")
    if found is None:
        return None
    if isinstance(found, list):
        raise ValueError(f"{component.name} has several RRULEs; FR Core has one per rule")
    rule: dict[str, list[Any]] = {}
    for name, values in found.items():
        if name not in ICAL_PARTS:
            raise ValueError(f"RRULE part {name} is not supported (FR Core's rrule has "
                             f"{', '.join(p for p, _ in RRULE_PARTS.values())})")
        rule[name] = [_checked_part(name, v, start, zone) for v in values]
    if "COUNT" in rule and "UNTIL" in rule:
        raise ValueError("RRULE has both COUNT and UNTIL (RFC 5545 forbids it)")
    if not rule.get("FREQ") or rule["FREQ"][0] not in FREQUENCIES:
        raise ValueError("RRULE needs a FREQ")
    _check_expandable(rule, start, zone)
    return rule


def _checked_part(name: str, value: Any, start: Moment, zone: ZoneInfo) -> Any:
    if name == "UNTIL":
        until = _ics_moment(value, zone)
        return until.astimezone(UTC) if isinstance(start, datetime) else _sortable(
            until, zone).date()
    if name in ("FREQ", "WKST", "BYDAY", "BYYEARDAY"):
        text = str(value).upper()
        if name == "BYDAY" and not WEEKDAY_RE.match(text):
            raise ValueError(f"RRULE BYDAY {text!r} is not a week day")
        return text
    number = int(value)
    if RRULE_PARTS[ICAL_PARTS[name]][1] == "valuePositiveInt" and number < 1:
        raise ValueError(f"RRULE {name}={number} is not supported: FR Core types "
                         f"{ICAL_PARTS[name]} as a positiveInt (leave the part out when it "
                         "repeats DTSTART's value)")
    return number


def _check_expandable(rule: dict[str, list[Any]], start: Moment, zone: ZoneInfo) -> None:
    text = vRecur(rule).to_ical().decode()
    try:
        rrulestr(text, dtstart=_sortable(start, zone).replace(tzinfo=None), ignoretz=True)
    except (ValueError, TypeError) as problem:
        raise ValueError(f"RRULE {text!r} is not a valid recurrence: {problem}") from None


def _bounded(rule: PeriodRule, container: Component, zone: ZoneInfo) -> PeriodRule | None:
    """An AVAILABLE counts only inside its VAVAILABILITY's DTSTART–DTEND (RFC 7953): the end
    bound becomes the rule's UNTIL; a one-off period outside the bounds is left out. (A
    recurring rule starting before DTSTART keeps its start: FR Core has no lower bound.)"""
    low = _sortable(_ics_moment(container.decoded("dtstart"), zone), zone) if (
        "DTSTART" in container) else None
    high = _sortable(_end(container, low, zone), zone) if low is not None and (
        "DTEND" in container or "DURATION" in container) else None
    if not rule.rrule:
        outside = (high is not None and _sortable(rule.start, zone) >= high) or (
            low is not None and _sortable(rule.end, zone) <= low)
        return None if outside else rule
    if high is None or "COUNT" in rule.rrule:
        return rule
    bound = high - timedelta(seconds=1)  # occurrences that start before DTEND
    until = rule.rrule.get("UNTIL", [None])[0]
    if until is not None and _sortable(until, zone) <= bound:
        return rule
    limit: Moment = bound.astimezone(UTC) if isinstance(rule.start, datetime) else bound.date()
    return replace(rule, rrule={**rule.rrule, "UNTIL": [limit]})
