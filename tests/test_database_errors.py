"""Database errors through HTTP: 503 only for an outage, 400 for a query the database refuses
for its size, 500 (nothing leaked) for the rest. Classification: app/db_errors.py.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import create_app
from app.config import Settings
from app.db import make_engine
from app.db_errors import DatabaseFault, classify
from app.storage.maintenance import truncate_all
from tests.factories import BASE_URL, assert_outcome, body
from tests.support.postgres import free_port


class _PgError(Exception):
    """What psycopg raises: a message and a SQLSTATE."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


def _wrapped(original: Exception, *, invalidated: bool = False,
             statement: str | None = "SELECT 1") -> OperationalError:
    return OperationalError(statement, {}, original, connection_invalidated=invalidated)


@pytest.mark.parametrize("error,fault", [
    (_wrapped(_sqlite_error("Expression tree is too large (maximum depth 1000)", 1)),
     DatabaseFault.TOO_COMPLEX),
    (_wrapped(_sqlite_error("too many SQL variables", 1)), DatabaseFault.TOO_COMPLEX),
    (_wrapped(_sqlite_error("too many terms in compound SELECT", 1)), DatabaseFault.TOO_COMPLEX),
    (_wrapped(_sqlite_error("string or blob too big", 18)), DatabaseFault.TOO_COMPLEX),
    (_wrapped(_sqlite_error("database is locked", 5)), DatabaseFault.UNAVAILABLE),
    (_wrapped(_sqlite_error("disk I/O error", 10 | (1 << 8))), DatabaseFault.UNAVAILABLE),
    (_wrapped(_sqlite_error("unable to open database file", 14)), DatabaseFault.UNAVAILABLE),
    (_wrapped(_sqlite_error("no such table: resources", 1)), DatabaseFault.OTHER),
    (_wrapped(_PgError("stack depth limit exceeded", "54001")), DatabaseFault.TOO_COMPLEX),
    (_wrapped(_PgError("sending query and params failed: number of parameters must be "
                       "between 0 and 65535", None)), DatabaseFault.TOO_COMPLEX),
    (_wrapped(_PgError("terminating connection due to administrator command", "57P01")),
     DatabaseFault.UNAVAILABLE),
    (_wrapped(_PgError("sorry, too many clients already", "53300")), DatabaseFault.UNAVAILABLE),
    (_wrapped(_PgError("could not serialize access", "40001")), DatabaseFault.UNAVAILABLE),
    (_wrapped(_PgError("server closed the connection unexpectedly", None), invalidated=True),
     DatabaseFault.UNAVAILABLE),
    (_wrapped(_PgError("connection failed: Connection refused", None), statement=None),
     DatabaseFault.UNAVAILABLE),
    (_wrapped(_PgError('relation "nope" does not exist', "42P01")), DatabaseFault.OTHER),
    (PoolTimeout("QueuePool limit of size 10 overflow 10 reached"), DatabaseFault.UNAVAILABLE),
    (ValueError("not a database error"), DatabaseFault.OTHER),
])
def test_classification(error, fault):
    assert classify(error) is fault


def _failing_search(client: Any, monkeypatch: Any, error: Exception) -> Any:
    def fail(*_: Any, **__: Any) -> None:
        raise error

    monkeypatch.setattr("app.fhir.interactions.run_search", fail)
    return client.get("/fhir/Practitioner")


def test_a_pool_timeout_is_503(client, monkeypatch):
    response = _failing_search(client, monkeypatch, PoolTimeout("QueuePool limit reached"))
    outcome = assert_outcome(response, 503, "transient")
    assert "retry" in outcome["issue"][0]["diagnostics"]


def test_an_unexplained_database_error_is_500_and_leaks_nothing(client, monkeypatch):
    error = _wrapped(_sqlite_error("no such table: resources", 1), statement="SELECT secret")
    response = _failing_search(client, monkeypatch, error)
    assert_outcome(response, 500, "exception")
    assert "secret" not in response.get_data(as_text=True)
    assert "resources" not in response.get_data(as_text=True)


def test_an_unreachable_database_is_503():
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere"
    settings = Settings.from_env(database_url=url, fhir_base_url=BASE_URL)
    client = create_app(settings, engine=make_engine(url)).test_client()
    outcome = assert_outcome(client.get("/fhir/Practitioner"), 503, "transient")
    assert outcome["issue"][0]["diagnostics"] == "The database is temporarily unavailable; retry"


def test_a_query_the_database_refuses_for_its_size_is_400_not_503(engine, database_url,
                                                                  db_backend):
    """With the search limits lifted, the database's own limit is reached: SQLite's expression
    depth (1,100 AND-ed parameters), PostgreSQL's 65,535 parameters per statement."""
    truncate_all(engine)
    settings = Settings.from_env(database_url=database_url, fhir_base_url=BASE_URL,
                                 max_or_values=100_000, max_search_values=100_000,
                                 max_search_params=100_000)
    client = create_app(settings, engine=engine).test_client()
    query = ("&".join(["name=a"] * 1100) if db_backend == "sqlite"
             else "_id=" + ",".join(f"x{i}" for i in range(70_000)))
    response = client.get(f"/fhir/Practitioner?{query}")
    outcome = assert_outcome(response, 400, "too-costly")
    assert "too complex for the database" in outcome["issue"][0]["diagnostics"]
    assert body(client.get("/fhir/Practitioner?name=a"))["total"] == 0  # still serving


def test_programming_errors_are_not_outages():
    error = ProgrammingError("SELECT", {}, _PgError("syntax error", "42601"))
    assert classify(error) is DatabaseFault.OTHER
