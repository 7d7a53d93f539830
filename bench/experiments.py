"""Measure proposed app/ changes without editing app/ (the owner of app/ applies them).

`build_app()` (served by `python -m bench.run --app bench.patched_wsgi:app`) patches the
application in memory according to BENCH_PATCHES (comma-separated):

- `onequery`: SasAggregator.search fetches the practitioners (one index probe per national
  id), roles, schedules, locations/organizations and window slots in ONE statement with
  array parameters (constant SQL text: cached by SQLAlchemy, prepared by psycopg), instead
  of five statements with expanding IN lists and a `code IN (…)` the planner turns into a
  filter over every IDNPS row;
- `noping`: the engine without `pool_pre_ping` (one round trip less per request);
- `sasplace`: the included resources come pre-shaped from a projection table (like
  `sas_slot` for slots): one row per practice place with the shaped Practitioner,
  PractitionerRole (Location contained) and Schedule, keyed by prefixed IDNPS. The bench
  builds it with the application's own shape functions (`places build|drop`); in app/ an
  interceptor would keep it in step with Practitioner/PractitionerRole/Schedule/Location/
  Organization writes. One statement, no JSON parsing or shaping per request.

The statistics change is a database change, applied and reverted with:

    python -m bench.experiments stats apply|drop --database-url URL
    python -m bench.experiments places build|drop --database-url URL

and `python -m bench.experiments check --database-url URL` compares, request by request,
the Bundle entries of the patched and the unpatched application (in-process).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import psycopg
from sqlalchemy import String, bindparam, create_engine, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Settings
from app.identifiers import IDNPS_SYSTEM
from app.sas import aggregator
from app.sas.aggregator import Found, SasAggregator, _active
from app.sas.request import SasSearch

SEARCH_SQL = text("""
WITH p AS (
    SELECT r.pk, r.res_id, r.content
      FROM unnest(CAST(:ids AS text[])) AS wanted (code)
     CROSS JOIN LATERAL (
           SELECT t.res_pk FROM search_token t
            WHERE t.res_type = 'Practitioner' AND t.param = 'identifier'
              AND t.code = wanted.code AND t.system = :system OFFSET 0) t
      JOIN resources r ON r.pk = t.res_pk
     WHERE r.res_type = 'Practitioner' AND NOT r.deleted
), roles AS (
    SELECT r.pk, r.res_id, r.content
      FROM search_reference x JOIN resources r ON r.pk = x.res_pk
     WHERE x.res_type = 'PractitionerRole' AND x.param = 'practitioner' AND x.url IS NULL
       AND x.target_type = 'Practitioner' AND x.target_id IN (SELECT res_id FROM p)
       AND r.res_type = 'PractitionerRole' AND NOT r.deleted
), schedules AS (
    SELECT r.pk, r.res_id, r.content FROM resources r
     WHERE r.pk IN (
           SELECT x.res_pk FROM search_reference x
            WHERE x.res_type = 'Schedule' AND x.param = 'actor' AND x.url IS NULL
              AND x.target_type = 'PractitionerRole' AND x.target_id IN (SELECT res_id FROM roles)
           UNION
           SELECT x.res_pk FROM search_reference x
            WHERE x.res_type = 'Schedule' AND x.param = 'actor' AND x.url IS NULL
              AND x.target_type = 'Practitioner' AND x.target_id IN (SELECT res_id FROM p))
       AND r.res_type = 'Schedule' AND NOT r.deleted
), around AS (
    SELECT r.res_type, r.res_id, r.content FROM resources r
     WHERE (r.res_type, r.res_id) IN (
           SELECT x.target_type, x.target_id FROM search_reference x
            WHERE x.res_pk IN (SELECT pk FROM roles) AND x.url IS NULL
              AND x.param IN ('location', 'organization')
           UNION
           SELECT x.target_type, x.target_id FROM search_reference x
            WHERE x.res_pk IN (SELECT pk FROM schedules) AND x.url IS NULL
              AND x.param = 'actor' AND x.target_type = 'Location')
       AND NOT r.deleted
)
SELECT 0 AS part, 'Practitioner' AS res_type, res_id, NULL AS schedule_id, content FROM p
UNION ALL SELECT 1, 'PractitionerRole', res_id, NULL, content FROM roles
UNION ALL SELECT 2, 'Schedule', res_id, NULL, content FROM schedules
UNION ALL SELECT 3, res_type, res_id, NULL, content FROM around
UNION ALL (SELECT 4, 'Slot', s.slot_id, s.schedule_id, s.fragment FROM sas_slot s
            WHERE s.schedule_id IN (SELECT res_id FROM schedules)
              AND s.start >= :low AND s.start <= :high
            ORDER BY s.start, s.slot_id)
