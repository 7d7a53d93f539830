"""The worker's side of availability rules: derive the slots of the queued Schedules.

Each Schedule is derived in its own transaction, its queue row locked (`SKIP LOCKED`: two
workers never derive the same Schedule at once) and set due again one day later, so that
the horizon rolls on. The slots are written through the repository like any write
(validated, versioned, indexed, projected for SAS, audited, notified), as the server's own
writes (`server_made`), re-checked under their row lock: a slot booked meanwhile is left
to its appointment.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update

from app.clock import utc_now
from app.gap.availability import read_availability
from app.gap.derive import FREE, Plan, is_derived, plan, wanted_slots
from app.gap.rules import booked_actors, has_rules, queue
from app.outcome import FhirError
from app.scheduling.holds import HOLDING
from app.scheduling.overlap import held_span
from app.search.api import find, one_of
from app.search.sql import SqlContext
from app.state import AppState
from app.storage.repository import Repository
from app.storage.schema import gap_derivation

log = logging.getLogger(__name__)
AUTHOR = "gap-availability-rules"
ROLL_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class Derived:
    schedule_id: str
    created: int
    updated: int
    deleted: int
    kept: int
    ruled: bool  # the Schedule still has rules: derive it again as the horizon moves on


def derive_schedule(repo: Repository, schedule_id: str, now: datetime | None = None) -> Derived:
    """Bring the derived slots of one Schedule from now to the horizon in line with its
    rules (none when it is deleted, inactive or has no rules left)."""
    settings = repo.settings
    zone = ZoneInfo(settings.default_timezone)
    low = (now or utc_now()).replace(tzinfo=UTC)
    high = low + timedelta(days=settings.gap_horizon_days)
    stored = repo.find("Schedule", schedule_id)
    schedule = stored.as_dict() if stored is not None and not stored.deleted else None
    ruled = schedule is not None and has_rules(schedule)
    wanted: dict[str, Any] = {}
    if schedule is not None and ruled:
        wanted = wanted_slots(schedule, read_availability(schedule, zone), zone, low, high,
                              settings.gap_default_slot_minutes,
                              _taken(repo, schedule, low, high))
    changes = plan(wanted, _derived_from(repo, schedule_id, low))
    cause = (f"fhir-agenda availability rules (Schedule/{schedule_id}/_history/"
             f"{stored.version})" if stored is not None else "fhir-agenda availability rules")
    _apply(repo, changes, cause)
    return Derived(schedule_id, len(changes.create), len(changes.update), len(changes.delete),
                   changes.kept, ruled)


def _derived_from(repo: Repository, schedule_id: str, low: datetime) -> list[dict[str, Any]]:
    """The Schedule's derived slots that start at `low` or later. Selected by Schedule only
    and filtered here: with the tag and the date, both databases' planners chose a range
    scan over every derived slot (6 to 10 times slower at 600,000 slots)."""
    found = []
    for stored in find(repo.conn, "Slot", [("schedule", f"Schedule/{schedule_id}")]):
        slot = stored.as_dict()
        start = slot.get("start")
        if is_derived(slot) and isinstance(start, str) and \
                datetime.fromisoformat(start.replace("Z", "+00:00")) >= low:
            found.append(slot)
    return found


def _taken(repo: Repository, schedule: dict[str, Any], low: datetime,
           high: datetime) -> list[tuple[datetime, datetime]]:
    """The time of the live appointments of the agenda's people and devices that book no
    slot (declared by participants only): the rules' slots give way to it."""
    actors = booked_actors(schedule.get("actor") or [], repo.settings.fhir_base_url)
    if not actors:
        return []
    taken = []
    context = SqlContext(repo.settings.default_timezone, repo.settings.fhir_base_url)
    for appointment in find(repo.conn, "Appointment", [
            ("actor", one_of(actors)), ("status", one_of(sorted(HOLDING))),
            ("date", "lt" + high.isoformat(timespec="seconds")),
            # Appointments are hours long, not days: those started a day before are enough.
            ("date", "ge" + (low - timedelta(days=1)).isoformat(timespec="seconds"))],
            context=context):
        resource = appointment.as_dict()
        span = None if resource.get("slot") else held_span(resource, repo.settings.default_timezone)
        if span is not None and span[1].replace(tzinfo=UTC) > low:
            taken.append((span[0].replace(tzinfo=UTC), span[1].replace(tzinfo=UTC)))
    return taken


