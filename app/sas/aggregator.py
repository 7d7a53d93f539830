"""Answer the SAS slot search (INT_R01) as a BundleAgregateur, straight from SQL to bytes.

One statement reads the projections: the published practice places of the requested
national ids (`sas_place`, Practitioner/PractitionerRole/Schedule already shaped) and their
free SAS-visible slots of the window (`sas_slot`, already shaped). The Bundle is assembled
as bytes around those fragments: nothing is parsed or shaped per request.
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

import orjson

from app.clock import format_instant, utc_now
from app.sas import codes
from app.sas.request import SasSearch
from app.sas.statement import WindowStatement, one_of
from app.storage.repository import Repository

SEARCH_SQL = """
WITH places AS (
    SELECT schedule_id, practitioner_id, role_id, practitioner, role, schedule
      FROM sas_place WHERE {wanted}
)
SELECT 0 AS part, CAST(NULL AS TIMESTAMP) AS start, schedule_id AS a, practitioner_id AS b,
       role_id AS c, practitioner AS d, role AS e, schedule AS f
  FROM places
UNION ALL
SELECT 1, s.start, s.slot_id, s.schedule_id, NULL, s.fragment, NULL, NULL
  FROM sas_slot s
 WHERE s.schedule_id IN (SELECT schedule_id FROM places)
   AND s.start >= :low AND s.start <= :high
ORDER BY 1, 2, 3
"""
STATEMENT = WindowStatement(SEARCH_SQL, wanted=one_of("idnps"))


def booking_url(public_web_url: str, schedule_id: str, slot_id: str) -> str:
    """The link SAS gets in `Slot.comment` (app/sas/agenda.py, the booking page): it
    already carries a query string, because SAS appends `&origin=…` to it."""
    return f"{public_web_url}/agenda/{schedule_id}?creneau={slot_id}"


class SlotRow(NamedTuple):
    slot_id: str
    schedule_id: str
    fragment: str


class PlaceRow(NamedTuple):
    schedule_id: str
    practitioner_id: str
    role_id: str
    practitioner: str
    role: str
    schedule: str


class SasAggregator:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.base = repo.settings.fhir_base_url

    def search(self, search: SasSearch) -> tuple[list[PlaceRow], list[SlotRow]]:
        """The places of the requested practitioners (by Schedule id) and the window's
        slots of those places, ordered by start."""
        rows = STATEMENT.rows(self.repo.conn, list(search.identifiers), search.low,
                              search.high)
        places: dict[str, PlaceRow] = {}
        slots: list[SlotRow] = []
        for part, _start, a, b, c, d, e, f in rows:
            if part == 1:
                slots.append(SlotRow(a, b, d))
            else:  # one row per national id: a practitioner named twice has one place
                places.setdefault(a, PlaceRow(a, b, c, d, e, f))
        return list(places.values()), slots

    def bundle(self, search: SasSearch, self_url: str, public_web_url: str) -> bytes:
        places, slots = self.search(search)
        return assemble(self.base, slots, place_entries(places, slots), self_url,
                        public_web_url, codes.BUNDLE_PROFILE)


Included = dict[tuple[str, str], bytes]  # (type, id) → the resource's JSON, in answer order


def place_entries(places: list[PlaceRow], slots: list[SlotRow]) -> Included:
    """Schedule, Practitioner and PractitionerRole of the places that have slots, each once."""
    with_slots = {row.schedule_id for row in slots}
    included: Included = {}
    for place in places:  # ordered by Schedule id
        if place.schedule_id not in with_slots:
            continue
        included[("Schedule", place.schedule_id)] = place.schedule.encode()
        included.setdefault(("Practitioner", place.practitioner_id),
                            place.practitioner.encode())
        included.setdefault(("PractitionerRole", place.role_id), place.role.encode())
    return included


# A slot entry around its stored fragment (without its closing brace) and its booking link.
SLOT_ENTRY = b'{"fullUrl":"%s/Slot/%s","resource":%s,"comment":%s},"search":{"mode":"match"}}'


def assemble(base_url: str, slots: list[SlotRow], included: Included, self_url: str,
             public_web_url: str, profile: str) -> bytes:
    """The searchset as bytes: the slots (matches, each given its booking link) then the
    included resources, around the JSON fragments as they are."""
    head = orjson.dumps({
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": format_instant(utc_now()), "profile": [profile]},
        "type": "searchset",
        "total": len(slots),
        "link": [{"relation": "self", "url": self_url}],
    })
    entries: list[bytes] = []
    base = base_url.encode()
    for slot_id, schedule_id, fragment in slots:
        comment = orjson.dumps(booking_url(public_web_url, schedule_id, slot_id))
        entries.append(SLOT_ENTRY % (base, slot_id.encode(), fragment.encode()[:-1], comment))
    for (kind, res_id), resource in included.items():
        entries.append(orjson.dumps({"fullUrl": f"{base_url}/{kind}/{res_id}",
                                     "resource": orjson.Fragment(resource),
                                     "search": {"mode": "include"}}))
    if not entries:
        return head
    return head[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
