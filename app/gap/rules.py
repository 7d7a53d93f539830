"""Availability rules on write: a Schedule's rules are checked like the rest of the resource
(a rule that cannot be expanded is a 422, and nothing is written), and a Schedule whose
rules changed is queued for the worker, which derives its slots (app/gap/derivation.py).

Queued in the same transaction as the Schedule's new version: a rule accepted is never
forgotten, even if the worker is down when it is written.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from app.clock import utc_now
from app.gap.availability import AVAILABILITY_URL, DURATION_URL, read_availability
from app.scheduling.overlap import BUSY_TYPES, busy_actors
from app.search.api import find, one_of
from app.search.extract import parse_reference
from app.storage.hooks import Interceptor, Resource, WriteEvent
from app.storage.references import chunks
from app.storage.repository import Repository
from app.storage.schema import gap_derivation

RULE_URLS = (AVAILABILITY_URL, DURATION_URL)
ACTORS_KEY = "gap:appointment-actors"


def has_rules(schedule: Resource | None) -> bool:
    return schedule is not None and any(
        isinstance(e, dict) and e.get("url") in RULE_URLS for e in schedule.get("extension") or [])


def booked_actors(references: list[Any], local_base: str) -> list[str]:
    """`Type/id` of the local actors referenced whose appointments take their time (the
    people and devices of the overlap rule, not places or services)."""
    found: list[str] = []
    for item in references:
        reference = item.get("reference") if isinstance(item, dict) else None
        if isinstance(reference, str):
            kind, target, url = parse_reference(reference, local_base)
            if kind in BUSY_TYPES and target and url is None:
                found.append(f"{kind}/{target}")
    return found


def appointment_actors(appointment: Resource | None, local_base: str) -> list[str]:
    """The busy actors (app/scheduling/overlap.py) of an appointment that takes time without
    booking a slot (a declaration by participants only, GAP flow 6a): their agendas' free
    time shrinks."""
    if appointment is None or appointment.get("slot"):
        return []
    return [f"{kind}/{target}" for kind, target in busy_actors(appointment, local_base)]


def queue(repo: Repository, schedule_id: str) -> None:
    """Derive this Schedule's slots as soon as the worker looks (staged: one statement per
    table for a Bundle of Schedules)."""
    repo.stage_delete(gap_derivation, "schedule_id", schedule_id)
    repo.stage_insert(gap_derivation, {"schedule_id": schedule_id, "due_at": utc_now()})


class AvailabilityRules(Interceptor):
    def before_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type == "Schedule" and has_rules(event.resource):
            assert event.resource is not None
            read_availability(event.resource, ZoneInfo(repo.settings.default_timezone))

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type not in ("Schedule", "Appointment"):
            return
        previous = event.previous.as_dict() if event.previous and not event.previous.deleted \
            else None
        if event.resource_type == "Schedule":
            if has_rules(event.resource) or has_rules(previous):
                queue(repo, event.resource_id)
        elif event.resource_type == "Appointment":
            base = repo.settings.fhir_base_url
            actors = {*appointment_actors(event.resource, base),
                      *appointment_actors(previous, base)}
            if actors:
                pending: set[str] = repo.memo(ACTORS_KEY, set)
                pending |= actors
                repo.defer(ACTORS_KEY, lambda: _queue_agendas_of(repo, pending))


def _queue_agendas_of(repo: Repository, actors: set[str]) -> None:
    """Queue the rule-defined agendas of these actors (one query per 500 actors)."""
    for chunk in chunks(sorted(actors)):
        for schedule in find(repo.conn, "Schedule", [("actor", one_of(chunk))]):
            if has_rules(schedule.as_dict()):
                queue(repo, schedule.resource_id)
    actors.clear()
