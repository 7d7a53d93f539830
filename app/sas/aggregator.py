"""Answer the SAS slot search (INT_R01) as a BundleAgregateur, straight from SQL to bytes.

One statement reads the projections: the published practice places of the requested
national ids (`sas_place`, Practitioner/PractitionerRole/Schedule already shaped) and their
free SAS-visible slots of the window (`sas_slot`, already shaped). The Bundle is assembled
as bytes around those fragments: nothing is parsed or shaped per request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import DateTime, String, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from app.clock import format_instant, utc_now
from app.sas import codes
from app.sas.request import SasSearch
from app.storage.repository import Repository

# PostgreSQL binds the ids as one array and SQLite as one JSON array: the SQL text never
# changes, so SQLAlchemy compiles it once and psycopg prepares it (no planning per request).
WANTED = {"postgresql": "idnps = ANY(CAST(:ids AS text[]))",
          "sqlite": "idnps IN (SELECT value FROM json_each(:ids))"}
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


def _statement(dialect: str) -> TextClause:
    ids = bindparam("ids", type_=ARRAY(String)) if dialect == "postgresql" else bindparam(
        "ids", type_=String)
    return text(SEARCH_SQL.format(wanted=WANTED[dialect])).bindparams(
        ids, bindparam("low", type_=DateTime), bindparam("high", type_=DateTime))


STATEMENTS = {dialect: _statement(dialect) for dialect in WANTED}
# PostgreSQL runs the text SQLAlchemy compiles for it (same casts, same prepared statement)
# as driver SQL: no compiled-cache lookup or bind processing per call, which cost a third of
# the statement's own time for one practitioner (bench/README.md). SQLite keeps the Core
# path: its DateTime binds need SQLAlchemy's string processing.
POSTGRESQL_SQL = str(STATEMENTS["postgresql"].compile(dialect=PGDialect_psycopg()))


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
        conn = self.repo.conn
        dialect = conn.dialect.name
        ids = list(search.identifiers)
        params = {"ids": ids, "low": search.low, "high": search.high}
        if dialect == "postgresql":
            rows: Iterable[Sequence[Any]] = conn.exec_driver_sql(POSTGRESQL_SQL, params)
        else:
            rows = conn.execute(STATEMENTS[dialect], {**params, "ids": orjson.dumps(ids).decode()})
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
        with_slots = {row.schedule_id for row in slots}
        included: dict[tuple[str, str], bytes] = {}
        for place in places:  # ordered by Schedule id
            if place.schedule_id not in with_slots:
                continue
            included[("Schedule", place.schedule_id)] = place.schedule.encode()
            included.setdefault(("Practitioner", place.practitioner_id),
                                place.practitioner.encode())
            included.setdefault(("PractitionerRole", place.role_id), place.role.encode())
        return self._assemble(slots, included, self_url, public_web_url)

    def _assemble(self, slots: list[SlotRow], included: dict[tuple[str, str], bytes],
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
                                         "resource": orjson.Fragment(resource),
                                         "search": {"mode": "include"}}))
        if not entries:
            return head
        return head[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
