"""French labels of what the booking pages show: days, hours, consultation types, places,
names. Read from the SAS shapes (app/sas/agenda.py), so the page shows what SAS shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any

from app.sas import codes

Resource = dict[str, Any]

DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
CONSULTATION = {"AMB": "Au cabinet", "HH": "À domicile", "VR": "Téléconsultation"}
STATUS = {"booked": "Confirmé", "arrived": "Patient arrivé", "checked-in": "Patient arrivé",
          "fulfilled": "Honoré", "noshow": "Non honoré", "cancelled": "Annulé",
          "entered-in-error": "Annulé (erreur)", "pending": "En attente",
          "proposed": "Proposé", "waitlist": "Liste d'attente"}


def day_label(day: date) -> str:
    return f"{DAYS[day.weekday()]} {day.day}{'er' if day.day == 1 else ''} " \
           f"{MONTHS[day.month - 1]} {day.year}"


def local_time(value: str) -> datetime:
    """An instant with its offset, as SAS shapes them (Europe/Paris wall-clock time)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def when(start: str, end: str | None = None) -> str:
    """`lundi 2 novembre 2026, 09:00 – 09:20` in the time zone the value carries."""
    begin = local_time(start)
    text = f"{day_label(begin.date())}, {begin:%H:%M}"
    return f"{text} – {local_time(end):%H:%M}" if end else text


def consultation_types(slot: Resource) -> list[str]:
    found = [CONSULTATION[c["code"]] for concept in slot.get("serviceType") or []
             for c in concept.get("coding") or []
             if c.get("system") == codes.ACT_CODE_SYSTEM and c.get("code") in CONSULTATION]
    return list(dict.fromkeys(found)) or ["Au cabinet"]


def reasons(slot: Resource) -> list[str]:
    """The consultation reasons: the free-text service types (the agenda's motif)."""
    return [c["text"] for c in slot.get("serviceType") or []
            if c.get("text") and not c.get("coding")]


@dataclass(frozen=True)
class SlotView:
    id: str
    start: datetime
    end: datetime
    types: list[str]
    reasons: list[str]
    walk_in: bool  # WALKIN: no appointment needed

    @property
    def hours(self) -> str:
        return f"{self.start:%H:%M} – {self.end:%H:%M}"


def slot_view(slot: Resource) -> SlotView:
    walk_in = any(c.get("code") == "WALKIN"
                  for c in (slot.get("appointmentType") or {}).get("coding") or [])
    return SlotView(slot["id"], local_time(slot["start"]), local_time(slot["end"]),
                    consultation_types(slot), reasons(slot), walk_in)


def by_day(slots: list[Resource]) -> list[tuple[str, list[SlotView]]]:
    views = [slot_view(s) for s in slots]
    return [(day_label(day), list(group))
            for day, group in groupby(views, key=lambda v: v.start.date())]


def person_name(resource: Resource | None) -> str:
    names = (resource or {}).get("name") or []
    if isinstance(names, dict):
        names = [names]
    for name in names:
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family")]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return "—"


def holder(agenda: Any) -> str:
    """Whom the booking is with: the practitioner, or the SOS Médecins association."""
    if agenda.practitioner is not None:
        return person_name(agenda.practitioner)
    return str((agenda.organization or {}).get("name") or "SOS Médecins")


def specialty(role: Resource) -> str | None:
    for concept in role.get("specialty") or []:
        label = concept.get("text") or next(
            (c.get("display") for c in concept.get("coding") or [] if c.get("display")), None)
        if label:
            return str(label)
    return None


def address(place: Resource | None) -> str | None:
    found = (place or {}).get("address") or {}
    if not found:
        return None
    lines = [*(found.get("line") or []), " ".join(
        p for p in (found.get("postalCode"), found.get("city")) if p)]
    return ", ".join(line for line in lines if line)


def phones(role: Resource) -> list[str]:
    return [t["value"] for t in role.get("telecom") or [] if t.get("system") == "phone"]


def french_phone(value: str) -> str:
    """`+33478000001` as the French read it: `04 78 00 00 01` (others as they are)."""
    if value.startswith("+33") and len(value) == 12 and value[1:].isdigit():
        national = "0" + value[3:]
        return " ".join(national[i:i + 2] for i in range(0, 10, 2))
    return value
