"""Answer the CPTS slot search in the sas-cpts-* profiles, straight from SQL to bytes.

One statement reads the projections: the practice places of the requested national ids
(`sas_place`), their free SAS-visible slots of the window (`sas_slot`, with the CPTS offers
each is shared with) and those offers (`sas_cpts`). Every slot is answered in the CPTS slot
profile (a superset of the individual one); a slot shared with published CPTS offers gets one
serviceType concept per CPTS, referencing its HealthcareService, and the answer carries each
HealthcareService and CPTS Organization once.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from app.sas import codes
from app.sas.aggregator import PlaceRow, SlotRow, assemble, place_entries
from app.sas.cpts import concept
from app.sas.request import SasSearch
from app.sas.statement import WindowStatement, one_of
from app.storage.repository import Repository

SHARED = {"postgresql": "SELECT json_array_elements_text(CAST(cpts AS json)) FROM slots"
                        " WHERE cpts IS NOT NULL",
          "sqlite": "SELECT j.value FROM slots, json_each(slots.cpts) AS j"
                    " WHERE slots.cpts IS NOT NULL"}
SEARCH_SQL = """
WITH places AS (
    SELECT schedule_id, practitioner_id, role_id, practitioner, role, schedule
      FROM sas_place WHERE {wanted}
), slots AS (
    SELECT s.start, s.slot_id, s.schedule_id, s.fragment, s.cpts
      FROM sas_slot s
     WHERE s.schedule_id IN (SELECT schedule_id FROM places)
       AND s.start >= :low AND s.start <= :high
)
SELECT 0 AS part, CAST(NULL AS TIMESTAMP) AS start, schedule_id AS a, practitioner_id AS b,
       role_id AS c, practitioner AS d, role AS e, schedule AS f
  FROM places
UNION ALL
SELECT 1, start, slot_id, schedule_id, cpts, fragment, NULL, NULL FROM slots
UNION ALL
SELECT 2, NULL, c.healthcareservice_id, c.organization_id, NULL, c.healthcareservice,
       c.organization, NULL
  FROM sas_cpts c WHERE c.healthcareservice_id IN ({shared})
ORDER BY 1, 2, 3
"""


STATEMENT = WindowStatement(SEARCH_SQL, wanted=one_of("idnps"), shared=SHARED)
INDIVIDUAL = f'"profile":["{codes.SLOT_PROFILE}"]'
CPTS = f'"profile":["{codes.CPTS_SLOT_PROFILE}"]'


class SharedSlot(NamedTuple):
    slot: SlotRow
    services: list[str]  # HealthcareService ids, as the slot names them


class Offer(NamedTuple):
    organization_id: str
    service: str
    organization: str


class CptsAnswer:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.base = repo.settings.fhir_base_url

    def search(self, search: SasSearch) -> tuple[list[PlaceRow], list[SharedSlot],
                                                 dict[str, Offer]]:
        rows = STATEMENT.rows(self.repo.conn, list(search.identifiers), search.low,
                              search.high)
        places: dict[str, PlaceRow] = {}
        slots: list[SharedSlot] = []
        offers: dict[str, Offer] = {}
        for part, _start, a, b, c, d, e, f in rows:
            if part == 1:
                slots.append(SharedSlot(SlotRow(a, b, d), orjson.loads(c) if c else []))
            elif part == 2:
                offers[a] = Offer(b, d, e)
            else:
                places.setdefault(a, PlaceRow(a, b, c, d, e, f))
        return list(places.values()), slots, offers

    def bundle(self, search: SasSearch, self_url: str, public_web_url: str) -> bytes:
        places, shared, offers = self.search(search)
        # One HealthcareService per CPTS: the first (by id) of each CPTS Organization.
        canonical: dict[str, str] = {}
        for service_id in sorted(offers):
            canonical.setdefault(offers[service_id].organization_id, service_id)
        slots: list[SlotRow] = []
        named: set[str] = set()
        for slot, services in shared:
            published = list(dict.fromkeys(canonical[offers[s].organization_id]
                                           for s in services if s in offers))
            named.update(published)
            slots.append(slot._replace(fragment=_cpts_slot(slot.fragment, published)))
        included = place_entries(places, [s.slot for s in shared])
        for service_id in sorted(named):
            included[("HealthcareService", service_id)] = offers[service_id].service.encode()
        for service_id in sorted(named):
            offer = offers[service_id]
            included[("Organization", offer.organization_id)] = offer.organization.encode()
        return assemble(self.base, slots, included, self_url, public_web_url,
                        codes.CPTS_BUNDLE_PROFILE)


def _cpts_slot(fragment: str, services: list[str]) -> str:
    """The slot in the CPTS slot profile, with one serviceType concept per CPTS offer."""
    if not services:
        return fragment.replace(INDIVIDUAL, CPTS, 1)
    slot = orjson.loads(fragment)
    slot["meta"]["profile"] = [codes.CPTS_SLOT_PROFILE]
    slot["serviceType"] = [*slot.get("serviceType", []), *map(concept, services)]
    return orjson.dumps(slot).decode()
