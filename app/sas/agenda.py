"""One agenda as SAS sees it: the practice place of a Schedule (a practitioner's, or an SOS
Médecins association's fixed place) and its SAS-visible free slots of a window, read through
the SAS searches themselves (same projections, same rules), for the booking page SAS's
links open (`Slot.comment`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select

from app.sas.aggregator import SasAggregator
from app.sas.request import SasSearch
from app.sas.sos_answer import SosAnswer
from app.sas.sos_request import SosSearch
from app.storage.repository import Repository
from app.storage.schema import sas_place, sas_slot, sas_sos_place

Resource = dict[str, Any]


@dataclass(frozen=True)
class PublishedAgenda:
    """A practitioner's practice place (individual offer), or a fixed consultation place of
    an SOS Médecins association; its slots in the SAS shapes, Europe/Paris times, by start."""

    schedule_id: str
    slots: list[Resource]
    practitioner: Resource | None = None  # FrPractitionerAgregateur
    role: Resource | None = None  # FrPractitionerRoleExerciceAgregateur, the place contained
    location: Resource | None = None  # SOS: sas-sos-location-aggregator
    organization: Resource | None = None  # SOS: the association

    @property
    def place(self) -> Resource | None:
        if self.location is not None:
            return self.location
        return next(iter((self.role or {}).get("contained") or []), None)

    @property
    def participant(self) -> str:
        """Who the appointment is with: the practitioner, or the SOS place (the doctor on
        duty is named later by the association)."""
        if self.practitioner is not None:
            return f"Practitioner/{self.practitioner['id']}"
        return f"Location/{(self.location or {})['id']}"


def published_agenda(repo: Repository, schedule_id: str, low: datetime,
                     high: datetime) -> PublishedAgenda | None:
    """The agenda of this Schedule with its slots starting in [low, high] (UTC), or None
    when SAS does not see this Schedule (no published place of either offer)."""
    national_id = repo.conn.execute(select(sas_place.c.idnps).where(
        sas_place.c.schedule_id == schedule_id).limit(1)).scalar()
    if national_id is None:
        return _sos_agenda(repo, schedule_id, low, high)
    places, slots = SasAggregator(repo).search(SasSearch((national_id,), low, high))
    place = next((p for p in places if p.schedule_id == schedule_id), None)
    if place is None:
        return None
    return PublishedAgenda(schedule_id, [orjson.loads(s.fragment) for s in slots
                                         if s.schedule_id == schedule_id],
                           practitioner=orjson.loads(place.practitioner),
                           role=orjson.loads(place.role))


def _sos_agenda(repo: Repository, schedule_id: str, low: datetime,
                high: datetime) -> PublishedAgenda | None:
    siret = repo.conn.execute(select(sas_sos_place.c.siret).where(
        sas_sos_place.c.schedule_id == schedule_id).limit(1)).scalar()
    if siret is None:
        return None
    places, slots = SosAnswer(repo).search(SosSearch((siret,), low, high))
    place = next((p for p in places if p[2] == schedule_id), None)
    if place is None:
        return None
    return PublishedAgenda(schedule_id, [orjson.loads(s.fragment) for s in slots
                                         if s.schedule_id == schedule_id],
                           location=orjson.loads(place[6]),
                           organization=orjson.loads(place[7]))


def is_offered(repo: Repository, schedule_id: str, slot_id: str) -> bool:
    """Whether SAS may still see this slot of this Schedule (free, SAS-visible)."""
    return repo.conn.execute(select(sas_slot.c.slot_pk).where(
        sas_slot.c.slot_id == slot_id, sas_slot.c.schedule_id == schedule_id)).first() is not None
