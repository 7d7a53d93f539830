"""The benchmark generator (bench/) writes exactly the rows the application would write.

A tiny dataset (50 practitioners, one week across a DST change) is generated into its own
PostgreSQL database; every stored resource is then checked against the application's own
functions (repository meta, indexer, SAS projections, validation), the schema against a freshly
migrated database, and the SAS search through the app against an independent computation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import text

from app import create_app
from app.config import Settings
from app.db import make_engine
from app.identifiers import idnps
from app.sas.place_projection import rebuild
from app.sas.shape import is_sas_visible
from app.sas.slot_projection import projection_row
from app.search.dates import parse_range
from app.storage.indexer import index_rows
from app.storage.migrate import upgrade
from app.validation.references import check_references
from app.validation.structure import validate_structure
from bench import ddl, places, slots
from bench.generate import conninfo, generate
from bench.sas import ACCEPT, SasRequest, practitioner_identifiers
from tests.support.postgres import ThrowawayPostgres

BASE = "http://localhost/fhir"
START = date(2026, 3, 26)  # Paris moves to summer time on Sunday 29 March 2026
TZ = "Europe/Paris"


@pytest.fixture(scope="module")
def bench_url(postgres_server: ThrowawayPostgres) -> str:
    url = postgres_server.create_database("bench_check", exist_ok=True)
    generate(url, practitioners=50, weeks=1, seed=7, start=START, jobs=2, reset=True,
             base_url=BASE, log=lambda _line: None)
    return url


@pytest.fixture(scope="module")
def conn(bench_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(conninfo(bench_url), autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def stored(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT pk, res_type, res_id, version, last_updated, deleted, content"
                        " FROM resources ORDER BY pk").fetchall()


def _index_rows_in_db(conn: psycopg.Connection) -> dict[str, Counter[tuple[Any, ...]]]:
    found: dict[str, Counter[tuple[Any, ...]]] = {}
    for table, columns in slots.INDEX_COLUMNS.items():
        rows = conn.execute(f"SELECT res_pk, {', '.join(columns)} FROM search_{table}")
        found[table] = Counter(tuple(row) for row in rows)
    return found


def test_dataset_has_every_kind_of_resource(stored: list[tuple[Any, ...]]) -> None:
    kinds = Counter(row[1] for row in stored)
    assert kinds["Practitioner"] == 50
    assert kinds["PractitionerRole"] == kinds["Schedule"] >= 50
    assert kinds["Organization"] > 0 and kinds["Location"] > 0
    assert kinds["HealthcareService"] > 0
    assert kinds["Slot"] > 500
    statuses = Counter(orjson.loads(row[6])["status"] for row in stored if row[1] == "Slot")
    assert set(statuses) == {"free", "busy", "busy-unavailable"}
    offsets = {orjson.loads(row[6])["start"][-6:] for row in stored if row[1] == "Slot"}
    assert offsets == {"+01:00", "+02:00"}


def test_resource_rows_are_what_the_repository_stores(conn: psycopg.Connection,
                                                     stored: list[tuple[Any, ...]]) -> None:
    versions = {row[0]: row[1:] for row in conn.execute(
        "SELECT res_pk, version, res_type, res_id, last_updated, deleted, method, content"
        " FROM resource_versions")}
    assert len(versions) == len(stored)
    for pk, res_type, res_id, version, last_updated, deleted, content in stored:
        resource = orjson.loads(content)
        client_side = {k: v for k, v in resource.items() if k not in {"resourceType", "id"}}
        client_side["meta"] = {k: v for k, v in resource["meta"].items()
                               if k not in {"versionId", "lastUpdated"}}
        if not client_side["meta"]:
            del client_side["meta"]
        again = slots.stored(res_type, res_id, client_side, last_updated)
        assert orjson.dumps(again).decode() == content, f"{res_type}/{res_id}"
        assert (version, deleted, resource["id"]) == (1, False, res_id)
        assert parse_range(resource["meta"]["lastUpdated"])[0] == last_updated
        assert versions[pk] == (1, res_type, res_id, last_updated, False, "PUT", content)


def test_index_rows_are_what_the_indexer_computes(conn: psycopg.Connection,
                                                  stored: list[tuple[Any, ...]]) -> None:
    expected: dict[str, Counter[tuple[Any, ...]]] = {t: Counter() for t in slots.INDEX_COLUMNS}
    for pk, res_type, _id, _v, _lu, _d, content in stored:
        for table, rows in index_rows(res_type, orjson.loads(content), default_tz=TZ,
                                      local_base=BASE).items():
            columns = slots.INDEX_COLUMNS[table]
            expected[table].update((pk, *(row[c] for c in columns)) for row in rows)
    found = _index_rows_in_db(conn)
    for table in slots.INDEX_COLUMNS:
        assert found[table] == expected[table], (
            f"search_{table}: missing {list((expected[table] - found[table]).items())[:3]}, "
            f"extra {list((found[table] - expected[table]).items())[:3]}")


def test_sas_slot_rows_are_what_the_projection_computes(conn: psycopg.Connection,
                                                       stored: list[tuple[Any, ...]]) -> None:
    columns = ("slot_pk", "slot_id", "schedule_id", "start", "fragment", "cpts", "sos")
    found = {row[0]: dict(zip(columns, row, strict=True))
             for row in conn.execute(f"SELECT {', '.join(columns)} FROM sas_slot")}
    expected = {}
    for pk, res_type, _id, _v, _lu, _d, content in stored:
        if res_type == "Slot":
            row = projection_row(orjson.loads(content), pk, TZ, BASE)
            if row is not None:
                expected[pk] = row
    assert expected and found == expected
    # The CPTS share: a few % of the slots SAS sees, each naming its département's CPTS.
    shared = [row for row in found.values() if row["cpts"]]
    assert 0 < len(shared) < len(found) / 5


def test_sas_place_rows_are_what_the_projection_computes(bench_url: str,
                                                        conn: psycopg.Connection) -> None:
    columns = ", ".join(places.COLUMNS)
    found = sorted(conn.execute(f"SELECT {columns} FROM sas_place").fetchall())
    engine = make_engine(bench_url)
    try:  # the application's rebuild, from the stored resources, rolled back
        with engine.connect() as db, db.begin() as transaction:
            published = rebuild(db, BASE, Settings.from_env().local_identifier_system)
            expected = sorted(tuple(row) for row in db.execute(
                text(f"SELECT {columns} FROM sas_place")))
            transaction.rollback()
    finally:
        engine.dispose()
    assert published >= 45 and found == expected


def test_resources_pass_the_application_validation(bench_url: str,
                                                   stored: list[tuple[Any, ...]]) -> None:
    app = create_app(Settings.from_env(database_url=bench_url, fhir_base_url=BASE))
    seen: Counter[str] = Counter()
    with app.app_context(), app.extensions["agenda"].reading() as repo:
        for _pk, res_type, _id, _v, _lu, _d, content in stored:
            if seen[res_type] >= 40:
                continue
            seen[res_type] += 1
            resource = orjson.loads(content)
            validate_structure(res_type, resource)
            check_references(repo, res_type, resource)


def test_schema_is_the_migrated_one(conn: psycopg.Connection,
                                    postgres_server: ThrowawayPostgres) -> None:
    reference_url = postgres_server.create_database("bench_check_schema", exist_ok=True)
    engine = make_engine(reference_url)
    upgrade(engine)
    engine.dispose()
    with psycopg.connect(conninfo(reference_url)) as reference:
        assert ddl.capture(conn) == ddl.capture(reference)
    tables = conn.execute("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables"
                          " WHERE schemaname = 'public' AND tablename LIKE 'bench%'").fetchone()
    assert tables[0] == "bench_dataset"  # helper tables are gone
    invalid = conn.execute("SELECT count(*) FROM pg_constraint WHERE NOT convalidated"
                           "   AND connamespace = 'public'::regnamespace").fetchone()[0]
    assert invalid == 0


def test_sas_search_returns_the_expected_slots(bench_url: str, conn: psycopg.Connection,
                                               stored: list[tuple[Any, ...]]) -> None:
    by_key = {(row[1], row[2]): orjson.loads(row[6]) for row in stored}
    identifiers = practitioner_identifiers(conn)
    assert len(identifiers) >= 45  # a few may be inactive
    low = datetime.fromisoformat(f"{START.isoformat()}T08:00:00+01:00")
    high = datetime.fromisoformat(f"{START.replace(day=29).isoformat()}T09:00:00+02:00")
    request = SasRequest(tuple(identifiers[:25]), low, high)
    app = create_app(Settings.from_env(database_url=bench_url, fhir_base_url=BASE))
    response = app.test_client().get(request.path, headers={"Accept": ACCEPT})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = orjson.loads(response.data)

    # Independent answer: the practitioners' schedules, their free SAS-visible slots in the
    # window, for places whose Location has a usable address.
    wanted = set(request.identifiers)
    practitioners = {i for (t, i), r in by_key.items() if t == "Practitioner"
                     and r.get("active", True) and any(
                         idnps(x["value"]) in wanted for x in r["identifier"])}
    schedules = set()
    for (res_type, res_id), resource in by_key.items():
        if res_type != "Schedule":
            continue
        role = by_key[("PractitionerRole", resource["actor"][1]["reference"].split("/")[1])]
        location = by_key[("Location", role["location"][0]["reference"].split("/")[1])]
        owner = resource["actor"][0]["reference"].split("/")[1]
        if owner in practitioners and location["address"].get("line"):
            schedules.add(res_id)
    lo, hi = parse_range(low.isoformat())[0], parse_range(high.isoformat())[1]
    expected = {res_id for (res_type, res_id), r in by_key.items() if res_type == "Slot"
                and r["schedule"]["reference"].split("/")[1] in schedules
                and is_sas_visible(r) and lo <= parse_range(r["start"])[0] <= hi}
    got = {e["resource"]["id"] for e in body["entry"] if e["search"]["mode"] == "match"}
    assert len(expected) > 20, "the sample window should hold free slots"
    assert body["total"] == len(got) and got == expected
    included = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "include"]
    assert {r["resourceType"] for r in included} == {"Practitioner", "PractitionerRole",
                                                     "Schedule"}
    for resource in included:
        if resource["resourceType"] == "Practitioner":
            assert resource["identifier"][0]["value"] in wanted  # always prefixed
