"""A Schedule's availability rules, read from the FR Core extensions (GAP flows 3a/3b/3c).

`fr-core-schedule-availability-time` gives periods of availability (`free`) or of
unavailability (`busy-unavailable`), each with its `start` and `end`, recurring when an
iCalendar-style `rrule` is present (the first occurrence is `start`–`end`, the rule repeats
it), and an `identifier`. `fr-core-service-type-duration` gives the duration of each
service type, from which the slots are cut.

Recurrences are expanded in local wall time (Europe/Paris unless configured otherwise): a
09:00 rule is 09:00 local on both sides of a daylight-saving change, as a calendar program
would show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from app.outcome import Issue, Unprocessable

AVAILABILITY_URL = ("https://hl7.fr/ig/fhir/core/StructureDefinition/"
                    "fr-core-schedule-availability-time")
DURATION_URL = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-service-type-duration"
SCHEDULE_TYPE_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-schedule-type"
FREQ_SYSTEM = "https://www.ietf.org/rfc/rfc2445"
FREE, UNAVAILABLE = "free", "busy-unavailable"
# FR Core rrule sub-extensions: iCalendar RRULE part, FHIR value type.
RRULE_PARTS: dict[str, tuple[str, str]] = {
    "freq": ("FREQ", "valueCoding"), "until": ("UNTIL", "valueDateTime"),
    "count": ("COUNT", "valueInteger"), "interval": ("INTERVAL", "valueInteger"),
    "bySecond": ("BYSECOND", "valuePositiveInt"), "byMinute": ("BYMINUTE", "valuePositiveInt"),
    "byHour": ("BYHOUR", "valuePositiveInt"), "byDay": ("BYDAY", "valueString"),
    "byMonthDay": ("BYMONTHDAY", "valueInteger"), "byYearDay": ("BYYEARDAY", "valueString"),
    "byWeekNo": ("BYWEEKNO", "valueInteger"), "byMonth": ("BYMONTH", "valuePositiveInt"),
    "wkst": ("WKST", "valueCode")}
MINUTES = {"min": 1, "h": 60, "d": 1440, "s": 1 / 60}

Resource = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """One availability or unavailability period, possibly recurring."""

    kind: str  # FREE | UNAVAILABLE
    start: datetime  # aware
    end: datetime  # aware
    rrule: str | None  # RFC 5545 RRULE value, e.g. "FREQ=WEEKLY;BYDAY=MO,TU"
    where: str  # FHIRPath-like location, for messages

    def occurrences(self, zone: ZoneInfo, low: datetime,
                    high: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(start, end) of each occurrence meeting [low, high), as aware UTC datetimes."""
        length = self.end - self.start
        if self.rrule is None:
            if self.start < high and self.end > low:
                yield self.start.astimezone(UTC), self.end.astimezone(UTC)
            return
        # Wall time of the first occurrence, repeated in local time, then placed in the zone
        # (fold 0: an occurrence in the autumn's repeated hour takes the first one).
        first = self.start.astimezone(zone)
        wall_length = (self.end.astimezone(zone).replace(tzinfo=None)
                       - first.replace(tzinfo=None))
        rule = rrulestr(self.rrule, dtstart=first.replace(tzinfo=None))
        earliest = (low.astimezone(zone) - length).replace(tzinfo=None)
        for wall in rule.xafter(earliest, inc=True):
            start = wall.replace(tzinfo=zone)
            if start >= high:
                return
            end = (wall + wall_length).replace(tzinfo=zone)
            if end > low:
                yield start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class Availability:
    """What a Schedule says about its time: its rules and the length of its slots."""

    rules: tuple[Rule, ...]
    slot_minutes: float | None  # None: the Schedule names no service-type duration
    service_types: tuple[dict[str, Any], ...]  # the CodeableConcepts its slots carry

    @property
    def defined(self) -> bool:
        return any(rule.kind == FREE for rule in self.rules)


def read_availability(schedule: Resource, zone: ZoneInfo) -> Availability:
    """The Schedule's rules; raises Unprocessable (422) naming each rule it cannot use."""
    rules: list[Rule] = []
    issues: list[Issue] = []
    durations: list[float] = []
    services: list[dict[str, Any]] = []
    for index, extension in enumerate(schedule.get("extension") or []):
        if not isinstance(extension, dict):
            continue
        where = f"Schedule.extension[{index}]"
        if extension.get("url") == AVAILABILITY_URL:
            try:
                rules.append(_rule(_parts(extension), where, zone))
            except ValueError as problem:
                issues.append(Issue("value", f"{where}: {problem}", expression=[where]))
        elif extension.get("url") == DURATION_URL:
            parts = _parts(extension)
            concept = parts.get("serviceType", {}).get("valueCodeableConcept")
            if isinstance(concept, dict):
                services.append(concept)
            minutes = _minutes(parts.get("duration", {}).get("valueDuration"))
            if minutes:
                durations.append(minutes)
    if issues:
        raise Unprocessable("The Schedule's availability rules cannot be used", issues=issues)
    # Several service types: slots as long as the shortest, so that each fits one or more.
    return Availability(tuple(rules), min(durations) if durations else None, tuple(services))


