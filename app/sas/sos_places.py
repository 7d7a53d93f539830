"""Which Schedule is a fixed consultation place of an SOS Médecins association, and how SAS
sees it (sas-sos-schedule/location/organization-aggregator).

Accepted stored shape (the one the guide's examples use): an active Schedule whose `actor`
names a stored Location (`Location/id`), whose `managingOrganization` names a stored
Organization holding a SIRET (IDNST `3…`, or a SIRET system, prefixed or not). The first
such Location of the Schedule is its place; the Location needs a name and an address
(line, city, postal code) and must not be inactive; the Organization must be active. The
Schedule may name other actors (the doctor on duty): the answer names the place only.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy import Connection

from app.identifiers import IDNST_SYSTEM, structure_ids_of
from app.sas import codes, shape
from app.sas.place_rules import active, contents, local_refs

log = logging.getLogger(__name__)

Resource = dict[str, Any]
SIRET_PREFIX = "3"


def schedule(schedule_id: str, location_id: str) -> Resource:
    return {"resourceType": "Schedule", "id": schedule_id,
            "meta": {"profile": [codes.SOS_SCHEDULE_PROFILE]},
            "actor": [{"reference": f"Location/{location_id}"}]}


def location(resource: Resource, organization_id: str, published: Resource,
             id_system: str) -> Resource:
    """The place: INTRN identifier, name, phones in international form (SAS reads the first
    one; the association's when the place has none), address, opening hours."""
    shaped: Resource = {
        "resourceType": "Location",
        "id": resource["id"],
        "meta": {"profile": [codes.SOS_LOCATION_PROFILE]},
        "identifier": [shape.place_identifier(resource, published, id_system, internal=True)],
        "name": resource["name"],
    }
    phones = [t for t in shape.telecoms(resource.get("telecom") or [])
              if t.get("system") == "phone"]
    others = [t for t in shape.telecoms(resource.get("telecom") or [])
              if t.get("system") != "phone"]
    if phones or others:
        shaped["telecom"] = phones + others
    shaped["address"] = published
    shaped["managingOrganization"] = {"reference": f"Organization/{organization_id}"}
    hours = [{k: v for k, v in period.items()
              if k in {"daysOfWeek", "allDay", "openingTime", "closingTime"}}
             for period in resource.get("hoursOfOperation") or [] if isinstance(period, dict)]
    if any(hours):
        shaped["hoursOfOperation"] = [period for period in hours if period]
    return shaped


def organization(resource: Resource, siret: str) -> Resource:
    shaped: Resource = {
        "resourceType": "Organization",
        "id": resource["id"],
        "meta": {"profile": [codes.SOS_ORGANIZATION_PROFILE]},
        "identifier": [{"type": {"coding": [{"system": codes.LOCATION_ID_TYPES,
                                             "code": "IDNST"}]},
                        "system": IDNST_SYSTEM, "value": siret}],
    }
    if resource.get("name"):
        shaped["name"] = resource["name"]
    published = shape.telecoms(resource.get("telecom") or [])
    if published:
        shaped["telecom"] = published
    return shaped


def _usable(place: Resource | None) -> bool:
    return place is not None and place.get("status") != "inactive" and bool(
        place.get("name")) and shape.address(place) is not None


class SosPlaces:
    """The `sas_sos_place` rows of Schedules, from the stored resources."""

    def __init__(self, base: str, local_identifier_system: str) -> None:
        self.base = base
        self.location_system = local_identifier_system + "/location"

    def rows(self, conn: Connection, schedules: dict[str, Resource]) -> list[dict[str, Any]]:
        named = {schedule_id: local_refs(resource.get("actor"), "Location", self.base)
                 for schedule_id, resource in schedules.items() if active(resource)}
        locations = contents(conn, "Location", {i for ids in named.values() for i in ids})
        managers = {location_id: found[0] for location_id, place in locations.items()
                    if (found := local_refs([place.get("managingOrganization") or {}],
                                            "Organization", self.base))}
        organizations = contents(conn, "Organization", set(managers.values()))
        rows = []
        for schedule_id in sorted(named):
            for location_id in named[schedule_id]:
                found = self._rows(schedule_id, locations.get(location_id),
                                   organizations.get(managers.get(location_id, "")))
                if found:
                    rows += found
                    break
        return rows

    def _rows(self, schedule_id: str, place: Resource | None,
              association: Resource | None) -> list[dict[str, Any]]:
        sirets = structure_ids_of((association or {}).get("identifier") or [], SIRET_PREFIX)
        if place is None or not active(association) or not sirets:
            return []
        assert association is not None
        if not _usable(place):
            log.warning("SOS Médecins place %s has no name or usable address: its slots are "
                        "not published to SAS", place["id"])
            return []
        published = shape.address(place)
        assert published is not None
        common = {
            "schedule_id": schedule_id,
            "location_id": place["id"],
            "organization_id": association["id"],
            "schedule": orjson.dumps(schedule(schedule_id, place["id"])).decode(),
            "location": orjson.dumps(location(place, association["id"], published,
                                              self.location_system)).decode(),
        }
        return [{**common, "siret": siret,
                 "organization": orjson.dumps(organization(association, siret)).decode()}
                for siret in sirets]
