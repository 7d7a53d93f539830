"""The `sas_place` rows of the generated world, computed by the application's place rules.

Each practitioner's practice places only read its own Practitioner, PractitionerRoles and
Schedules and their cabinets' Location and Organization, so the generator's staging
processes hand those (as stored) to `PlaceRules.rows` practitioner by practitioner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.sas.place_rules import PlaceRules, Sources
from bench import slots
from bench.world import World, location, organization

Resource = dict[str, Any]
COLUMNS = ("idnps", "schedule_id", "practitioner_id", "role_id", "practitioner", "role",
           "schedule", "organization_id")
KINDS = {"Practitioner": "practitioners", "PractitionerRole": "roles", "Schedule": "schedules"}


class PlaceStager:
    """Collects one practitioner's stored resources, then yields its `sas_place` rows."""

    def __init__(self, world: World, seed: int, now: datetime, rules: PlaceRules) -> None:
        self.world, self.seed, self.now, self.rules = world, seed, now, rules
        self.sources = Sources()

    def add(self, resource_type: str, content: Resource) -> None:
        if resource_type in KINDS:
            getattr(self.sources, KINDS[resource_type])[content["id"]] = content

    def flush(self) -> list[tuple[str, ...]]:
        """The rows of the practitioner collected so far (then forgets it)."""
        sources, self.sources = self.sources, Sources()
        for person_id in sources.practitioners:
            sources.roles_of[person_id] = sorted(
                r for r, role in sources.roles.items()
                if role["practitioner"]["reference"] == f"Practitioner/{person_id}")
        for role in sources.roles.values():
            reference = role["location"][0]["reference"]  # Location/loc-<cabinet index>
            cabinet = self.world.cabinets[int(reference.split("/loc-")[1])]
            sources.locations[cabinet.location_id] = slots.stored(
                "Location", cabinet.location_id, location(cabinet), self.now)
            sources.organizations[cabinet.org_id] = slots.stored(
                "Organization", cabinet.org_id, organization(cabinet, self.seed), self.now)
        return [tuple(row[c] for c in COLUMNS) for schedule_id in sorted(sources.schedules)
                for row in self.rules.rows(sources, schedule_id)]
