"""The floor: the same rows fetched by one hand-written SQL query, dumped with orjson.

No HTTP, no ORM, no shaping: psycopg runs one statement (the practitioners by national id,
their roles, schedules, locations and organizations, and the free SAS slots of the window
from `sas_slot`), and orjson writes a Bundle around the stored JSON. Anything the server
spends beyond this is the cost of the HTTP stack, the query plan and the shaping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from app.identifiers import IDNPS_SYSTEM
from app.search.dates import to_utc_naive
from bench.sas import SasRequest

FLOOR_SQL = """
WITH p AS (
    -- one index probe per identifier, whatever the statistics say (OFFSET 0 keeps the
    -- LATERAL subquery a parameterized index scan instead of a hash over every IDNPS)
    SELECT r.pk, r.res_id, r.content
      FROM unnest(%(ids)s::text[]) AS wanted (code)
     CROSS JOIN LATERAL (
           SELECT t.res_pk FROM search_token t
            WHERE t.res_type = 'Practitioner' AND t.param = 'identifier'
              AND t.code = wanted.code AND t.system = %(system)s OFFSET 0) t
      JOIN resources r ON r.pk = t.res_pk
     WHERE r.res_type = 'Practitioner' AND NOT r.deleted
), roles AS (
    SELECT r.pk, r.res_id, r.content
      FROM search_reference x JOIN resources r ON r.pk = x.res_pk
     WHERE x.res_type = 'PractitionerRole' AND x.param = 'practitioner'
       AND x.target_type = 'Practitioner' AND x.target_id IN (SELECT res_id FROM p)
       AND NOT r.deleted
), schedules AS (
    SELECT r.pk, r.res_id, r.content
      FROM search_reference x JOIN resources r ON r.pk = x.res_pk
     WHERE x.res_type = 'Schedule' AND x.param = 'actor' AND x.target_type = 'PractitionerRole'
       AND x.target_id IN (SELECT res_id FROM roles) AND NOT r.deleted
), places AS (
    SELECT r.res_type, r.res_id, r.content
      FROM resources r
     WHERE (r.res_type, r.res_id) IN (
            SELECT x.target_type, x.target_id FROM search_reference x
             WHERE x.res_type = 'PractitionerRole' AND x.param IN ('location', 'organization')
               AND x.res_pk IN (SELECT pk FROM roles))
       AND NOT r.deleted
)
(SELECT 0 AS part, 'Slot' AS res_type, s.slot_id AS res_id, s.fragment AS content
   FROM sas_slot s
  WHERE s.schedule_id IN (SELECT res_id FROM schedules)
    AND s.start >= %(low)s AND s.start <= %(high)s
  ORDER BY s.start, s.slot_id)
UNION ALL SELECT 1, 'Practitioner', res_id, content FROM p
UNION ALL SELECT 2, 'PractitionerRole', res_id, content FROM roles
UNION ALL SELECT 3, 'Schedule', res_id, content FROM schedules
UNION ALL SELECT 4, res_type, res_id, content FROM places
"""

MATCH = {"mode": "match"}
INCLUDE = {"mode": "include"}


@dataclass(frozen=True)
class FloorResult:
    seconds: float
    slots: int
    size: int  # bytes of the dumped Bundle
    slot_ids: tuple[str, ...]


def parameters(request: SasRequest) -> dict[str, Any]:
    return {"system": IDNPS_SYSTEM, "ids": list(request.identifiers),
            "low": to_utc_naive(request.low),
            # `le` on a seconds-precision instant covers its whole second, as in the app
            "high": to_utc_naive(request.high).replace(microsecond=999999)}


def run(conn: psycopg.Connection, request: SasRequest, base: str) -> FloorResult:
    params = parameters(request)
    started = time.perf_counter()
    rows = conn.execute(FLOOR_SQL, params, prepare=True).fetchall()
    entries = []
    slot_ids = []
    for part, res_type, res_id, content in rows:
        if part == 0:
            slot_ids.append(res_id)
        entries.append({"fullUrl": f"{base}/{res_type}/{res_id}",
                        "resource": orjson.Fragment(content),
                        "search": MATCH if part == 0 else INCLUDE})
    body = orjson.dumps({"resourceType": "Bundle", "type": "searchset",
                         "total": len(slot_ids), "entry": entries})
    elapsed = time.perf_counter() - started
    return FloorResult(elapsed, len(slot_ids), len(body), tuple(slot_ids))
