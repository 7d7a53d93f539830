"""Demo dataset: a small French agenda network (Lyon / Villeurbanne) as a FHIR transaction Bundle.

``fixtures/demo/resources.json`` holds the stable resources (practitioners, structures, places,
roles, schedules, patients); ``fixtures/demo/slot_plan.json`` says how to generate Slots for any
date range. Every Slot id, kind and status derives from its schedule, date and time only, so the
bundle is reproducible and loading it twice overwrites rather than duplicates (``PUT Type/id``).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from app.gap.rules import has_rules

Json = dict[str, Any]

DEMO_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "demo"

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
APPOINTMENT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
CATEGORIE_ETABLISSEMENT_SYSTEM = (
    "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/"
    "TRE-R66-CategorieEtablissement"
)
# The SAS CPTS profile carries the HealthcareService link in this R5 backport extension.
SLOT_SERVICE_TYPE_EXTENSION = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
)
CPTS_CATEGORY_CODE = "604"

_ACT_DISPLAY = {"AMB": "ambulatory", "HH": "home health", "VR": "virtual"}
_REASON_DISPLAY = {
    "ROUTINE": "Routine appointment - default if not valued",
    "WALKIN": "A previously unscheduled walk-in visit",
}


class DemoFiles(NamedTuple):
    resources: Path
    slot_plan: Path


class _Window(NamedTuple):
    """A local wall-clock interval of one day, in minutes since midnight."""

    start: int
    end: int

    def overlaps(self, other: _Window) -> bool:
        return self.start < other.end and other.start < self.end


def demo_files() -> DemoFiles:
    """Paths of the two fixture files (for loaders, docs and tests)."""
    return DemoFiles(DEMO_DIR / "resources.json", DEMO_DIR / "slot_plan.json")


def load_resources() -> list[Json]:
    with demo_files().resources.open(encoding="utf-8") as fh:
        resources: list[Json] = json.load(fh)
    return resources


def load_slot_plan() -> Json:
    with demo_files().slot_plan.open(encoding="utf-8") as fh:
        plan: Json = json.load(fh)
    return plan


def build_demo_bundle(
    start: dt.date,
    days: int = 7,
    tz: str = "Europe/Paris",
    *,
    booking_url: str | None = None,
) -> Json:
    """Return a FHIR ``transaction`` Bundle: every demo resource plus ``days`` days of Slots.

    ``booking_url`` overrides the plan's Slot.comment template (placeholders ``{schedule}`` and
    ``{slot}``), so a running server can point SAS at its own booking page.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    if isinstance(start, dt.datetime):  # a datetime is a date too; keep only its calendar day
        start = start.date()
    zone = ZoneInfo(tz)
    resources = load_resources()
    plan = load_slot_plan()
    template = booking_url or plan["booking_url"]

    # Agendas defined by availability rules get their slots from the worker (app/gap), not
    # from the plan.
    schedules = {r["id"]: r for r in resources
                 if r["resourceType"] == "Schedule" and not has_rules(r)}
    if set(plan["schedules"]) != set(schedules):
        raise ValueError("slot_plan.json and resources.json disagree on the Schedule ids")

    slots: list[Json] = []
    for schedule_id, schedule_plan in plan["schedules"].items():
        for offset in range(days):
            day = start + dt.timedelta(days=offset)
            slots.extend(
                _day_slots(schedules[schedule_id], schedule_plan, plan, day, zone, template)
            )

    entries = [_put_entry(resource) for resource in [*resources, *slots]]
    seen: set[str] = set()
    for entry in entries:
        url = entry["request"]["url"]
        if url in seen:  # a duplicate id would silently overwrite another resource on load
            raise ValueError(f"duplicate demo resource {url}")
        seen.add(url)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _put_entry(resource: Json) -> Json:
    return {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _instant(day: dt.date, minutes: int, zone: ZoneInfo) -> str:
    # Build from the local wall-clock time so the offset is the real one for that date (DST).
    local = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=zone)
    return local.isoformat(timespec="seconds")


def _windows_for(entries: list[Json], weekday: str) -> list[tuple[_Window, Json]]:
    return [
        (_Window(_minutes(e["start"]), _minutes(e["end"])), e)
        for e in entries
        if weekday in e["weekdays"]
    ]


def _cut(window: _Window, length: int) -> list[_Window]:
    """Consecutive slots of ``length`` minutes that fit entirely inside ``window``."""
    return [_Window(t, t + length) for t in range(window.start, window.end - length + 1, length)]


def _day_slots(
    schedule: Json,
    schedule_plan: Json,
    plan: Json,
    day: dt.date,
    zone: ZoneInfo,
    template: str,
) -> list[Json]:
    weekday = WEEKDAYS[day.weekday()]
    default_length: int = schedule_plan["slot_minutes"]
    unavailable = _windows_for(schedule_plan.get("unavailability", []), weekday)
    periods = _windows_for(schedule_plan.get("periods", []), weekday)
    blocked = [w for w, _ in unavailable]

    # (window, kind weights) for every bookable slot of the day; precedence is
    # unavailability > periods > regular opening hours.
    candidates: list[tuple[_Window, dict[str, int]]] = []
    for start_hhmm, end_hhmm in schedule_plan["opening_hours"].get(weekday, []):
        for slot in _cut(_Window(_minutes(start_hhmm), _minutes(end_hhmm)), default_length):
            if not any(slot.overlaps(w) for w in blocked + [p for p, _ in periods]):
                candidates.append((slot, schedule_plan["kinds"]))
    for period, period_plan in periods:
        for slot in _cut(period, period_plan.get("slot_minutes", default_length)):
            if not any(slot.overlaps(w) for w in blocked):
                candidates.append((slot, period_plan["kinds"]))

    result = [
        _bookable_slot(schedule, schedule_plan, plan, day, zone, template, window, weights)
        for window, weights in candidates
    ]
    result.extend(
        _unavailable_slot(schedule, day, zone, window, entry["comment"])
        for window, entry in unavailable
    )
    result.sort(key=lambda s: s["start"])
    return result


