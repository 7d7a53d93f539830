"""The CPTS and SOS Médecins offers in the benchmark dataset: their data, requests and floors.

- CPTS: the generated world shares a few % of the slots with the département's CPTS
  (catalog.SLOT_MIXES `snp-cpts`, `public-cpts`; the generator fills `sas_slot.cpts`); its
  `sas_cpts` projection (one row per CPTS) is rebuilt here by the application's function.
- SOS Médecins: associations with 2–3 fixed consultation places each, open in the evenings
  and at weekends, written *through the application* (transaction Bundles on its repository,
  with every interceptor: index, projections, audit), so their rows are the application's by
  construction. A few hundred resources and tens of thousands of slots: a minute or two.
- The requests SAS sends for both offers, and their floors: the same rows fetched by one
  hand-written SQL statement (from the resources, the search index and `sas_slot`) and
  dumped with orjson, like bench/floor.py for the individual offer.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson
import psycopg

from app import create_app
from app.config import Settings
from app.identifiers import IDNST_SYSTEM
from app.sas.cpts_projection import rebuild
from app.search.dates import to_utc_naive
from bench import catalog, floor
from bench.floor import FloorResult
from bench.sas import TZ, SasRequest, window
from bench.world import SIRENE_SYSTEM

Resource = dict[str, Any]
R314 = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
CPTS_INCLUDES = (("_include", "Slot:service-type-reference"),
                 ("_include:iterate", "HealthcareService:organization"))
# Opening hours of a fixed place (Paris time, minutes since midnight) by weekday, Monday first.
EVENINGS = [(19 * 60, 23 * 60)]
OPENING = [EVENINGS] * 5 + [[(9 * 60, 12 * 60), (14 * 60, 23 * 60)],
                             [(9 * 60, 12 * 60), (14 * 60, 20 * 60)]]
SLOT_MINUTES = 20
BATCH = 500  # entries per transaction Bundle


def default_associations(practitioners: int) -> int:
    """About the French count (some 60 associations) at national scale."""
    return max(1, practitioners // 2000)


# -- SOS Médecins: the world ---------------------------------------------------------------------

def siret(index: int) -> str:
    """The prefixed SIRET of association `index` (3 + 14 digits)."""
    return f"38{index:07d}000019"


def _draw(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def sos_resources(associations: int, seed: int) -> list[Resource]:
    """Organizations, Locations and Schedules (each place's agenda names its Location)."""
    rng = random.Random(f"sos-{seed}")
    resources: list[Resource] = []
    for index in range(associations):
        city = catalog.CITIES[index % len(catalog.CITIES)]
        org_id = f"sos-{index:04d}"
        number = siret(index)
        # Half the associations store their SIRET unprefixed under the INSEE system.
        identifier = ({"system": IDNST_SYSTEM, "value": number} if index % 2 == 0
                      else {"system": SIRENE_SYSTEM, "value": number[1:]})
        resources.append({"resourceType": "Organization", "id": org_id, "active": True,
                          "identifier": [identifier],
                          "name": f"SOS Médecins {city.name} {index}"})
        for place in range(2 + rng.randrange(2)):
            location_id, schedule_id = f"pfg-{index:04d}-{place}", f"sch-pfg-{index:04d}-{place}"
            resources.append({
                "resourceType": "Location", "id": location_id, "status": "active",
                "name": f"Point fixe de garde {city.name} {index}-{place}",
                "identifier": [{"system": "https://bench.example/pfg", "value": location_id}],
                "telecom": [{"system": "phone",
                             "value": f"0{rng.randrange(1, 6)} {rng.randrange(10**8):08d}"}],
                "address": {"line": [f"{rng.randrange(1, 200)} {rng.choice(catalog.STREETS)}"],
                            "city": city.name, "postalCode": city.postal_code},
                "hoursOfOperation": [
                    {"daysOfWeek": ["mon", "tue", "wed", "thu", "fri"],
                     "openingTime": "19:00:00", "closingTime": "23:00:00"},
                    {"daysOfWeek": ["sat", "sun"], "openingTime": "09:00:00",
                     "closingTime": "23:00:00"}],
                "managingOrganization": {"reference": f"Organization/{org_id}"}})
            resources.append({"resourceType": "Schedule", "id": schedule_id, "active": True,
                              "actor": [{"reference": f"Location/{location_id}"}]})
    return resources


def sos_slots(schedule_ids: list[str], start: date, days: int) -> list[Resource]:
    """Every place's slots: 20 minutes, 40 % busy, public (some SAS-dedicated too)."""
    found = []
    for schedule_id in schedule_ids:
        for offset in range(days):
            day = start + timedelta(days=offset)
            for low, high in OPENING[day.weekday()]:
                for minute in range(low, high - SLOT_MINUTES + 1, SLOT_MINUTES):
                    begin = datetime(day.year, day.month, day.day, minute // 60, minute % 60,
                                     tzinfo=TZ)
                    slot_id = f"s-{schedule_id}-{day:%Y%m%d}-{minute:04d}"
                    draw = _draw(slot_id)
                    labels = ["PUBLIC"] if draw % 10 < 7 else (
                        ["PUBLIC", "SNP"] if draw % 10 < 9 else ["SNP"])
                    found.append({
                        "resourceType": "Slot", "id": slot_id,
                        "meta": {"security": [{"system": R314, "code": c} for c in labels]},
                        "serviceType": [{"coding": [{"system": ACT, "code": "VR" if (
                            draw >> 8) % 10 == 0 else "AMB"}]}],
                        "appointmentType": {"coding": [{"system": V2_0276,
                                                        "code": "ROUTINE"}]},
                        "schedule": {"reference": f"Schedule/{schedule_id}"},
                        "status": "busy" if (draw >> 16) % 100 < 40 else "free",
                        "start": begin.isoformat(),
                        "end": (begin + timedelta(minutes=SLOT_MINUTES)).isoformat()})
    return found


def write_offers(database_url: str, base_url: str, associations: int, start: date,
                 days: int, seed: int, log: Callable[[str], None] = print) -> dict[str, int]:
    """Rebuild `sas_cpts`, then write the SOS associations through the application."""
    app = create_app(Settings.from_env(database_url=database_url, fhir_base_url=base_url,
                                       security_profile="development"))
    state = app.extensions["agenda"]
    with state.engine.begin() as conn:
        cpts = rebuild(conn, base_url)
    resources = sos_resources(associations, seed)
    schedules = [r["id"] for r in resources if r["resourceType"] == "Schedule"]
    slots = sos_slots(schedules, start, days)
    client = app.test_client()
    started = time.monotonic()
    for first in range(0, len(resources) + len(slots), BATCH):
        batch = (resources + slots)[first:first + BATCH]
        response = client.post("/fhir", data=orjson.dumps({
            "resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": r, "request": {"method": "PUT",
                                            "url": f"{r['resourceType']}/{r['id']}"}}
                for r in batch]}), headers={"Content-Type": "application/fhir+json"})
        if response.status_code != 200:
            raise RuntimeError(f"SOS data refused: {response.get_data(as_text=True)[:500]}")
    log(f"  SOS Médecins: {associations} associations, {len(schedules)} places, "
        f"{len(slots)} slots written through the application in "
        f"{time.monotonic() - started:.1f} s; {cpts} CPTS offers published")
    state.engine.dispose()
    return {"sos_associations": associations, "sos_places": len(schedules),
            "sos_slots": len(slots), "cpts_offers": cpts}


