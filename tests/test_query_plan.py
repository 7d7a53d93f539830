"""Does the SAS slot search use our indexes? EXPLAIN on a modest dataset, on both backends.

Dataset: 300 practitioners, one Schedule each (planning horizon: March 2026), 20 slots per
Schedule over ten days (6,000 slots), written through the Repository (so indexed exactly as
in production) in one transaction, then ANALYZEd.

The query is the one the SAS platform sends:

    Slot?schedule.actor:Practitioner.identifier=<RPPS>|<n°>&status=free
        &start=ge…&start=le…&_include=Slot:schedule&_include:iterate=Schedule:actor

Its SQL is built with parse_query + resource_filter (+ order_by, as run_search does), compiled
for the engine's dialect with literal values, and explained. The plans are printed (run with
`-s` to read them); `enable_seqscan` is left alone: with up-to-date statistics the planner has
to find the index paths by itself.

What the PostgreSQL plan shows: it starts from the RPPS number (ix_search_token_code), walks
back the two references (ix_search_reference_*), reaches each Slot by primary key and checks
the date and status criteria per Slot (ix_search_date_res, ix_search_token_res): the work is
proportional to the practitioner's slots, not to the table sizes. SQLite materialises each
IN-subquery once, each through an index (no table scan).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, Select, func, select, text

from app.config import Settings
from app.db import write_transaction
from app.search.engine import run_search
from app.search.query import parse_query
from app.search.sql import SqlContext, order_by, resource_filter
from app.storage.maintenance import truncate_all
from app.storage.repository import Repository
from app.storage.schema import resources
from tests.search_data import BASE, RPPS, practitioner, schedule, slot

PRACTITIONERS = 300
SLOTS_PER_SCHEDULE = 20
WATCHED_TABLES = ("resources", "search_date", "search_token", "search_reference")

TARGET = 7  # the practitioner the query asks for
SAS_PARAMS = [
    ("_include", "Slot:schedule"),
    ("_include:iterate", "Schedule:actor"),
    ("start", "ge2026-03-03T00:00:00+01:00"),
    ("start", "le2026-03-04T23:59:59+01:00"),
    ("schedule.actor:Practitioner.identifier", f"{RPPS}|81{TARGET:010d}"),
    ("status", "free"),
]


def rpps(n: int) -> str:
    """An IDNPS (8 + 11-digit RPPS number), the form SAS sends."""
    return f"81{n:010d}"


def slot_start(j: int) -> str:
    """Slot j of a schedule: two a day (09:00 and 14:00 Paris time) from 2 March."""
    return f"2026-03-{2 + j // 2:02d}T{9 + 5 * (j % 2):02d}:00:00+01:00"


@pytest.fixture(scope="module")
def settings(engine: Engine, database_url: str) -> Iterator[Settings]:
    truncate_all(engine)
    config = Settings.from_env(database_url=database_url, fhir_base_url=BASE)
    with write_transaction(engine) as conn:
        repo = Repository(conn, config)  # no validation interceptor: the data is ours
        for i in range(PRACTITIONERS):
            repo.create("Practitioner", practitioner(f"p{i}", rpps(i), family=f"Nom{i}"),
                        f"p{i}")
            repo.create("Schedule", schedule(f"sch{i}", f"Practitioner/p{i}",
                                             start="2026-03-01", end="2026-03-31"), f"sch{i}")
            for j in range(SLOTS_PER_SCHEDULE):
                status = "busy" if j % 4 == 0 else "free"
                repo.create("Slot", slot(f"sl{i}-{j}", f"sch{i}", slot_start(j), status=status,
                                         security=("PUBLIC",)), f"sl{i}-{j}")
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    yield config
    truncate_all(engine)


def _sql(engine: Engine, statement: Select) -> str:
    return str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


def _statements(engine: Engine, config: Settings) -> dict[str, str]:
    query = parse_query("Slot", SAS_PARAMS)
    ctx = SqlContext(config.default_timezone, config.fhir_base_url)
    where = resource_filter(resources, "Slot", query.criteria, ctx)
    page = (select(resources).where(where).order_by(*order_by(resources, query.sort))
            .limit(50).offset(0))
    count = select(func.count()).select_from(resources).where(where)
    return {"page": _sql(engine, page), "count": _sql(engine, count)}


# -- PostgreSQL ------------------------------------------------------------------------------

def _pg_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _pg_nodes(child)


def _explain_postgresql(engine: Engine, sql: str) -> tuple[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        raw = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
        readable = "\n".join(conn.execute(text(f"EXPLAIN {sql}")).scalars())
    document = raw if isinstance(raw, list) else json.loads(raw)
    return readable, list(_pg_nodes(document[0]["Plan"]))


def _check_postgresql(engine: Engine, name: str, sql: str) -> None:
    readable, nodes = _explain_postgresql(engine, sql)
    print(f"\n--- PostgreSQL plan of the {name} query ---\n{readable}")
    seq_scans = [n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"
                 and n.get("Relation Name") in WATCHED_TABLES]
    assert seq_scans == [], f"sequential scans on {seq_scans}:\n{readable}"
    used = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert "ix_search_token_code" in used, readable
    assert any(i.startswith("ix_search_reference_") for i in used), readable
    assert any(i.startswith("ix_search_date_") for i in used), readable


# -- SQLite ----------------------------------------------------------------------------------

TABLE_SCAN = re.compile(rf"^SCAN ({'|'.join(WATCHED_TABLES)})\b")


def _check_sqlite(engine: Engine, name: str, sql: str) -> None:
    with engine.connect() as conn:
        details = [row[3] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
    readable = "\n".join(details)
    print(f"\n--- SQLite plan of the {name} query ---\n{readable}")
    scans = [d for d in details if TABLE_SCAN.match(d)]
    assert scans == [], f"full scans {scans}:\n{readable}"
    assert any("USING INDEX ix_search_token_code" in d for d in details), readable
    assert any("USING INDEX ix_search_reference_" in d for d in details), readable
    assert any(d.startswith("SEARCH search_date USING INDEX ix_search_date_")
               for d in details), readable


# -- tests -----------------------------------------------------------------------------------

def test_dataset_is_loaded(engine: Engine, settings: Settings) -> None:
    with engine.connect() as conn:
        counts = dict(conn.execute(select(resources.c.res_type, func.count())
                                   .group_by(resources.c.res_type)).all())
    assert counts == {"Practitioner": PRACTITIONERS, "Schedule": PRACTITIONERS,
                      "Slot": PRACTITIONERS * SLOTS_PER_SCHEDULE}


@pytest.mark.parametrize("name", ["page", "count"])
def test_sas_search_plan_uses_the_indexes(engine: Engine, settings: Settings,
                                          name: str) -> None:
    sql = _statements(engine, settings)[name]
    if engine.dialect.name == "postgresql":
        _check_postgresql(engine, name, sql)
    else:
        _check_sqlite(engine, name, sql)


def test_sas_search_returns_the_right_slots_and_includes(engine: Engine,
                                                         settings: Settings) -> None:
    # 3 and 4 March are slots 2–5; slot 4 is busy.
    with engine.connect() as conn, conn.begin():
        result = run_search(Repository(conn, settings), parse_query("Slot", SAS_PARAMS))
    assert result.total == 3
    assert [m.resource_id for m in result.matches] == [f"sl{TARGET}-2", f"sl{TARGET}-3",
                                                      f"sl{TARGET}-5"]
    assert {(i.resource_type, i.resource_id) for i in result.included} == {
        ("Schedule", f"sch{TARGET}"), ("Practitioner", f"p{TARGET}")}


def test_or_of_two_practitioners_at_scale(engine: Engine, settings: Settings) -> None:
    params = [("schedule.actor:Practitioner.identifier",
               f"{RPPS}|{rpps(81)},{RPPS}|{rpps(82)}"),
              ("start", "ge2026-03-02T00:00:00+01:00"), ("start", "le2026-03-02T23:59:59+01:00"),
              ("_sort", "start,_id")]
    with engine.connect() as conn, conn.begin():
        result = run_search(Repository(conn, settings), parse_query("Slot", params))
    assert [m.resource_id for m in result.matches] == ["sl81-0", "sl82-0", "sl81-1", "sl82-1"]