""").bindparams(bindparam("ids", type_=ARRAY(String)))


class SlotRow(NamedTuple):
    slot_id: str
    schedule_id: str
    fragment: str


def search_in_one_statement(self: SasAggregator, search: SasSearch) -> Found:
    """Same Found as SasAggregator.search, from one round trip."""
    found = Found()
    slots: list[SlotRow] = []
    parts: list[dict[str, Any]] = [found.practitioners, found.roles, found.schedules]
    for part, res_type, res_id, schedule_id, content in self.repo.conn.execute(
            SEARCH_SQL, {"ids": list(search.identifiers), "system": IDNPS_SYSTEM,
                         "low": search.low, "high": search.high}):
        if part == 4:
            slots.append(SlotRow(res_id, schedule_id, content))
        elif part == 3:
            found.around[f"{res_type}/{res_id}"] = orjson.loads(content)
        else:
            resource = orjson.loads(content)
            if _active(resource):
                parts[part][res_id] = resource
    found.places = self._places(found.practitioners, found.roles, found.schedules)
    placed = {p.schedule_id for p in found.places}
    found.slots = [row for row in slots if row.schedule_id in placed]
    return found


def stats(action: str, url: str) -> None:
    """Extended statistics on the correlated (res_type, param, system|target_type) columns."""
    with psycopg.connect(url, autocommit=True) as conn:
        if action == "apply":
            conn.execute("CREATE STATISTICS IF NOT EXISTS bench_st_token (mcv)"
                         " ON res_type, param, system FROM search_token")
            conn.execute("CREATE STATISTICS IF NOT EXISTS bench_st_reference (mcv)"
                         " ON res_type, param, target_type FROM search_reference")
        else:
            conn.execute("DROP STATISTICS IF EXISTS bench_st_token")
            conn.execute("DROP STATISTICS IF EXISTS bench_st_reference")
        conn.execute("ANALYZE search_token")
        conn.execute("ANALYZE search_reference")


PLACES_SOURCE_SQL = """
SELECT s.res_id, s.content, ro.res_id, ro.content, pr.res_id, pr.content,
       lo.res_id, lo.content, og.content
  FROM resources s
  JOIN search_reference xa ON xa.res_pk = s.pk AND xa.param = 'actor'
   AND xa.target_type = 'PractitionerRole' AND xa.url IS NULL
  JOIN resources ro ON ro.res_type = 'PractitionerRole' AND ro.res_id = xa.target_id
  JOIN search_reference xp ON xp.res_pk = ro.pk AND xp.param = 'practitioner' AND xp.url IS NULL
  JOIN resources pr ON pr.res_type = 'Practitioner' AND pr.res_id = xp.target_id
  LEFT JOIN search_reference xl ON xl.res_pk = ro.pk AND xl.param = 'location'
  LEFT JOIN resources lo ON lo.res_type = 'Location' AND lo.res_id = xl.target_id
  LEFT JOIN search_reference xo ON xo.res_pk = ro.pk AND xo.param = 'organization'
  LEFT JOIN resources og ON og.res_type = 'Organization' AND og.res_id = xo.target_id
 WHERE s.res_type = 'Schedule' AND NOT s.deleted AND NOT ro.deleted AND NOT pr.deleted
"""


def places(action: str, url: str) -> None:
    """Build (or drop) bench_sas_place with the application's shape functions."""
    from app.identifiers import idnps
    from app.sas import shape

    # as SasAggregator._place_location does
    id_system = Settings.from_env().local_identifier_system + "/location"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_sas_place")
        if action == "drop":
            return
        conn.execute("CREATE TABLE bench_sas_place (idnps text NOT NULL, schedule_id text"
                     " NOT NULL, practitioner_id text NOT NULL, role_id text NOT NULL,"
                     " practitioner text NOT NULL, role text NOT NULL, schedule text NOT NULL)")
        with psycopg.connect(url) as reader, reader.cursor() as source, conn.cursor().copy(
                "COPY bench_sas_place FROM STDIN") as copy:
            for (schedule_id, schedule_json, role_id, role_json, practitioner_id,
                 practitioner_json, location_id, location_json,
                 organization_json) in source.execute(PLACES_SOURCE_SQL):
                role, person = orjson.loads(role_json), orjson.loads(practitioner_json)
                if not (_active(role) and _active(person) and _active(
                        orjson.loads(schedule_json)) and location_json):
                    continue
                place = shape.location(orjson.loads(location_json), location_id, id_system)
                if place is None:
                    continue  # no usable address: never published
                organization = orjson.loads(organization_json) if organization_json else None
                shaped = (orjson.dumps(shape.practitioner(person)).decode(),
                          orjson.dumps(shape.practitioner_role(
                              role, practitioner_id, place, organization)).decode(),
                          orjson.dumps(shape.schedule(schedule_id, practitioner_id,
                                                      role_id)).decode())
                for value in {idnps(str(i["value"])) for i in person.get("identifier") or []
                              if i.get("system") == IDNPS_SYSTEM and i.get("value")}:
                    copy.write_row((value, schedule_id, practitioner_id, role_id, *shaped))
        conn.execute("CREATE INDEX bench_sas_place_idnps ON bench_sas_place (idnps)")
        conn.execute("ANALYZE bench_sas_place")


