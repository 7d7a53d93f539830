"""Keep `sas_place` exact: the published practice places, pre-shaped for the SAS search.

Runs as a repository interceptor, so the projection commits or rolls back with the write.
A write of a Schedule, PractitionerRole, Practitioner, Location or Organization recomputes,
with the rules of app/sas/place_rules.py, every Schedule whose place may read that resource.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from app.sas.place_rules import PlaceRules, contents, owner, roles_of
from app.search.api import referring
from app.storage.hooks import Interceptor, WriteEvent
from app.storage.references import CHUNK, chunks
from app.storage.repository import Repository
from app.storage.scan import scan
from app.storage.schema import sas_place

PENDING = "sas:places"
WATCHED = frozenset({"Schedule", "PractitionerRole", "Practitioner", "Location",
                     "Organization"})


def affected(conn: Connection, base: str, events: list[WriteEvent]) -> set[str]:
    """The Schedules whose place may change with these writes (the stored state is already
    the new one; a previous version tells where a changed reference pointed before). One
    round of queries for all of them: a bulk load's writes are looked at together."""
    schedules: set[str] = set()
    practitioners: set[str] = set()
    roles: set[str] = set()
    locations: set[str] = set()
    organizations: set[str] = set()
    for event in events:
        kind, resource_id = event.resource_type, event.resource_id
        if kind == "Schedule":
            schedules.add(resource_id)
        elif kind == "Practitioner":
            practitioners.add(resource_id)
        elif kind == "PractitionerRole":
            roles.add(resource_id)
            versions = (event.previous.as_dict() if event.previous else {},
                        event.resource or {})
            practitioners.update(o for v in versions if (o := owner(v, base)))
        elif kind == "Location":
            locations.add(resource_id)
        else:  # an Organization: the structure of roles, or of Locations it manages
            organizations.add(resource_id)
    if organizations:
        roles |= referring(conn, "PractitionerRole", "organization",
                           {"Organization": organizations})
        locations |= referring(conn, "Location", "organization",
                               {"Organization": organizations})
    if locations:
        roles |= referring(conn, "PractitionerRole", "location", {"Location": locations})
    # A Schedule may name only the practitioner (its role is then chosen among the
    # practitioner's roles) or only the role (the practitioner is the role's owner).
    practitioners.update(o for r in contents(conn, "PractitionerRole", roles).values()
                         if (o := owner(r, base)))
    roles.update(*roles_of(conn, practitioners, base).values())
    found = referring(conn, "Schedule", "actor", {
        "Practitioner": practitioners, "PractitionerRole": roles, "Location": locations})
    return schedules | found | _published(conn, practitioners, roles, organizations)


def _published(conn: Connection, practitioners: set[str], roles: set[str],
               organizations: set[str]) -> set[str]:
    """Schedules published today for these practitioners, roles or structures (their
    references may have changed since, or be held by contained resources)."""
    found: set[str] = set()
    for column, ids in ((sas_place.c.practitioner_id, practitioners),
                        (sas_place.c.role_id, roles),
                        (sas_place.c.organization_id, organizations)):
        for chunk in chunks(ids):
            found.update(conn.execute(select(sas_place.c.schedule_id).where(
                column.in_(chunk))).scalars())
    return found


def place_rows(conn: Connection, rules: PlaceRules,
               schedules: dict[str, Any]) -> list[dict[str, Any]]:
    sources = rules.load(conn, schedules)
    return [row for schedule_id in sorted(schedules) for row in rules.rows(sources, schedule_id)]


def refresh(conn: Connection, rules: PlaceRules, schedule_ids: set[str]) -> None:
    """Recompute the rows of these Schedules from the stored resources."""
    for chunk in chunks(schedule_ids):
        conn.execute(delete(sas_place).where(sas_place.c.schedule_id.in_(chunk)))
        rows = place_rows(conn, rules, contents(conn, "Schedule", set(chunk)))
        if rows:
            conn.execute(insert(sas_place), rows)


class SasPlaceProjection(Interceptor):
    """Collects the writes of a unit and recomputes the places they touch once, before the
    unit commits (or when a search of the unit needs them: `Repository.settle`)."""

    def after_write(self, repo: Repository, event: WriteEvent) -> None:
        if event.resource_type not in WATCHED or event.stored is None:
            return
        repo.defer_batch(PENDING, event, lambda events: _project(repo, events))


def _project(repo: Repository, events: list[WriteEvent]) -> None:
    settings = repo.settings
    rules = PlaceRules(settings.fhir_base_url, settings.local_identifier_system)
    conn = repo.conn
    refresh(conn, rules, affected(conn, rules.base, events))


def rebuild(conn: Connection, local_base: str, local_identifier_system: str,
            batch_size: int = CHUNK) -> int:
    """Recompute the whole projection from the stored resources (migrations, reindex);
    returns the number of published places."""
    rules = PlaceRules(local_base, local_identifier_system, warn=False)
    conn.execute(delete(sas_place))
    count = 0
    for batch in scan(conn, ("Schedule",), batch_size):
        rows = place_rows(conn, rules, {r.resource_id: orjson.loads(r.content) for r in batch})
        if rows:
            conn.execute(insert(sas_place), rows)
            count += len({row["schedule_id"] for row in rows})
    return count