def _slot_id(schedule: Json, day: dt.date, minutes: int) -> str:
    return f"slot-{schedule['id']}-{day:%Y%m%d}-{minutes // 60:02d}{minutes % 60:02d}"


def _draw(slot_id: str) -> tuple[int, int]:
    """Two stable pseudo-random numbers for a slot: one for its kind, one for its status.

    A hash of the id (not random) keeps the mix identical across runs, processes and machines.
    """
    digest = hashlib.sha256(slot_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:16], "big")


def _pick(weights: dict[str, int], draw: int) -> str:
    total = sum(weights.values())
    point = draw % total
    for name, weight in weights.items():  # JSON object order is the plan's order: stable
        if point < weight:
            return name
        point -= weight
    raise AssertionError("unreachable: point < total")


def _bookable_slot(
    schedule: Json,
    schedule_plan: Json,
    plan: Json,
    day: dt.date,
    zone: ZoneInfo,
    template: str,
    window: _Window,
    weights: dict[str, int],
) -> Json:
    slot_id = _slot_id(schedule, day, window.start)
    kind_draw, status_draw = _draw(slot_id)
    kind_name = _pick(weights, kind_draw)
    kind: Json = plan["kinds"][kind_name]
    busy = status_draw % 100 < schedule_plan.get("busy_percent", 0)

    service_type: list[Json] = [
        {"coding": [{"system": ACT_CODE_SYSTEM, "code": code, "display": _ACT_DISPLAY[code]}]}
        for code in kind["serviceType"]
    ]
    services = kind.get("healthcareService", [])
    # CPTS slots name the CPTS offer(s) they are shared with, one concept per CPTS (SAS CPTS
    # aggregator profile); a kind names one offer or a list of them.
    for service in [services] if isinstance(services, str) else services:
        service_type.append(
            {
                "extension": [
                    {
                        "url": SLOT_SERVICE_TYPE_EXTENSION,
                        "valueReference": {"reference": service},
                    }
                ],
                "coding": [{"system": CATEGORIE_ETABLISSEMENT_SYSTEM, "code": CPTS_CATEGORY_CODE}],
            }
        )
    service_type.append({"text": kind["motif"]})  # the consultation reason travels as free text

    appointment_type = kind["appointmentType"]
    slot: Json = {
        "resourceType": "Slot",
        "id": slot_id,
        "meta": {
            "security": [
                {"system": plan["visibility_systems"][code], "code": code}
                for code in kind["security"]
            ]
        },
        "serviceType": service_type,
        "specialty": copy.deepcopy(schedule.get("specialty", [])),
        "appointmentType": {
            "coding": [
                {
                    "system": APPOINTMENT_REASON_SYSTEM,
                    "code": appointment_type,
                    "display": _REASON_DISPLAY[appointment_type],
                }
            ]
        },
        "schedule": {"reference": f"Schedule/{schedule['id']}"},
        "status": "busy" if busy else "free",
        "start": _instant(day, window.start, zone),
        "end": _instant(day, window.end, zone),
        "comment": template.format(schedule=schedule["id"], slot=slot_id),
    }
    if not slot["specialty"]:
        del slot["specialty"]
    return slot


def _unavailable_slot(
    schedule: Json, day: dt.date, zone: ZoneInfo, window: _Window, reason: str
) -> Json:
    # One Slot spans the whole absence, as agendas record it; it carries no visibility code
    # because nobody may book it.
    return {
        "resourceType": "Slot",
        "id": _slot_id(schedule, day, window.start),
        "schedule": {"reference": f"Schedule/{schedule['id']}"},
        "status": "busy-unavailable",
        "start": _instant(day, window.start, zone),
        "end": _instant(day, window.end, zone),
        "comment": reason,
    }


IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"


def demo_regulators_bundle() -> Json:
    """The demo regulator accounts (``fixtures/demo/regulators.json``) as SAS creates them
    (INT_R02): conditional PUTs by national id, so loading twice changes nothing. The
    development identity provider (``fixtures/demo/dev_idp_accounts.json``) signs in as them.
    """
    with (DEMO_DIR / "regulators.json").open(encoding="utf-8") as fh:
        regulators: list[Json] = json.load(fh)
    entries = []
    for regulator in regulators:
        national = next(i["value"] for i in regulator["identifier"]
                        if i["system"] == IDNPS_SYSTEM)
        entries.append({"resource": regulator, "request": {
            "method": "PUT", "url": f"Practitioner?identifier={IDNPS_SYSTEM}|{national}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
