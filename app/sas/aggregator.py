"""Answer the SAS slot search (INT_R01) as a BundleAgregateur, straight from SQL to bytes.

Five small indexed queries find the professionals, their practice places and schedules;
one range scan of `sas_slot` returns pre-shaped slot JSON. The few surrounding resources
are shaped per request, and the Bundle is assembled as bytes without re-parsing slots.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, or_, select, tuple_

from app.identifiers import IDNPS_SYSTEM
from app.sas import codes, shape
from app.sas.regulators import is_regulator
from app.sas.request import SasSearch
from app.search.dates import format_instant, utc_now
from app.search.extract import parse_reference
from app.storage.repository import Repository
from app.storage.schema import resources, sas_slot, search_reference, search_token

log = logging.getLogger(__name__)

Resource = dict[str, Any]


@dataclass(frozen=True)
class Place:
    """One practice place: the Schedule, its practitioner and PractitionerRole."""

    schedule_id: str
    practitioner_id: str
    role_id: str


def _rows(repo: Repository, condition: Any) -> dict[str, Resource]:
    query = select(resources.c.res_id, resources.c.content).where(
        condition, resources.c.deleted.is_(False))
    return {res_id: orjson.loads(content) for res_id, content in repo.conn.execute(query)}


def _referring(source_type: str, param: str, targets: list[tuple[str, list[str]]]) -> Any:
    index = search_reference
    matches = [and_(index.c.target_type == t, index.c.target_id.in_(ids))
               for t, ids in targets if ids]
    return resources.c.pk.in_(select(index.c.res_pk).where(
        index.c.res_type == source_type, index.c.param == param, index.c.url.is_(None),
        or_(*matches)))


def _active(resource: Resource) -> bool:
    return resource.get("active", True) is not False


def _local_refs(references: list[Resource] | None, target_type: str, base: str) -> list[str]:
    found = []
    for reference in references or []:
        kind, target_id, url = parse_reference(reference.get("reference", ""), base)
        if kind == target_type and target_id and url is None:
            found.append(target_id)
    return found


@dataclass
class Found:
    """What the SAS search found, before shaping."""

    practitioners: dict[str, Resource] = field(default_factory=dict)
    roles: dict[str, Resource] = field(default_factory=dict)
    schedules: dict[str, Resource] = field(default_factory=dict)
    places: list[Place] = field(default_factory=list)
    slots: list[Any] = field(default_factory=list)
    around: dict[str, Resource] = field(default_factory=dict)  # Locations, Organizations


class SasAggregator:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.base = repo.settings.fhir_base_url
        self.tz = repo.settings.default_timezone

    def _practitioners(self, identifiers: tuple[str, ...]) -> dict[str, Resource]:
        index = search_token
        by_identifier = resources.c.pk.in_(select(index.c.res_pk).where(
            index.c.res_type == "Practitioner", index.c.param == "identifier",
            index.c.system == IDNPS_SYSTEM, index.c.code.in_(identifiers)))
        found = _rows(self.repo, and_(resources.c.res_type == "Practitioner", by_identifier))
        # Regulator accounts share national ids with agendas but are never effectors.
        return {k: v for k, v in found.items() if _active(v) and not is_regulator(v)}

    def _places(self, practitioners: dict[str, Resource], roles: dict[str, Resource],
                schedules: dict[str, Resource]) -> list[Place]:
        places = []
        for schedule_id, schedule in sorted(schedules.items()):
            actors = schedule.get("actor")
            role_ids = [r for r in _local_refs(actors, "PractitionerRole", self.base)
                        if r in roles]
            practitioner_ids = [p for p in _local_refs(actors, "Practitioner", self.base)
                                if p in practitioners]
            if not role_ids and practitioner_ids:
                role_ids = self._role_for(practitioner_ids[0], actors, roles)
            for role_id in role_ids[:1]:
                owner = _local_refs([roles[role_id].get("practitioner") or {}],
                                    "Practitioner", self.base)
                if owner and owner[0] in practitioners:
                    places.append(Place(schedule_id, owner[0], role_id))
        return places

    def _role_for(self, practitioner_id: str, actors: list[Resource] | None,
                  roles: dict[str, Resource]) -> list[str]:
        """A Schedule naming only the practitioner: the role at the Schedule's Location,
        else the practitioner's only role."""
        own = {rid: role for rid, role in roles.items()
               if practitioner_id in _local_refs([role.get("practitioner") or {}],
                                                 "Practitioner", self.base)}
        locations = set(_local_refs(actors, "Location", self.base))
        at_location = [rid for rid, role in sorted(own.items())
                       if locations & set(_local_refs(role.get("location"), "Location",
                                                      self.base))]
        if at_location:
            return at_location[:1]
        return list(own)[:1] if len(own) == 1 else []

    def search(self, search: SasSearch) -> Found:
        found = Found()
        found.practitioners = self._practitioners(search.identifiers)
        if not found.practitioners:
            return found
        practitioner_ids = sorted(found.practitioners)
        found.roles = {k: v for k, v in _rows(self.repo, and_(
            resources.c.res_type == "PractitionerRole",
            _referring("PractitionerRole", "practitioner",
                       [("Practitioner", practitioner_ids)]))).items() if _active(v)}
        found.schedules = {k: v for k, v in _rows(self.repo, and_(
            resources.c.res_type == "Schedule",
            _referring("Schedule", "actor", [("Practitioner", practitioner_ids),
                                             ("PractitionerRole", sorted(found.roles))]))
        ).items() if _active(v)}
        found.places = self._places(found.practitioners, found.roles, found.schedules)
        if not found.places:
            return found
        found.slots = list(self.repo.conn.execute(
            select(sas_slot.c.slot_id, sas_slot.c.schedule_id, sas_slot.c.fragment)
            .where(sas_slot.c.schedule_id.in_([p.schedule_id for p in found.places]),
                   sas_slot.c.start >= search.low, sas_slot.c.start <= search.high)
            .order_by(sas_slot.c.start, sas_slot.c.slot_id)).all())
        found.around = self._surroundings(found.places, found.roles, found.schedules)
        return found

    def _surroundings(self, places: list[Place], roles: dict[str, Resource],
                      schedules: dict[str, Resource]) -> dict[str, Resource]:
        """Locations and Organizations of the places, keyed `Type/id`."""
        keys: set[tuple[str, str]] = set()
        for place in places:
            role = roles[place.role_id]
            keys.update(("Location", i) for i in _local_refs(role.get("location"), "Location",
                                                            self.base))
            keys.update(("Location", i) for i in _local_refs(
                schedules[place.schedule_id].get("actor"), "Location", self.base))
            keys.update(("Organization", i) for i in _local_refs(
                [role.get("organization") or {}], "Organization", self.base))
        if not keys:
            return {}
        query = select(resources.c.res_type, resources.c.res_id, resources.c.content).where(
            tuple_(resources.c.res_type, resources.c.res_id).in_(sorted(keys)),
            resources.c.deleted.is_(False))
        return {f"{t}/{i}": orjson.loads(c) for t, i, c in self.repo.conn.execute(query)}

    def _place_location(self, place: Place, role: Resource, schedule: Resource,
                        around: dict[str, Resource]) -> Resource | None:
        candidates = (_local_refs(role.get("location"), "Location", self.base)
                      + _local_refs(schedule.get("actor"), "Location", self.base))
        for location_id in candidates:
            stored = around.get(f"Location/{location_id}")
            shaped = shape.location(stored, location_id,
                                    self.repo.settings.local_identifier_system + "/location"
                                    ) if stored else None
            if shaped is not None:
                return shaped
        log.warning("Practice place %s has no address: its slots are not published to SAS",
                    place.role_id)
        return None

    def bundle(self, search: SasSearch, self_url: str, public_web_url: str) -> bytes:
        found = self.search(search)
        with_slots = {row.schedule_id for row in found.slots}
        published: set[str] = set()
        included: dict[tuple[str, str], Resource] = {}
        for place in found.places:
            if place.schedule_id not in with_slots:
                continue
            role = found.roles[place.role_id]
            location = self._place_location(place, role, found.schedules[place.schedule_id],
                                            found.around)
            if location is None:
                continue
            published.add(place.schedule_id)
            organization_ids = _local_refs([role.get("organization") or {}], "Organization",
                                           self.base)
            organization = found.around.get(f"Organization/{organization_ids[0]}"
                                            if organization_ids else "")
            included[("Schedule", place.schedule_id)] = shape.schedule(
                place.schedule_id, place.practitioner_id, place.role_id)
            included.setdefault(("Practitioner", place.practitioner_id), shape.practitioner(
                found.practitioners[place.practitioner_id]))
            included.setdefault(("PractitionerRole", place.role_id), shape.practitioner_role(
                role, place.practitioner_id, location, organization))
        slots = [row for row in found.slots if row.schedule_id in published]
        return self._assemble(slots, included, self_url, public_web_url)

    def _assemble(self, slots: list[Any], included: dict[tuple[str, str], Resource],
                  self_url: str, public_web_url: str) -> bytes:
        head = orjson.dumps({
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"lastUpdated": format_instant(utc_now()),
                     "profile": [codes.BUNDLE_PROFILE]},
            "type": "searchset",
            "total": len(slots),
            "link": [{"relation": "self", "url": self_url}],
        })
        entries: list[bytes] = []
        base = self.base.encode()
        for slot_id, schedule_id, fragment in slots:
            comment = orjson.dumps(f"{public_web_url}/agenda/{schedule_id}")
            resource = fragment.encode()[:-1] + b',"comment":' + comment + b"}"
            entries.append(b'{"fullUrl":"' + base + b"/Slot/" + slot_id.encode()
                           + b'","resource":' + resource + b',"search":{"mode":"match"}}')
        for (kind, res_id), resource in included.items():
            entries.append(orjson.dumps({"fullUrl": f"{self.base}/{kind}/{res_id}",
                                         "resource": resource,
                                         "search": {"mode": "include"}}))
        if not entries:
            return head
        return head[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
