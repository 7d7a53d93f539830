"""The slots a Schedule's availability rules give over a horizon, and what to write to get
there from the slots already derived.

A derived slot's id is a function of its Schedule and its start: while a rule keeps giving
the same time, the slot keeps its id and content, so SAS and other agendas see no churn and
nothing is written. A slot an appointment holds is never deleted nor freed by a rule
change: the booking owns it (app/scheduling/booking.py) until the appointment lets it go.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.gap.availability import Availability, cut, merge, open_time, subtract
from app.storage.repository import same_content

# Marks the slots this server derives from rules (and only those are ever changed by it).
DERIVED_SYSTEM = "https://fhir-agenda.example.org/CodeSystem/slot-origin"
DERIVED_CODE = "availability-rule"
DERIVED_TAG = {"system": DERIVED_SYSTEM, "code": DERIVED_CODE,
               "display": "Créneau calculé depuis les disponibilités de l'agenda"}
FREE = "free"

Resource = dict[str, Any]


def slot_id(schedule_id: str, start: datetime) -> str:
    """Stable and at most 64 characters (FHIR id): Schedule id (or its digest) + UTC start."""
    prefix = schedule_id if len(schedule_id) <= 48 else hashlib.sha256(
        schedule_id.encode()).hexdigest()[:24]
    return f"{prefix}.{start.astimezone(UTC):%Y%m%d%H%M}"


def is_derived(slot: Resource) -> bool:
    return any(tag.get("system") == DERIVED_SYSTEM and tag.get("code") == DERIVED_CODE
               for tag in (slot.get("meta") or {}).get("tag") or [] if isinstance(tag, dict))


def wanted_slots(schedule: Resource, availability: Availability, zone: ZoneInfo,
                 low: datetime, high: datetime, default_minutes: float,
                 taken: Sequence[tuple[datetime, datetime]] = ()) -> dict[str, Resource]:
    """id → the free Slot the rules give in [low, high) (aware bounds), outside the `taken`
    time (appointments of the agenda's actors that book no slot)."""
    if not availability.defined or not schedule.get("active", True):
        return {}
    schedule_id = str(schedule["id"])
    minutes = availability.slot_minutes or default_minutes
    template: Resource = {"resourceType": "Slot",
                          "meta": _meta(schedule),
                          "schedule": {"reference": f"Schedule/{schedule_id}"},
                          "status": FREE}
    if availability.service_types:
        template["serviceType"] = list(availability.service_types)
    if schedule.get("specialty"):
        template["specialty"] = schedule["specialty"]
    slots: dict[str, Resource] = {}
    open_intervals = subtract(open_time(availability, zone, low, high), merge(list(taken)))
    for start, end in cut(open_intervals, minutes):
        if start < low:
            continue
        sid = slot_id(schedule_id, start)
        slots[sid] = {**template, "id": sid, "start": _local(start, zone),
                      "end": _local(end, zone)}
    return slots


def _meta(schedule: Resource) -> Resource:
    """The derived mark, and the agenda's own labels (e.g. the SAS visibility of its time)."""
    meta: Resource = {"tag": [DERIVED_TAG]}
    security = (schedule.get("meta") or {}).get("security")
    if security:
        meta["security"] = security
    return meta


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds")


@dataclass
class Plan:
    """The writes that bring the derived slots of one Schedule in line with its rules."""

    create: list[Resource] = field(default_factory=list)
    update: list[Resource] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    kept: int = 0  # unchanged, or held by an appointment

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def plan(wanted: dict[str, Resource], existing: Iterable[Resource]) -> Plan:
    """Compare with the derived slots stored for the same window."""
    result = Plan()
    seen: set[str] = set()
    for slot in existing:
        sid = str(slot["id"])
        seen.add(sid)
        target = wanted.get(sid)
        if slot.get("status") != FREE:
            result.kept += 1  # booked, tentatively held or closed by hand: not the rules'
        elif target is None:
            result.delete.append(sid)
        elif not same_content(slot, target):
            result.update.append(target)
        else:
            result.kept += 1
    result.create = [slot for sid, slot in wanted.items() if sid not in seen]
    return result
