"""Keep `sas_sos_place` exact: the SOS Médecins fixed consultation places, pre-shaped, and
the SOS shape of their slots (`sas_slot.sos`).

Runs as a repository interceptor, so the projection commits or rolls back with the write. A
write of a Schedule, Location or Organization recomputes, with the rules of
app/sas/sos_places.py, every Schedule whose place may read that resource; a Schedule that
becomes a place (or stops being one) gets the SOS shape of its slots (or loses it).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from app.sas.place_rules import contents
from app.sas.slot_projection import sos_fragment
from app.sas.sos_places import SosPlaces
from app.search.api import referring
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.references import chunks
from app.storage.repository import Repository
from app.storage.scan import scan
from app.storage.schema import resources, sas_slot, sas_sos_place

WATCHED = frozenset({"Schedule", "Location", "Organization"})


def _published(conn: Connection, column: Any, ids: set[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(ids):
        found.update(conn.execute(select(sas_sos_place.c.schedule_id).where(
            column.in_(chunk))).scalars())
    return found


def affected(conn: Connection, events: list[WriteEvent]) -> set[str]:
    """The Schedules whose SOS place may change with these writes (those naming the
    resources now, and those published from them before): one round of queries for all."""
    written: dict[str, set[str]] = {kind: set() for kind in WATCHED}
    for event in events:
        written[event.resource_type].add(event.resource_id)
    locations = written["Location"] | (referring(
        conn, "Location", "organization", {"Organization": written["Organization"]})
        if written["Organization"] else set())
    found = referring(conn, "Schedule", "actor", {"Location": locations}) if locations else set()
    return (written["Schedule"] | found
            | _published(conn, sas_sos_place.c.location_id, written["Location"])
            | _published(conn, sas_sos_place.c.organization_id, written["Organization"]))


def refresh_slots(conn: Connection, schedule_ids: set[str], tz: str) -> None:
    """Give the slots of these Schedules their SOS shape, or take it away, as each Schedule
    is an SOS place or not."""
    places = _published(conn, sas_sos_place.c.schedule_id, schedule_ids)
    for chunk in chunks(schedule_ids - places):
        conn.execute(update(sas_slot).where(sas_slot.c.schedule_id.in_(chunk))
                     .values(sos=None))
    for chunk in chunks(places):
        rows = conn.execute(select(sas_slot.c.slot_pk, sas_slot.c.schedule_id,
                                   resources.c.content)
                            .join(resources, resources.c.pk == sas_slot.c.slot_pk)
                            .where(sas_slot.c.schedule_id.in_(chunk))).all()
        for pk, schedule_id, content in rows:
            conn.execute(update(sas_slot).where(sas_slot.c.slot_pk == pk).values(
                sos=sos_fragment(orjson.loads(content), schedule_id, tz)))


def refresh(conn: Connection, places: SosPlaces, schedule_ids: set[str], tz: str) -> None:
    """Recompute the rows of these Schedules from the stored resources."""
    before = _published(conn, sas_sos_place.c.schedule_id, schedule_ids)
    for chunk in chunks(schedule_ids):
        conn.execute(delete(sas_sos_place).where(sas_sos_place.c.schedule_id.in_(chunk)))
        rows = places.rows(conn, contents(conn, "Schedule", set(chunk)))
        if rows:
            conn.execute(insert(sas_sos_place), rows)
    after = _published(conn, sas_sos_place.c.schedule_id, schedule_ids)
    refresh_slots(conn, before ^ after, tz)


PENDING = "sas:sos-places"


class SasSosProjection(Interceptor):
    """Collects the writes of a unit and recomputes the SOS places they touch once, before
    the unit commits (a bulk load of thousands of Schedules: one round, not one each)."""

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type not in WATCHED or event.stored is None:
            return
        repo.defer_batch(PENDING, event, lambda events: _project(repo, events))


def _project(repo: Repository, events: list[WriteEvent]) -> None:
    settings = repo.settings
    places = SosPlaces(settings.fhir_base_url, settings.local_identifier_system)
    conn = repo.conn
    refresh(conn, places, affected(conn, events), settings.default_timezone)


def rebuild(conn: Connection, local_base: str, local_identifier_system: str,
            batch_size: int = 2000) -> int:
    """Recompute the places (migrations, reindex; before the slots, whose SOS shape reads
    them); returns the number of places."""
    places = SosPlaces(local_base, local_identifier_system)
    conn.execute(delete(sas_sos_place))
    count = 0
    for batch in scan(conn, ("Schedule",), batch_size):
        rows = places.rows(conn, {r.resource_id: orjson.loads(r.content) for r in batch})
        if rows:
            conn.execute(insert(sas_sos_place), rows)
            count += len({row["schedule_id"] for row in rows})
    return count
