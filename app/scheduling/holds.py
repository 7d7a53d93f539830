"""Which appointments hold which slots, after the FHIR R4 Appointment and Slot statuses.

An appointment holds the local Slots of `Appointment.slot` while its status says the time is
taken: tentatively while it is `proposed` or `pending` (Slot `busy-tentative`), firmly once
`booked`, and still when the patient `arrived` or is `checked-in`, and after it `fulfilled`
or ended in a `noshow` (the practitioner's time was consumed all the same). `cancelled` and
`entered-in-error` give the slot back; a `waitlist` appointment waits for a slot and holds
none.
"""

from __future__ import annotations

from typing import Any

from app.search.extract import parse_reference

TENTATIVE = frozenset({"proposed", "pending"})
HOLDING = TENTATIVE | {"booked", "arrived", "checked-in", "fulfilled", "noshow"}
# The Slot statuses a hold sets, and so the only ones a release turns back into `free`.
HELD = frozenset({"busy", "busy-tentative"})
# Slots nobody may book: the agenda closed that time, or the slot is a mistake.
UNBOOKABLE = frozenset({"busy-unavailable", "entered-in-error"})

Resource = dict[str, Any]


def held_slots(appointment: Resource | None, local_base: str) -> dict[str, int]:
    """The local Slots an appointment holds: id → its index in `Appointment.slot`."""
    if appointment is None or appointment.get("status") not in HOLDING:
        return {}
    held: dict[str, int] = {}
    for index, item in enumerate(appointment.get("slot") or []):
        reference = item.get("reference") if isinstance(item, dict) else None
        if not isinstance(reference, str):
            continue
        target_type, target_id, url = parse_reference(reference, local_base)
        if target_type == "Slot" and target_id and url is None:
            held.setdefault(target_id, index)
    return held


def slot_status(appointment: Resource) -> str:
    """The status of a Slot held by this appointment."""
    return "busy-tentative" if appointment.get("status") in TENTATIVE else "busy"
