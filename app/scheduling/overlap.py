"""The overlap rule: a practitioner, a role or a device is in one appointment at a time.

An appointment that holds time (app/scheduling/holds.py: `proposed` … `noshow`) is refused
with 409 Conflict when another live holding appointment of one of its busy actors overlaps
its [start, end) — unless a Schedule of that actor allows overbooking. Busy actors are the
participants that are a Practitioner, a PractitionerRole or a Device: a Location or a
HealthcareService hosts parallel appointments, and a Patient's double booking is the
requester's business. A participant that declined, is `information-only`, or is the
operator who entered the appointment (FR Core's appointmentOperator slice, type ENT) is not
busy.

Overbooking has no element in FHIR R4 or FR Core: a Schedule says it with this server's
extension `OVERBOOKING_URL` (valueBoolean true), for every actor of that Schedule.

Checked once per unit of work in `before_commit` (a transaction Bundle may move two
appointments past each other: only the end state counts), after the booking rule (a slot
conflict is the more precise answer), and only for what a write newly occupies — a change of
comment or status within the same time leaves alone an overlap an agenda allowed before.
The busy actors' rows are locked in id order first, so that two writers of overlapping
appointments of one actor take turns and the second one sees the first (PostgreSQL, READ
COMMITTED; SQLite writers are serialised by BEGIN IMMEDIATE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.clock import format_instant
from app.outcome import Conflict
from app.scheduling.holds import HOLDING
from app.search.api import find, one_of
from app.search.dates import InvalidDate, parse_range
from app.search.extract import parse_reference
from app.search.sql import SqlContext
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.repository import Repository, Stored

OVERBOOKING_URL = "https://fhir-agenda.example.org/StructureDefinition/schedule-overbooking"
BUSY_TYPES = frozenset({"Practitioner", "PractitionerRole", "Device"})
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# Appointment.end has no search parameter in R4 (`date` is `start`): the query looks this far
# back for appointments that started earlier and may still run. Longer ones are not seen.
LONGEST = timedelta(days=1)
UNIT_KEY = "scheduling:overlap"

Resource = dict[str, Any]
Actor = tuple[str, str]  # (type, id) of a local resource


@dataclass(frozen=True)
class _Holding:
    """The time a version of an appointment holds, and for which busy actors."""

    start: datetime
    end: datetime
    start_text: str
    end_text: str
    actors: dict[Actor, int]  # actor → index of its participant


@dataclass
class _Written:
    """What the appointments a unit of work wrote held before the unit, and hold now (not
    the resources: a bulk load writes many in one unit)."""

    before: dict[str, _Holding | None] = field(default_factory=dict)
    now: dict[str, _Holding | None] = field(default_factory=dict)


@dataclass(frozen=True)
class _Claim:
    """Time an appointment newly occupies for some of its busy actors."""

    appointment_id: str
    holding: _Holding
    actors: dict[Actor, int]


class OverlapRule(Interceptor):
    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type != "Appointment":
            return
        written = repo.memo(UNIT_KEY, _Written)
        tz, base = repo.settings.default_timezone, repo.settings.fhir_base_url
        if event.resource_id not in written.before:
            previous = event.previous
            written.before[event.resource_id] = None if previous is None or previous.deleted \
                else _holding(previous.as_dict(), tz, base)
        written.now[event.resource_id] = _holding(event.resource, tz, base)

    def before_commit(self, repo: Repository) -> None:
        written = repo.memo(UNIT_KEY, _Written)
        claims = [claim for appointment_id, holding in sorted(written.now.items())
                  if (claim := _claim(appointment_id, holding,
                                      written.before.get(appointment_id)))]
        if not claims:
            return
        actors = sorted({actor for claim in claims for actor in claim.actors})
        # Row locks on the actors, in id order: a concurrent writer of the same actors waits
        # for our commit, then its query below sees our appointments.
        repo.prefetch(actors)
        groups: dict[frozenset[Actor], list[_Claim]] = {}
        for claim in claims:
            groups.setdefault(frozenset(claim.actors), []).append(claim)
        context = SqlContext(repo.settings.default_timezone, repo.settings.fhir_base_url)
        for group_actors, group in groups.items():
            for claim, other, actor in _overlaps(repo, group_actors, group, context):
                if not _overbooking(repo, actor, context):
                    raise _conflict(claim, other, actor)


def _claim(appointment_id: str, now: _Holding | None, before: _Holding | None
           ) -> _Claim | None:
    """What this appointment occupies now that it did not before the unit."""
    if now is None:
        return None
    actors = now.actors
    # Already held over a time that covers the new one: nothing new for those actors.
    if before is not None and before.start <= now.start and now.end <= before.end:
        actors = {actor: index for actor, index in actors.items()
                  if actor not in before.actors}
    return _Claim(appointment_id, now, actors) if actors else None


def _holding(resource: Resource | None, tz: str, base: str) -> _Holding | None:
    """The [start, end) a holding appointment takes and its busy actors; None when it holds
    no time (a request may come without times: R4 lets a proposed appointment have none)."""
    span = held_span(resource, tz)
    if resource is None or span is None:
        return None
    return _Holding(span[0], span[1], str(resource["start"]), str(resource["end"]),
                    busy_actors(resource, base))


def held_span(resource: Resource | None, tz: str) -> tuple[datetime, datetime] | None:
    """The [start, end) (naive UTC) an appointment holds, or None when it holds no time."""
    if resource is None or resource.get("status") not in HOLDING:
        return None
    start, end = resource.get("start"), resource.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        span = parse_range(start, tz)[0], parse_range(end, tz)[0]
    except InvalidDate:
        return None  # the validation answers for it
    return span if span[0] < span[1] else None


def busy_actors(resource: Resource, base: str) -> dict[Actor, int]:
    """The local Practitioner, PractitionerRole and Device participants that take part."""
    actors: dict[Actor, int] = {}
    for index, participant in enumerate(resource.get("participant") or []):
        if not isinstance(participant, dict) or not _attends(participant):
            continue
        reference = (participant.get("actor") or {}).get("reference")
        if not isinstance(reference, str):
            continue
        target_type, target_id, url = parse_reference(reference, base)
        if target_type in BUSY_TYPES and target_id and url is None:
            actors.setdefault((target_type, target_id), index)
    return actors


def _attends(participant: Resource) -> bool:
    if participant.get("status") == "declined" or participant.get("required") == \
            "information-only":
        return False
    return not any(coding.get("system") == PARTICIPATION_TYPE and coding.get("code") == "ENT"
                   for kind in participant.get("type") or [] if isinstance(kind, dict)
                   for coding in kind.get("coding") or [] if isinstance(coding, dict))


def _overlaps(repo: Repository, actors: frozenset[Actor], claims: list[_Claim],
              context: SqlContext) -> list[tuple[_Claim, Stored, Actor]]:
    """Each claim's overlaps with other live holding appointments of its actors, from one
    query over the claims' time window (`date` is coarse: the overlap is decided here)."""
    earliest = min(claim.holding.start for claim in claims) - LONGEST
    latest = max((claim.holding for claim in claims), key=lambda holding: holding.end)
    found = find(repo.conn, "Appointment", [
        ("actor", one_of(f"{kind}/{ident}" for kind, ident in sorted(actors))),
        ("status", one_of(sorted(HOLDING))),
        ("date", f"lt{latest.end_text}"), ("date", f"ge{format_instant(earliest)}")],
        context=context)
    overlaps = []
    for other in found:
        held = _holding(other.as_dict(), context.default_tz, context.local_base)
        if held is None:
            continue
        for claim in claims:
            mine = claim.holding
            if other.resource_id != claim.appointment_id and mine.start < held.end \
                    and held.start < mine.end:
                overlaps.extend((claim, other, actor) for actor in claim.actors
                                if actor in held.actors)
    return overlaps


