"""Which Schedule is a published SAS practice place, of whom, where: the one implementation.

A Schedule is a practice place when it names (directly, or through the practitioner and a
Location) an active PractitionerRole of an active, non-regulator Practitioner, and the
place has a usable address. Used by the `sas_place` projection (app/sas/places.py), its
rebuild, and the benchmark generator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, select

from app.identifiers import IDNPS_SYSTEM, idnps
from app.sas import shape
from app.sas.regulators import is_regulator
from app.search.extract import parse_reference
from app.storage.references import chunks
from app.storage.schema import resources, search_reference

log = logging.getLogger(__name__)

Resource = dict[str, Any]


def local_refs(references: Iterable[Any] | None, target_type: str, base: str) -> list[str]:
    """Ids of the references to `target_type` on this server, in order."""
    found = []
    for reference in references or []:
        text = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(text, str):
            continue
        kind, target_id, url = parse_reference(text, base)
        if kind == target_type and target_id and url is None:
            found.append(target_id)
    return found


def active(resource: Resource | None) -> bool:
    return resource is not None and resource.get("active", True) is not False


def owner(role: Resource, base: str) -> str | None:
    owners = local_refs([role.get("practitioner") or {}], "Practitioner", base)
    return owners[0] if owners else None


@dataclass
class Sources:
    """The stored (not deleted) resources place resolution reads, by id."""

    schedules: dict[str, Resource] = field(default_factory=dict)
    practitioners: dict[str, Resource] = field(default_factory=dict)
    roles: dict[str, Resource] = field(default_factory=dict)
    locations: dict[str, Resource] = field(default_factory=dict)
    organizations: dict[str, Resource] = field(default_factory=dict)
    roles_of: dict[str, list[str]] = field(default_factory=dict)  # practitioner → role ids


@dataclass(frozen=True)
class Place:
    """One practice place: the Schedule, its practitioner and PractitionerRole."""

    schedule_id: str
    practitioner_id: str
    role_id: str


class PlaceRules:
    def __init__(self, base: str, local_identifier_system: str, warn: bool = True) -> None:
        self.base = base
        self.location_system = local_identifier_system + "/location"
        self.warn = warn  # bulk rebuilds count instead of logging each place

    def _publishable(self, sources: Sources, practitioner_id: str | None) -> bool:
        person = sources.practitioners.get(practitioner_id or "")
        # Regulator accounts share national ids with agendas but are never effectors.
        return active(person) and not is_regulator(person)

    def _usable_role(self, sources: Sources, role_id: str) -> bool:
        role = sources.roles.get(role_id)
        return active(role) and self._publishable(sources, owner(role or {}, self.base))

    def place(self, sources: Sources, schedule_id: str) -> Place | None:
        schedule = sources.schedules.get(schedule_id)
        if not active(schedule):
            return None
        actors = (schedule or {}).get("actor")
        role_ids = [r for r in local_refs(actors, "PractitionerRole", self.base)
                    if self._usable_role(sources, r)]
        practitioner_ids = [p for p in local_refs(actors, "Practitioner", self.base)
                            if self._publishable(sources, p)]
        if not role_ids and practitioner_ids:
            role_ids = self._role_for(sources, practitioner_ids[0], actors)
        for role_id in role_ids[:1]:
            person = owner(sources.roles[role_id], self.base)
            if person is not None and self._publishable(sources, person):
                return Place(schedule_id, person, role_id)
        return None

    def _role_for(self, sources: Sources, practitioner_id: str,
                  actors: list[Resource] | None) -> list[str]:
        """A Schedule naming only the practitioner: the role at the Schedule's Location,
        else the practitioner's only role."""
        own = sorted(r for r in sources.roles_of.get(practitioner_id, [])
                     if active(sources.roles.get(r))
                     and owner(sources.roles[r], self.base) == practitioner_id)
        locations = set(local_refs(actors, "Location", self.base))
        at_location = [r for r in own if locations & set(
            local_refs(sources.roles[r].get("location"), "Location", self.base))]
        if at_location:
            return at_location[:1]
        return own[:1] if len(own) == 1 else []

    def location(self, sources: Sources, place: Place) -> Resource | None:
        """The contained Location: the first of the role's, then the Schedule's, with an
        address."""
        candidates = (local_refs(sources.roles[place.role_id].get("location"), "Location",
                                 self.base)
                      + local_refs(sources.schedules[place.schedule_id].get("actor"),
                                   "Location", self.base))
        for location_id in candidates:
            stored = sources.locations.get(location_id)
            shaped = shape.location(stored, location_id, self.location_system) if (
                stored) else None
            if shaped is not None:
                return shaped
        if self.warn:
            log.warning("Practice place %s has no address: its slots are not published to "
                        "SAS", place.role_id)
        return None

    def rows(self, sources: Sources, schedule_id: str) -> list[dict[str, Any]]:
        """The `sas_place` rows of a Schedule: one per prefixed national id, or none."""
        place = self.place(sources, schedule_id)
        if place is None:
            return []
        location = self.location(sources, place)
        if location is None:
            return []
        role = sources.roles[place.role_id]
        organization_ids = local_refs([role.get("organization") or {}], "Organization",
                                      self.base)
        organization = sources.organizations.get(organization_ids[0]) if (
            organization_ids) else None
        person = sources.practitioners[place.practitioner_id]
        shaped = {
            "schedule_id": place.schedule_id,
            "practitioner_id": place.practitioner_id,
            "role_id": place.role_id,
            "practitioner": orjson.dumps(shape.practitioner(person)).decode(),
            "role": orjson.dumps(shape.practitioner_role(
                role, place.practitioner_id, location, organization)).decode(),
            "schedule": orjson.dumps(shape.schedule(
                place.schedule_id, place.practitioner_id, place.role_id)).decode(),
        }
        return [{"idnps": key, **shaped} for key in national_ids(person)]

    # -- loading ------------------------------------------------------------------------

    def load(self, conn: Connection, schedules: dict[str, Resource]) -> Sources:
        """Everything the rules read for these Schedules, in five statements."""
        sources = Sources(schedules=schedules)
        actors = [a for s in schedules.values() for a in s.get("actor") or []]
        named = set(local_refs(actors, "Practitioner", self.base))
        sources.roles_of = roles_of(conn, named)
        sources.roles = contents(conn, "PractitionerRole", set(
            local_refs(actors, "PractitionerRole", self.base)).union(
            *sources.roles_of.values()))
        roles = list(sources.roles.values())
        sources.practitioners = contents(conn, "Practitioner", named | {
            o for r in roles if (o := owner(r, self.base))})
        sources.locations = contents(conn, "Location", set(
            local_refs(actors, "Location", self.base)
            + local_refs([x for r in roles for x in r.get("location") or []], "Location",
                         self.base)))
        sources.organizations = contents(conn, "Organization", set(local_refs(
            [r.get("organization") or {} for r in roles], "Organization", self.base)))
        return sources


