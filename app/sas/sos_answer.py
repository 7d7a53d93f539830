"""Answer the SOS Médecins search in the sas-sos-* profiles, straight from SQL to bytes.

One statement reads the projections: the fixed consultation places of the requested
associations (`sas_sos_place`: Schedule, Location, Organization already shaped) and the
window's slots of those places that the SOS offer may see (`sas_slot.sos`, already shaped).
As in the guide's example, the slots are the matches (`total` counts them) and each place's
Schedule, Location and association come once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.sas import codes
from app.sas.aggregator import Included, SlotRow, assemble
from app.sas.sos_request import SosSearch
from app.sas.statement import WindowStatement, one_of
from app.storage.repository import Repository

SEARCH_SQL = """
WITH places AS (
    SELECT schedule_id, location_id, organization_id, schedule, location, organization
      FROM sas_sos_place WHERE {wanted}
)
SELECT 0 AS part, CAST(NULL AS TIMESTAMP) AS start, schedule_id AS a, location_id AS b,
       organization_id AS c, schedule AS d, location AS e, organization AS f
  FROM places
UNION ALL
SELECT 1, s.start, s.slot_id, s.schedule_id, NULL, s.sos, NULL, NULL
  FROM sas_slot s
 WHERE s.schedule_id IN (SELECT schedule_id FROM places)
   AND s.start >= :low AND s.start <= :high AND s.sos IS NOT NULL
ORDER BY 1, 2, 3
"""


STATEMENT = WindowStatement(SEARCH_SQL, wanted=one_of("siret"))


class SosAnswer:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.base = repo.settings.fhir_base_url

    def search(self, search: SosSearch) -> tuple[list[Sequence[Any]], list[SlotRow]]:
        """The places of the requested associations and their slots, ordered by start."""
        rows = STATEMENT.rows(self.repo.conn, list(search.sirets), search.low, search.high)
        places: list[Sequence[Any]] = []
        slots: list[SlotRow] = []
        for row in rows:
            if row[0] == 1:
                slots.append(SlotRow(row[2], row[3], row[5]))
            else:
                places.append(row)
        return places, slots

    def bundle(self, search: SosSearch, self_url: str, public_web_url: str) -> bytes:
        places, slots = self.search(search)
        with_slots = {row.schedule_id for row in slots}
        included: Included = {}
        for _, _, schedule_id, location_id, organization_id, schedule, location, \
                organization in places:  # by Schedule id
            if schedule_id not in with_slots:
                continue
            included.setdefault(("Schedule", schedule_id), schedule.encode())
            included.setdefault(("Location", location_id), location.encode())
            included.setdefault(("Organization", organization_id), organization.encode())
        return assemble(self.base, slots, included, self_url, public_web_url,
                        codes.SOS_BUNDLE_PROFILE)