def _overbooking(repo: Repository, actor: Actor, context: SqlContext) -> bool:
    """Does an active Schedule of this actor (alone or with others) allow overbooking?"""
    allowed: dict[Actor, bool] = repo.memo(f"{UNIT_KEY}:overbooking", dict)
    if actor not in allowed:
        schedules = find(repo.conn, "Schedule", [("actor", f"{actor[0]}/{actor[1]}")],
                         context=context)
        allowed[actor] = any(
            schedule.get("active") is not False and any(
                extension.get("url") == OVERBOOKING_URL
                and extension.get("valueBoolean") is True
                for extension in schedule.get("extension") or [])
            for schedule in (stored.as_dict() for stored in schedules))
    return allowed[actor]


def _conflict(claim: _Claim, other: Stored, actor: Actor) -> Conflict:
    resource, mine = other.as_dict(), claim.holding
    name = f"{actor[0]}/{actor[1]}"
    return Conflict(
        f"{name} already has Appointment/{other.resource_id} from {resource.get('start')} "
        f"to {resource.get('end')}: Appointment/{claim.appointment_id} "
        f"({mine.start_text} to {mine.end_text}) overlaps it, and no Schedule of {name} "
        f"allows overbooking (extension {OVERBOOKING_URL}); nothing was written",
        expression=[f"Appointment.participant[{claim.actors[actor]}]"])