def association_sirets(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT siret FROM sas_sos_place ORDER BY siret")]


# -- requests ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CptsRequest(SasRequest):
    """The individual search plus the CPTS includes."""

    @property
    def path(self) -> str:
        return super().path + "".join(f"&{k}={v}" for k, v in CPTS_INCLUDES)


@dataclass(frozen=True)
class SosRequest:
    sirets: tuple[str, ...]  # prefixed
    low: datetime  # aware, Europe/Paris
    high: datetime

    @property
    def identifiers(self) -> tuple[str, ...]:
        return self.sirets

    @property
    def path(self) -> str:
        """`/fhir/Schedule?…` as the guide writes it, `+` and `|` percent-encoded."""
        params = [("_revinclude", "Slot:schedule"), ("_include", "Schedule:actor:Location"),
                  ("_include:iterate", "Location:organization"),
                  ("_has:Slot:schedule:start", "ge" + self.low.isoformat(timespec="seconds")),
                  ("_has:Slot:schedule:start", "le" + self.high.isoformat(timespec="seconds")),
                  ("_has:Slot:schedule:status", "free"),
                  ("actor:Location.organization.identifier",
                   ",".join(f"{IDNST_SYSTEM}|{s}" for s in self.sirets))]
        return "/fhir/Schedule?" + "&".join(f"{quote(k, safe=':')}={quote(v, safe=':,')}"
                                            for k, v in params)


def cpts_set(requests: list[SasRequest]) -> list[SasRequest]:
    return [CptsRequest(r.identifiers, r.low, r.high) for r in requests]


def sos_set(sirets: list[str], per_request: int, count: int, start: date, days: int,
            seed: int) -> list[SosRequest]:
    """Requests for `per_request` associations (at most as many as there are) over 72 h."""
    rng = random.Random(f"sos-{seed}-{per_request}")
    found = []
    for _ in range(count):
        low, high = window(start, days, rng)
        found.append(SosRequest(tuple(rng.sample(sirets, min(per_request, len(sirets)))),
                                low, high))
    return found


# -- floors --------------------------------------------------------------------------------------

# The individual floor, plus the CPTS offers the window's slots name and their Organizations.
CPTS_FLOOR_SQL = floor.FLOOR_SQL.rstrip() + """
UNION ALL SELECT 5, 'HealthcareService', r.res_id, r.content
   FROM resources r
  WHERE r.res_type = 'HealthcareService' AND NOT r.deleted AND r.res_id IN (
        SELECT x.target_id FROM sas_slot s JOIN search_reference x ON x.res_pk = s.slot_pk
         WHERE s.schedule_id IN (SELECT res_id FROM schedules) AND s.cpts IS NOT NULL
           AND s.start >= %(low)s AND s.start <= %(high)s
           AND x.param = 'service-type-reference')
UNION ALL SELECT 6, 'Organization', r.res_id, r.content
   FROM resources r
  WHERE r.res_type = 'Organization' AND NOT r.deleted AND r.res_id IN (
        SELECT x.target_id FROM search_reference x JOIN resources h ON h.pk = x.res_pk
         WHERE x.res_type = 'HealthcareService' AND x.param = 'organization'
           AND h.res_id IN (
               SELECT y.target_id FROM sas_slot s JOIN search_reference y
                   ON y.res_pk = s.slot_pk
                WHERE s.schedule_id IN (SELECT res_id FROM schedules) AND s.cpts IS NOT NULL
                  AND s.start >= %(low)s AND s.start <= %(high)s
                  AND y.param = 'service-type-reference'))
"""

SOS_FLOOR_SQL = """
WITH o AS (
    SELECT r.pk, r.res_id, r.content
      FROM unnest(%(ids)s::text[]) AS wanted (code)
     CROSS JOIN LATERAL (
           SELECT t.res_pk FROM search_token t
            WHERE t.res_type = 'Organization' AND t.param = 'identifier'
              AND t.code = wanted.code OFFSET 0) t
      JOIN resources r ON r.pk = t.res_pk
     WHERE NOT r.deleted
), l AS (
    SELECT r.pk, r.res_id, r.content
      FROM search_reference x JOIN resources r ON r.pk = x.res_pk
     WHERE x.res_type = 'Location' AND x.param = 'organization'
       AND x.target_type = 'Organization' AND x.target_id IN (SELECT res_id FROM o)
       AND NOT r.deleted
), schedules AS (
    SELECT r.pk, r.res_id, r.content
      FROM search_reference x JOIN resources r ON r.pk = x.res_pk
     WHERE x.res_type = 'Schedule' AND x.param = 'actor' AND x.target_type = 'Location'
       AND x.target_id IN (SELECT res_id FROM l) AND NOT r.deleted
)
(SELECT 0 AS part, 'Slot' AS res_type, s.slot_id AS res_id, s.sos AS content
   FROM sas_slot s
  WHERE s.schedule_id IN (SELECT res_id FROM schedules) AND s.sos IS NOT NULL
    AND s.start >= %(low)s AND s.start <= %(high)s
  ORDER BY s.start, s.slot_id)
UNION ALL SELECT 1, 'Schedule', res_id, content FROM schedules
UNION ALL SELECT 2, 'Location', res_id, content FROM l
UNION ALL SELECT 3, 'Organization', res_id, content FROM o
"""


def _dump(rows: list[tuple[Any, ...]], base: str, started: float) -> FloorResult:
    entries, slot_ids = [], []
    for part, res_type, res_id, content in rows:
        if part == 0:
            slot_ids.append(res_id)
        entries.append({"fullUrl": f"{base}/{res_type}/{res_id}",
                        "resource": orjson.Fragment(content),
                        "search": floor.MATCH if part == 0 else floor.INCLUDE})
    body = orjson.dumps({"resourceType": "Bundle", "type": "searchset",
                         "total": len(slot_ids), "entry": entries})
    return FloorResult(time.perf_counter() - started, len(slot_ids), len(body),
                       tuple(slot_ids))


def cpts_floor(conn: psycopg.Connection, request: SasRequest, base: str) -> FloorResult:
    started = time.perf_counter()
    rows = conn.execute(CPTS_FLOOR_SQL, floor.parameters(request), prepare=True).fetchall()
    return _dump(rows, base, started)


def sos_floor(conn: psycopg.Connection, request: SosRequest, base: str) -> FloorResult:
    params = {"ids": list(request.sirets), "low": to_utc_naive(request.low),
              "high": to_utc_naive(request.high).replace(microsecond=999999)}
    started = time.perf_counter()
    rows = conn.execute(SOS_FLOOR_SQL, params, prepare=True).fetchall()
    return _dump(rows, base, started)
