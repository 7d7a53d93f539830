"""Which Schedule is a published SAS practice place, of whom, where: the one implementation.

A Schedule is a practice place when it names (directly, or through the practitioner and a
Location) an active PractitionerRole of an active, non-regulator Practitioner, and the
place has a usable address. Used by the `sas_place` projection (app/sas/place_projection.py), its
rebuild, and the benchmark generator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection

from app.identifiers import best_structure_id, logical_structure_id, professional_ids
from app.sas import shape
from app.sas.regulators import is_regulator
from app.search.api import find, one_of
from app.search.extract import parse_reference
from app.storage.references import chunks

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


@dataclass(frozen=True)
class Found:
    """A referenced resource: stored (`key` is its id) or contained (`key` is `#id`, and
    `container` holds it: its own `#…` references resolve there)."""

    key: str
    resource: Resource
    container: Resource | None = None


def resolve(references: Iterable[Any] | None, target_type: str, container: Resource | None,
            stored: dict[str, Resource], base: str) -> list[Found]:
    """The resources of `target_type` these references name, contained ones included."""
    found = []
    for reference in references or []:
        text = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(text, str):
            continue
        if text.startswith("#"):
            inner = contained(container, target_type, text[1:])
            if inner is not None:
                found.append(Found(text, inner, container))
            continue
        for target_id in local_refs([reference], target_type, base):
            if target_id in stored:
                found.append(Found(target_id, stored[target_id]))
    return found


def contained(container: Resource | None, target_type: str, local_id: str) -> Resource | None:
    for inner in (container or {}).get("contained") or []:
        if (isinstance(inner, dict) and inner.get("resourceType") == target_type
                and inner.get("id") == local_id):
            return inner
    return None


class PlaceRules:
    """The SAS rules of a practice place, whatever shape the agenda stored it in: the
    Location referenced or contained (in the PractitionerRole or the Schedule), the structure
    as an Organization (referenced or contained) or a logical identifier on the role or on
    the Location, phones on the Practitioner, the role or the Location."""

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

    def _locations(self, sources: Sources, place: Place) -> list[Found]:
        """The place's Locations, the role's first, then the Schedule's."""
        role = sources.roles[place.role_id]
        schedule = sources.schedules[place.schedule_id]
        return (resolve(role.get("location"), "Location", role, sources.locations, self.base)
                + resolve(schedule.get("actor"), "Location", schedule, sources.locations,
                          self.base))

    def location(self, sources: Sources, place: Place) -> tuple[Found, Resource] | None:
        """The first Location of the place with an address, and its FrLocationAgregateur
        shape (contained in the answer's PractitionerRole)."""
        for found in self._locations(sources, place):
            shaped = shape.location(found.resource, found.key.lstrip("#"),
                                    self.location_system)
            if shaped is not None:
                return found, shaped
        if self.warn:
            log.warning("Practice place %s has no address: its slots are not published to "
                        "SAS", place.role_id)
        return None

    def structure(self, sources: Sources, role: Resource,
                  place: Found) -> tuple[str | None, str | None]:
        """The IDNST of the place's structure, and the id of the stored Organization it was
        read from: the role's organisation, else the Location's managing organisation; each
        an Organization (stored or contained) or a logical identifier."""
        location_container = place.container or place.resource
        for reference, container in ((role.get("organization"), role),
                                     (place.resource.get("managingOrganization"),
                                      location_container)):
            if not isinstance(reference, dict):
                continue
            for organization in resolve([reference], "Organization", container,
                                        sources.organizations, self.base):
                found = best_structure_id(organization.resource.get("identifier") or [])
                if found:
                    stored = None if organization.key.startswith("#") else organization.key
                    return found, stored
            logical = reference.get("identifier")
            found = logical_structure_id(logical) if isinstance(logical, dict) else None
            if found:
                return found, None
        return None, None

    def rows(self, sources: Sources, schedule_id: str) -> list[dict[str, Any]]:
        """The `sas_place` rows of a Schedule: one per prefixed national id, or none."""
        place = self.place(sources, schedule_id)
        if place is None:
            return []
        located = self.location(sources, place)
        if located is None:
            return []
        found, location = located
        role = sources.roles[place.role_id]
        person = sources.practitioners[place.practitioner_id]
        # Phones may be stored on the role, the Location or the practitioner: SAS reads
        # them on the PractitionerRole, so that is where every shape publishes them.
        telecoms = [t for source in (role, found.resource, person)
                    for t in source.get("telecom") or []]
        structure_id, organization_id = self.structure(sources, role, found)
        shaped = {
            "schedule_id": place.schedule_id,
            "practitioner_id": place.practitioner_id,
            "role_id": place.role_id,
            "organization_id": organization_id,
            "practitioner": orjson.dumps(shape.practitioner(person)).decode(),
            "role": orjson.dumps(shape.practitioner_role(
                role, place.practitioner_id, location, structure_id, telecoms)).decode(),
            "schedule": orjson.dumps(shape.schedule(
                place.schedule_id, place.practitioner_id, place.role_id)).decode(),
        }
        return [{"idnps": key, **shaped} for key in national_ids(person)]

    # -- loading ------------------------------------------------------------------------

    def load(self, conn: Connection, schedules: dict[str, Resource]) -> Sources:
        """Everything the rules read for these Schedules, in six statements."""
        sources = Sources(schedules=schedules)
        actors = [a for s in schedules.values() for a in s.get("actor") or []]
        named = set(local_refs(actors, "Practitioner", self.base))
        sources.roles_of = roles_of(conn, named, self.base)
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
        places = [*roles, *sources.locations.values(),
                  *(c for s in (*roles, *schedules.values()) for c in s.get("contained") or []
                    if isinstance(c, dict) and c.get("resourceType") == "Location")]
        sources.organizations = contents(conn, "Organization", set(local_refs(
            [p.get("organization") or p.get("managingOrganization") or {} for p in places],
            "Organization", self.base)))
        return sources


def national_ids(person: Resource) -> list[str]:
    """The prefixed IDNPS a SAS search may name this practitioner by."""
    return professional_ids(person.get("identifier"))


def contents(conn: Connection, resource_type: str, ids: set[str]) -> dict[str, Resource]:
    found: dict[str, Resource] = {}
    for chunk in chunks(ids):
        found.update((s.resource_id, s.as_dict())
                     for s in find(conn, resource_type, [("_id", one_of(chunk))]))
    return found


def roles_of(conn: Connection, practitioner_ids: set[str], base: str) -> dict[str, list[str]]:
    """The PractitionerRoles of these practitioners, by practitioner."""
    found: dict[str, list[str]] = {}
    for chunk in chunks(practitioner_ids):
        wanted = set(chunk)
        criteria = [("practitioner", one_of(chunk, "Practitioner/"))]
        for role in find(conn, "PractitionerRole", criteria):
            practitioner_id = owner(role.as_dict(), base)
            if practitioner_id in wanted:
                found.setdefault(practitioner_id, []).append(role.resource_id)
    return found
