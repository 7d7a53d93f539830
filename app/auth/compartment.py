"""The agendas a restricted client manages: its practitioners, the practice places of its
organisations, their schedules, slots and appointments, the patients of those and their
relatives (RelatedPerson).

Directory data (Practitioner, PractitionerRole, Organization, Location, Device…) stays
readable to any client whose scopes allow it; agenda and patient data is limited to the
compartment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.auth.principal import Principal
from app.search.api import referring
from app.search.extract import parse_reference
from app.storage.references import referenced
from app.storage.repository import Repository

# Resource types whose reads a restricted client sees only inside its compartment.
# A RelatedPerson (GAP: a patient's relative or guardian) is patient data: it goes with its
# patient.
RESTRICTED_READS = frozenset({"Appointment", "Slot", "Schedule", "Patient", "RelatedPerson"})
# … and whose writes must stay inside it (a new Patient is anyone's until booked).
RESTRICTED_WRITES = RESTRICTED_READS | {"Practitioner", "PractitionerRole"}
NOTHING = "no-such-resource"  # an id no resource has: an empty allowed set matches nothing


@dataclass
class Compartment:
    repo: Repository
    principal: Principal
    practitioners: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)
    schedules: set[str] = field(default_factory=set)
    _patients: set[str] | None = None

    @classmethod
    def of(cls, repo: Repository, principal: Principal) -> Compartment:
        conn = repo.conn
        roles = (referring(conn, "PractitionerRole", "practitioner",
                           {"Practitioner": set(principal.practitioners)})
                 | referring(conn, "PractitionerRole", "organization",
                             {"Organization": set(principal.organizations)}))
        practitioners = set(principal.practitioners) | referenced(
            conn, "PractitionerRole", roles, "practitioner", "Practitioner")
        schedules = referring(conn, "Schedule", "actor",
                              {"Practitioner": practitioners, "PractitionerRole": roles})
        return cls(repo, principal, practitioners, roles, schedules)

    def _actors(self) -> dict[str, set[str]]:
        return {"Practitioner": self.practitioners, "PractitionerRole": self.roles}

    @property
    def patients(self) -> set[str]:
        if self._patients is None:
            appointments = referring(self.repo.conn, "Appointment", "actor",
                                     self._actors())
            self._patients = referenced(self.repo.conn, "Appointment", appointments,
                                        "patient", "Patient")
        return self._patients

    def search_criteria(self, resource_type: str) -> list[tuple[str, str]]:
        """Criteria ANDed to a restricted client's search of `resource_type`."""
        def listed(kind: str, ids: set[str]) -> str:
            return ",".join(f"{kind}/{i}" for i in sorted(ids))

        if resource_type == "Appointment":
            refs = ",".join(r for r in (listed("Practitioner", self.practitioners),
                                        listed("PractitionerRole", self.roles)) if r)
            return [("actor", refs or f"Practitioner/{NOTHING}")]
        if resource_type == "Slot":
            return [("schedule", listed("Schedule", self.schedules)
                     or f"Schedule/{NOTHING}")]
        if resource_type == "Schedule":
            return [("_id", ",".join(sorted(self.schedules)) or NOTHING)]
        if resource_type == "Patient":
            return [("_id", ",".join(sorted(self.patients)) or NOTHING)]
        if resource_type == "RelatedPerson":
            return [("patient", listed("Patient", self.patients) or f"Patient/{NOTHING}")]
        return []

    def _refers_to(self, references: list[Any], allowed: dict[str, set[str]]) -> bool:
        base = self.repo.settings.fhir_base_url
        for reference in references:
            if not isinstance(reference, dict):
                continue
            kind, target_id, url = parse_reference(str(reference.get("reference", "")), base)
            if url is None and kind in allowed and target_id in allowed[kind]:
                return True
        return False

    def holds(self, resource_type: str, resource: dict[str, Any]) -> bool:
        """Whether this content belongs to the compartment (for reads and writes)."""
        actors = self._actors()
        if resource_type == "Appointment":
            return self._refers_to([p.get("actor") for p in resource.get("participant") or []
                                    if isinstance(p, dict)], actors)
        if resource_type == "Slot":
            return self._refers_to([resource.get("schedule")],
                                   {"Schedule": self.schedules})
        if resource_type == "Schedule":
            return self._refers_to(list(resource.get("actor") or []), actors)
        if resource_type == "Patient":
            return resource.get("id") in self.patients
        if resource_type == "RelatedPerson":
            return self._refers_to([resource.get("patient")], {"Patient": self.patients})
        if resource_type == "Practitioner":
            return resource.get("id") in self.practitioners
        if resource_type == "PractitionerRole":
            return (self._refers_to([resource.get("practitioner")],
                                    {"Practitioner": set(self.principal.practitioners)})
                    or self._refers_to([resource.get("organization")],
                                       {"Organization": set(self.principal.organizations)}))
        return True