PLACE_SQL = text("""
WITH places AS (
    SELECT schedule_id, practitioner_id, role_id, practitioner, role, schedule
      FROM bench_sas_place WHERE idnps = ANY(CAST(:ids AS text[]))
)
SELECT 0 AS part, schedule_id, practitioner_id, role_id, practitioner, role, schedule
  FROM places
UNION ALL (SELECT 1, s.slot_id, s.schedule_id, NULL, s.fragment, NULL, NULL FROM sas_slot s
            WHERE s.schedule_id IN (SELECT schedule_id FROM places)
              AND s.start >= :low AND s.start <= :high
            ORDER BY s.start, s.slot_id)
""").bindparams(bindparam("ids", type_=ARRAY(String)))


def bundle_from_places(self: SasAggregator, search: SasSearch, self_url: str,
                       public_web_url: str) -> bytes:
    """Same bytes as SasAggregator.bundle, from pre-shaped rows: no parsing, no shaping."""
    found_places = []
    slots = []
    for part, a, b, c, d, e, f in self.repo.conn.execute(
            PLACE_SQL, {"ids": list(search.identifiers), "low": search.low,
                        "high": search.high}):
        if part == 1:
            slots.append(SlotRow(a, b, d))
        else:
            found_places.append((a, b, c, d, e, f))
    with_slots = {row.schedule_id for row in slots}
    included: dict[tuple[str, str], Any] = {}
    for schedule_id, practitioner_id, role_id, person, role, schedule in sorted(found_places):
        if schedule_id in with_slots:
            included[("Schedule", schedule_id)] = orjson.Fragment(schedule)
            included.setdefault(("Practitioner", practitioner_id), orjson.Fragment(person))
            included.setdefault(("PractitionerRole", role_id), orjson.Fragment(role))
    return self._assemble(slots, included, self_url, public_web_url)


ORIGINAL = {"search": SasAggregator.search, "bundle": SasAggregator.bundle}


def _restore() -> None:
    for name, function in ORIGINAL.items():
        setattr(aggregator.SasAggregator, name, function)


def build_app(patches_text: str | None = None, settings: Settings | None = None) -> Any:
    text_value = os.environ.get("BENCH_PATCHES", "") if patches_text is None else patches_text
    patches = {p.strip() for p in text_value.split(",") if p.strip()}
    unknown = patches - {"onequery", "noping", "sasplace"}
    if unknown:
        raise ValueError(f"unknown BENCH_PATCHES: {sorted(unknown)}")
    if "onequery" in patches:
        aggregator.SasAggregator.search = search_in_one_statement  # type: ignore[method-assign]
    if "sasplace" in patches:
        aggregator.SasAggregator.bundle = bundle_from_places  # type: ignore[method-assign]
    settings = settings or Settings.from_env()
    engine = None
    if "noping" in patches:
        url = make_url(settings.database_url).set(drivername="postgresql+psycopg")
        engine = create_engine(url, pool_pre_ping=False, pool_size=10, max_overflow=10)
    return create_app(settings, engine=engine)


def check(database_url: str, count: int, seed: int, variant: str) -> int:
    """Patched and unpatched answers must carry the same entries, in the same order."""
    from datetime import date

    from bench.generate import conninfo
    from bench.run import _dataset
    from bench.sas import ACCEPT, practitioner_identifiers, request_set

    url = conninfo(database_url)
    info = _dataset(url)
    with psycopg.connect(url) as conn:
        identifiers = practitioner_identifiers(conn)
    settings = Settings.from_env(database_url=database_url, fhir_base_url=info["base_url"])
    answers: list[list[Any]] = []
    for patches in ("", variant):
        _restore()
        client = build_app(patches, settings).test_client()
        found = []
        for k in (1, 25):
            for request in request_set(identifiers, k, count, date.fromisoformat(info["start"]),
                                       info["weeks"] * 7, seed):
                body = orjson.loads(client.get(request.path, headers={"Accept": ACCEPT}).data)
                found.append((body["total"], body.get("entry", [])))
        answers.append(found)
    _restore()
    differing = sum(1 for a, b in zip(*answers, strict=True) if a != b)
    print(f"{len(answers[0])} requests compared, {differing} differ")
    return 1 if differing else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("stats", "places", "check"))
    parser.add_argument("action", nargs="?",
                        help="stats: apply|drop; places: build|drop; check: the patches")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    from bench.generate import conninfo

    if args.what == "check":
        return check(args.database_url, args.requests, args.seed, args.action or "onequery")
    if args.what == "places" and args.action in ("build", "drop"):
        places(args.action, conninfo(args.database_url))
    elif args.what == "stats" and args.action in ("apply", "drop"):
        stats(args.action, conninfo(args.database_url))
    else:
        parser.error(f"{args.what} {args.action}: unknown action")
    return 0


if __name__ == "__main__":
    sys.exit(main())