def _apply(repo: Repository, changes: Plan, cause: str) -> None:
    # Every slot concerned locked and read in one statement; each decision is then taken
    # on what is current: a slot booked since it was planned is left to its appointment.
    repo.prefetch(("Slot", sid) for sid in [*(s["id"] for s in changes.create),
                                            *(s["id"] for s in changes.update),
                                            *changes.delete])
    for slot in changes.create:
        current = repo.find("Slot", slot["id"], lock=True)
        if current is None or current.deleted:  # else a client's slot of that id: theirs
            repo.update("Slot", slot["id"], slot, server_made=cause)
    for slot in changes.update:
        if _free(repo, slot["id"]):
            repo.update("Slot", slot["id"], slot, server_made=cause)
    for slot_id in changes.delete:
        if _free(repo, slot_id):
            repo.delete("Slot", slot_id)


def _free(repo: Repository, slot_id: str) -> bool:
    current = repo.find("Slot", slot_id, lock=True)
    return current is not None and not current.deleted and \
        current.as_dict().get("status") == FREE


def derive_due(state: AppState, *, budget_seconds: float = 1.0, limit: int | None = None) -> int:
    """Derive the Schedules that are due, one transaction each, for about `budget_seconds`
    (the delivery loop waits meanwhile) or `limit` Schedules. Returns how many."""
    done = 0
    ends = time.monotonic() + budget_seconds
    while (limit is None or done < limit) and time.monotonic() < ends:
        with state.writing(AUTHOR) as repo:
            schedule_id = _claim(repo)
            if schedule_id is None:
                return done
            try:
                result = derive_schedule(repo, schedule_id)
            except FhirError as problem:  # rules stored before a stricter check
                log.warning("Schedule/%s: availability rules not derived: %s", schedule_id,
                            problem)
                _forget(repo, schedule_id)
                continue
            _reschedule(repo, schedule_id, result.ruled)
        done += 1
        log.info("slots derived", extra={"fields": {
            "event": "gap-derivation", "schedule": schedule_id, "created": result.created,
            "updated": result.updated, "deleted": result.deleted, "kept": result.kept}})
    return done


def _claim(repo: Repository) -> str | None:
    query = (select(gap_derivation.c.schedule_id)
             .where(gap_derivation.c.due_at <= utc_now())
             .order_by(gap_derivation.c.due_at).limit(1)
             .with_for_update(skip_locked=True))
    return repo.conn.execute(query).scalar()


def _reschedule(repo: Repository, schedule_id: str, ruled: bool) -> None:
    if not ruled:
        _forget(repo, schedule_id)
        return
    repo.conn.execute(update(gap_derivation)
                      .where(gap_derivation.c.schedule_id == schedule_id)
                      .values(due_at=utc_now() + ROLL_EVERY))


def _forget(repo: Repository, schedule_id: str) -> None:
    repo.conn.execute(delete(gap_derivation).where(gap_derivation.c.schedule_id == schedule_id))


def queue_all(state: AppState) -> int:
    """Queue every Schedule that has availability rules (after a change of horizon or of
    slot length in the settings). Returns how many."""
    with state.writing(AUTHOR) as repo:
        ids = [stored.resource_id for stored in find(repo.conn, "Schedule", [])
               if has_rules(stored.as_dict())]
        for schedule_id in ids:
            queue(repo, schedule_id)
    return len(ids)