def national_ids(person: Resource) -> list[str]:
    """The prefixed IDNPS a SAS search may name this practitioner by."""
    return sorted({idnps(str(i["value"])) for i in person.get("identifier") or []
                   if isinstance(i, dict) and i.get("system") == IDNPS_SYSTEM
                   and i.get("value")})


def contents(conn: Connection, resource_type: str, ids: set[str]) -> dict[str, Resource]:
    found: dict[str, Resource] = {}
    for chunk in chunks(ids):
        query = select(resources.c.res_id, resources.c.content).where(
            resources.c.res_type == resource_type, resources.c.deleted.is_(False),
            resources.c.res_id.in_(chunk))
        found.update((i, orjson.loads(c)) for i, c in conn.execute(query))
    return found


def roles_of(conn: Connection, practitioner_ids: set[str]) -> dict[str, list[str]]:
    index = search_reference
    found: dict[str, list[str]] = {}
    for chunk in chunks(practitioner_ids):
        query = select(index.c.target_id, resources.c.res_id).join(
            resources, resources.c.pk == index.c.res_pk).where(
            index.c.res_type == "PractitionerRole", index.c.param == "practitioner",
            index.c.url.is_(None), index.c.target_type == "Practitioner",
            index.c.target_id.in_(chunk), resources.c.deleted.is_(False))
        for practitioner_id, role_id in conn.execute(query):
            found.setdefault(practitioner_id, []).append(role_id)
    return found
