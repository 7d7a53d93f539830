"""Keep `sas_slot` in step with Slot writes: the SAS searches read only this table for slots.

Runs as a repository interceptor, so the projection commits or rolls back with the write.
Each row holds the slot shaped for the individual offer, the CPTS offers it is shared with,
and, when its Schedule is an SOS Médecins place, its SOS shape (app/sas/sos_projection.py
keeps that column right when a Schedule becomes, or stops being, such a place).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from app.sas import codes
from app.sas.cpts import shared_with
from app.sas.shape import is_sas_visible, sas_security, slot
from app.search.dates import parse_range
from app.search.extract import parse_reference
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.repository import Repository
from app.storage.scan import scan
from app.storage.schema import sas_slot, sas_sos_place


def sos_fragment(resource: dict[str, Any], schedule_id: str, tz: str) -> str | None:
    """The slot as the SOS Médecins offer shows it, or None when that offer may not see it
    (only public and SAS-dedicated slots are; other labels and codings are left out)."""
    if not sas_security(resource, codes.SOS_SLOT_TYPES):
        return None
    return orjson.dumps(slot(resource, schedule_id, tz, profile=codes.SOS_SLOT_PROFILE,
                             labels=codes.SOS_SLOT_TYPES, consultation_only=True)).decode()


def projection_row(resource: dict[str, Any], pk: int, tz: str, local_base: str, *,
                   sos_place: bool = False) -> dict[str, Any] | None:
    """The `sas_slot` row of a Slot, or None when SAS may not see it; `sos_place`: its
    Schedule is an SOS Médecins place."""
    if not is_sas_visible(resource) or not resource.get("start") or not resource.get("end"):
        return None
    target_type, schedule_id, url = parse_reference(
        (resource.get("schedule") or {}).get("reference", ""), local_base)
    if target_type != "Schedule" or schedule_id is None or url is not None:
        return None
    try:
        start = parse_range(resource["start"], tz)[0]
        fragment = orjson.dumps(slot(resource, schedule_id, tz)).decode()
        sos = sos_fragment(resource, schedule_id, tz) if sos_place else None
    except (OverflowError, ValueError):
        return None  # a date at the edge of the calendar: not a slot anyone can book
    services = shared_with(resource, local_base)
    return {"slot_pk": pk, "slot_id": resource["id"], "schedule_id": schedule_id,
            "start": start, "fragment": fragment,
            "cpts": orjson.dumps(services).decode() if services else None, "sos": sos}


def sos_schedules(conn: Connection, schedule_ids: set[str]) -> set[str]:
    """Those of these Schedules that are SOS Médecins places."""
    if not schedule_ids:
        return set()
    return set(conn.execute(select(sas_sos_place.c.schedule_id).where(
        sas_sos_place.c.schedule_id.in_(sorted(schedule_ids)))).scalars())


def _schedule_of(resource: dict[str, Any], local_base: str) -> str | None:
    target_type, schedule_id, url = parse_reference(
        (resource.get("schedule") or {}).get("reference", ""), local_base)
    return schedule_id if target_type == "Schedule" and url is None else None


PENDING = "sas:slots"


class SasSlotProjection(Interceptor):
    """Stages the rows of the Slots a unit of work wrote, once it has written them all: one
    look-up of their Schedules' SOS places and one statement per table for a whole Bundle."""

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type != "Slot" or event.stored is None:
            return
        repo.defer_batch(PENDING, event, lambda events: _project(repo, events))


def _project(repo: Repository, events: list[WriteEvent]) -> None:
    settings = repo.settings
    latest = {e.stored.pk: e for e in events if e.stored is not None}  # last version wins
    schedules = {s for e in latest.values() if e.resource is not None
                 and (s := _schedule_of(e.resource, settings.fhir_base_url)) is not None}
    sos = sos_schedules(repo.connection_for(sas_sos_place), schedules)
    for pk, event in latest.items():
        if event.previous is not None:  # a new Slot has no row yet
            repo.stage_delete(sas_slot, "slot_pk", pk)
        if event.resource is None:
            continue
        row = projection_row(event.resource, pk, settings.default_timezone,
                             settings.fhir_base_url,
                             sos_place=_schedule_of(event.resource, settings.fhir_base_url)
                             in sos)
        if row is not None:
            repo.stage_insert(sas_slot, row)


def rebuild(conn: Connection, tz: str = "Europe/Paris", local_base: str = "",
            batch_size: int = 5000, only: tuple[str, ...] = ()) -> int:
    """Recompute the projection from the stored Slots (migrations, operators): all of
    them, or (`only`: LIKE patterns on the stored JSON) those that may have changed. Reads
    `sas_sos_place`: rebuild that first."""
    if not only:
        conn.execute(delete(sas_slot))
    places: set[str] | None = None
    count = 0
    for batch in scan(conn, ("Slot",), batch_size, content_like=only):
        if places is None:  # read once, and only when there are slots (early migrations)
            places = set(conn.execute(select(sas_sos_place.c.schedule_id)).scalars())
        if only:
            conn.execute(delete(sas_slot).where(sas_slot.c.slot_pk.in_([r.pk for r in batch])))
        resources = [(row.pk, orjson.loads(row.content)) for row in batch]
        rows = [r for r in (projection_row(
            resource, pk, tz, local_base,
            sos_place=_schedule_of(resource, local_base) in places)
            for pk, resource in resources) if r is not None]
        if rows:
            conn.execute(insert(sas_slot), rows)
            count += len(rows)
    return count
