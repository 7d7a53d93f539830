"""The CPTS and SOS Médecins offers of the benchmark dataset (bench/offers.py): their
projections are the application's, and each offer's floor (one SQL statement) returns the
slots the application answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import text

from app import create_app
from app.config import Settings
from app.db import make_engine
from app.sas import cpts_projection, sos_projection
from app.sas.slot_projection import projection_row
from bench import offers
from bench.generate import conninfo, generate
from bench.sas import ACCEPT, practitioner_identifiers, request_set
from tests.support.postgres import ThrowawayPostgres

BASE = "http://localhost/fhir"
START = date(2026, 3, 26)
TZ = "Europe/Paris"


@pytest.fixture(scope="module")
def bench_url(postgres_server: ThrowawayPostgres) -> str:
    url = postgres_server.create_database("bench_offers", exist_ok=True)
    generate(url, practitioners=40, weeks=1, seed=3, start=START, jobs=2, reset=True,
             base_url=BASE, log=lambda _line: None, sos_associations=3)
    return url


@pytest.fixture(scope="module")
def conn(bench_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(conninfo(bench_url), autocommit=True) as connection:
        yield connection


def _rows(bench_url: str, sql: str) -> list[Any]:
    engine = make_engine(bench_url)
    try:
        with engine.connect() as db:
            return sorted(tuple(row) for row in db.execute(text(sql)))
    finally:
        engine.dispose()


def test_the_projections_are_the_applications(bench_url: str, conn: psycopg.Connection) -> None:
    places = {row[0] for row in conn.execute("SELECT schedule_id FROM sas_sos_place")}
    assert len(places) >= 6
    slots = conn.execute("SELECT r.content, s.slot_pk, s.cpts, s.sos FROM sas_slot s"
                         " JOIN resources r ON r.pk = s.slot_pk").fetchall()
    with_sos = 0
    for content, pk, cpts, sos in slots:
        resource = orjson.loads(content)
        schedule_id = resource["schedule"]["reference"].split("/")[1]
        row = projection_row(resource, pk, TZ, BASE, sos_place=schedule_id in places)
        assert row is not None and (row["cpts"], row["sos"]) == (cpts, sos), resource["id"]
        with_sos += sos is not None
    assert with_sos > 100
    stored = (_rows(bench_url, "SELECT * FROM sas_cpts"),
              _rows(bench_url, "SELECT * FROM sas_sos_place"))
    engine = make_engine(bench_url)
    try:  # the application's rebuilds, rolled back
        with engine.connect() as db, db.begin() as transaction:
            assert cpts_projection.rebuild(db, BASE) == len(stored[0]) > 0
            sos_projection.rebuild(db, BASE, Settings.from_env().local_identifier_system)
            rebuilt = (sorted(tuple(r) for r in db.execute(text("SELECT * FROM sas_cpts"))),
                       sorted(tuple(r) for r in db.execute(text("SELECT * FROM sas_sos_place"))))
            transaction.rollback()
    finally:
        engine.dispose()
    assert rebuilt == stored


def _answer(bench_url: str, path: str) -> dict[str, Any]:
    app = create_app(Settings.from_env(database_url=bench_url, fhir_base_url=BASE,
                                       security_profile="development"))
    response = app.test_client().get(path, headers={"Accept": ACCEPT})
    assert response.status_code == 200, response.get_data(as_text=True)
    answer: dict[str, Any] = orjson.loads(response.data)
    return answer


def _matches(answer: dict[str, Any]) -> tuple[str, ...]:
    return tuple(e["resource"]["id"] for e in answer.get("entry", [])
                 if e["search"]["mode"] == "match")


def test_the_floors_return_what_the_application_answers(bench_url: str,
                                                        conn: psycopg.Connection) -> None:
    identifiers = practitioner_identifiers(conn)
    cpts_requests = offers.cpts_set(request_set(identifiers, 25, 3, START, 7, 1))
    shared = 0
    for request in cpts_requests:
        answer = _answer(bench_url, request.path)
        assert answer["meta"]["profile"] == [
            "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
            "sas-cpts-bundle-aggregator"]
        floor = offers.cpts_floor(conn, request, BASE)
        # The floor reads practice places from the resources: the same slots, whichever
        # places the application publishes (those with an address).
        assert set(_matches(answer)) <= set(floor.slot_ids)
        shared += sum(e["resource"]["resourceType"] == "HealthcareService"
                      for e in answer.get("entry", []))
    assert shared > 0
    sirets = offers.association_sirets(conn)
    assert len(sirets) == 3
    for request in offers.sos_set(sirets, 25, 3, START, 7, 1):
        answer = _answer(bench_url, request.path)
        assert _matches(answer) == offers.sos_floor(conn, request, BASE).slot_ids
        assert answer["total"] > 0
