"""When a unit of work's staged rows reach the database (app/storage/repository.py): reads by
key and reads of tables nothing was staged for let the flush wait, so that a single write's
rows go together at the end; reads of staged tables see them. On both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db import write_transaction
from app.db_errors import DatabaseFault, classify
from app.outcome import Conflict
from app.storage.maintenance import truncate_all
from app.storage.repository import Repository
from app.storage.schema import resource_versions, resources, sas_slot, sas_sos_place


@pytest.fixture
def repo(engine: Engine, database_url: str) -> Iterator[Repository]:
    truncate_all(engine)
    with write_transaction(engine) as conn:
        unit = Repository(conn, Settings.from_env(database_url=database_url))
        yield unit
        unit.finish()


def _stored(conn: Connection, resource_id: str) -> int:
    return conn.execute(text("SELECT count(*) FROM resources WHERE res_id = :i"),
                        {"i": resource_id}).scalar_one()


def location(resource_id: str) -> dict[str, str]:
    return {"resourceType": "Location", "id": resource_id, "name": f"Cabinet {resource_id}"}


def test_reads_by_key_and_of_other_tables_leave_the_rows_staged(repo: Repository) -> None:
    repo.create("Location", location("l1"), "l1")
    conn = repo.connection_for(sas_sos_place, sas_slot)  # nothing staged for them
    assert _stored(conn, "l1") == 0
    assert repo.find("Location", "l1") is not None  # the unit knows what it wrote
    assert repo.exists("Location", "l1") and not repo.exists("Location", "l2")
    assert repo.existing({"Location": {"l1", "l2"}}) == {("Location", "l1")}
    assert _stored(conn, "l1") == 0
    assert _stored(repo.connection_for(resource_versions), "l1") == 1  # its version: flushed


def test_a_read_of_the_staged_tables_sees_them(repo: Repository) -> None:
    repo.create("Location", location("l1"), "l1")
    assert _stored(repo.connection_for(resources), "l1") == 1
    repo.create("Location", location("l2"), "l2")
    assert _stored(repo.conn, "l2") == 1  # `conn`: everything staged first


def test_existence_of_many_ids_across_statements(engine: Engine, database_url: str) -> None:
    """More ids than one statement takes on SQLite (chunks of 500) and than the unit knows."""
    truncate_all(engine)
    settings = Settings.from_env(database_url=database_url)
    with write_transaction(engine) as conn:
        unit = Repository(conn, settings)
        for n in range(1200):
            unit.create("Location", location(f"l{n}"), f"l{n}")
        unit.delete("Location", "l7")
        unit.finish()
    wanted = {f"l{n}" for n in range(0, 1300, 2)} | {"l7"}
    with write_transaction(engine) as conn:
        found = Repository(conn, settings).existing({"Location": wanted,
                                                     "Organization": {"l2"}})
    assert found == {("Location", f"l{n}") for n in range(0, 1200, 2)}


@pytest.mark.parametrize("count", [1, 60], ids=["pipelined", "by COPY"])
def test_a_key_taken_meanwhile_is_a_conflict(engine: Engine, database_url: str,
                                             count: int) -> None:
    """The flush meets a unique key another transaction took (PostgreSQL: in the pipeline
    or the COPY, the driver's own error): the repository answers 409, never 500."""
    truncate_all(engine)
    settings = Settings.from_env(database_url=database_url)
    with write_transaction(engine) as conn:
        first = Repository(conn, settings)
        first.create("Location", location("taken"), "taken")
        first.finish()
    with pytest.raises(Conflict), write_transaction(engine) as conn:
        unit = Repository(conn, settings)
        for n in range(count - 1):
            unit.create("Location", location(f"new{n}"), f"new{n}")
        unit.create("Location", location("taken"), "taken")  # not read first: not known
        unit.finish()
    with engine.connect() as conn:
        assert _stored(conn, "new0") == 0


def test_a_connection_lost_before_the_flush_is_an_outage(engine: Engine, database_url: str,
                                                         db_backend: str) -> None:
    if db_backend != "postgresql":
        pytest.skip("an SQLite database has no server to lose")
    truncate_all(engine)
    settings = Settings.from_env(database_url=database_url)
    with pytest.raises(DBAPIError) as raised, write_transaction(engine) as conn:
        unit = Repository(conn, settings)
        unit.create("Location", location("l1"), "l1")
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        unit.finish()
    assert classify(raised.value) is DatabaseFault.UNAVAILABLE
    engine.dispose()
    with engine.connect() as conn:
        assert _stored(conn, "l1") == 0