def _parts(extension: Resource) -> dict[str, Resource]:
    return {str(part.get("url")): part for part in extension.get("extension") or []
            if isinstance(part, dict)}


def _rule(parts: dict[str, Resource], where: str, zone: ZoneInfo) -> Rule:
    code = (parts.get("type", {}).get("valueCoding") or {}).get("code")
    if code not in (FREE, UNAVAILABLE):
        raise ValueError(f"type must be '{FREE}' or '{UNAVAILABLE}' (fr-core-cs-schedule-type),"
                         f" not {code!r}")
    start = _instant(parts.get("start", {}).get("valueDateTime"), "start", zone)
    end = _instant(parts.get("end", {}).get("valueDateTime"), "end", zone)
    if end <= start:
        raise ValueError("end must come after start")
    rrule = _rrule(parts["rrule"], zone) if "rrule" in parts else None
    return Rule(code, start, end, rrule, where)


def _instant(value: Any, name: str, zone: ZoneInfo) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} (valueDateTime) is required")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a FHIR dateTime") from None
    if len(value) <= 10:  # a date: the start of that day, local time
        moment = datetime.combine(moment.date(), datetime.min.time())
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _rrule(extension: Resource, zone: ZoneInfo) -> str:
    # A part given several times (byDay: MO, then TU) is one list in the RRULE: BYDAY=MO,TU.
    parts: dict[str, list[str]] = {}
    for item in extension.get("extension") or []:
        name = RRULE_PARTS.get(str(item.get("url")), ("",))[0]
        if not name:
            raise ValueError(f"rrule part {item.get('url')!r} is not an iCalendar RRULE part")
        value = next((v for k, v in item.items() if k.startswith("value")), None)
        if isinstance(value, dict):  # freq, a Coding of RFC 2445
            value = value.get("code")
        if name == "WKST" and isinstance(value, str):  # FR Core: DaysOfWeek codes (mon…)
            value = value[:2]
        if name == "UNTIL" and isinstance(value, str):
            # In local wall time, as the recurrence is expanded (inclusive bound).
            until = _instant(value, "rrule.until", zone).astimezone(zone)
            value = until.strftime("%Y%m%dT%H%M%S")
        if value is None:
            raise ValueError(f"rrule part {item.get('url')} has no value")
        parts.setdefault(name, []).append(str(value).upper())
    if "FREQ" not in parts:
        raise ValueError("rrule needs freq")
    text = ";".join(f"{name}={','.join(values)}" for name, values in parts.items())
    try:
        rrulestr(text, dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError) as problem:
        raise ValueError(f"rrule {text!r} is not a valid recurrence: {problem}") from None
    return text


def _minutes(duration: Any) -> float | None:
    if not isinstance(duration, dict) or not isinstance(duration.get("value"), (int, float)):
        return None
    unit = duration.get("code") or duration.get("unit")
    factor = MINUTES.get(str(unit))
    value = float(duration["value"]) * factor if factor else None
    return value if value and value > 0 else None


def merge(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, overlapping or touching intervals joined."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(free: list[tuple[datetime, datetime]],
             busy: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """`free` minus `busy`, both merged and sorted."""
    result: list[tuple[datetime, datetime]] = []
    for start, end in free:
        cursor = start
        for low, high in busy:
            if high <= cursor or low >= end:
                continue
            if low > cursor:
                result.append((cursor, low))
            cursor = max(cursor, high)
        if cursor < end:
            result.append((cursor, end))
    return result


def open_time(availability: Availability, zone: ZoneInfo, low: datetime,
              high: datetime) -> list[tuple[datetime, datetime]]:
    """The intervals of [low, high) the rules make available: every free occurrence, less
    every unavailability (an exception such as a holiday wins over a weekly rule)."""
    free = merge([o for r in availability.rules if r.kind == FREE
                  for o in r.occurrences(zone, low, high)])
    busy = merge([o for r in availability.rules if r.kind == UNAVAILABLE
                  for o in r.occurrences(zone, low, high)])
    return [(max(s, low), min(e, high)) for s, e in subtract(free, busy)]


def cut(intervals: list[tuple[datetime, datetime]],
        minutes: float) -> Iterator[tuple[datetime, datetime]]:
    """Slots of `minutes` from the start of each interval; a shorter remainder is left out."""
    step = timedelta(minutes=minutes)
    for start, end in intervals:
        cursor = start
        while cursor + step <= end:
            yield cursor, cursor + step
            cursor += step
