"""The SAS search's single-statement read (bench/README.md, "Fixed cost per request"):
`read_transaction(autocommit=True)` sends no BEGIN/COMMIT on PostgreSQL, and the pooled
connection goes back to transactional reads for everyone else."""

from __future__ import annotations

from sqlalchemy import Engine, text

from app.db import is_postgresql, read_transaction


def _in_transaction(engine: Engine, autocommit: bool) -> bool:
    with read_transaction(engine, autocommit) as conn:
        if is_postgresql(engine):
            # now() is the transaction's start: equal to the statement's clock only inside
            # an explicit transaction that began earlier
            conn.execute(text("SELECT pg_sleep(0.01)"))
            started, statement = conn.execute(
                text("SELECT now(), statement_timestamp()")).one()
            return bool(started < statement)
        return bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]


def test_autocommit_read_runs_each_statement_on_its_own(engine: Engine) -> None:
    assert _in_transaction(engine, autocommit=False)
    # SQLite keeps its (in-process) transaction; PostgreSQL saves the BEGIN/COMMIT
    assert _in_transaction(engine, autocommit=True) is not is_postgresql(engine)
    # the pooled connection is transactional again for the next reader
    assert _in_transaction(engine, autocommit=False)


def test_autocommit_read_returns_rows(engine: Engine) -> None:
    with read_transaction(engine, autocommit=True) as conn:
        assert conn.execute(text("SELECT 1 + 1")).scalar_one() == 2
