"""Database engine creation, tuned per backend."""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError


def make_engine(database_url: str, echo: bool = False) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    # No pool_pre_ping: its SELECT 1 is one more round trip on every request (bench/README.md).
    # Dropped connections are caught instead by a local check at checkout (below), by
    # recycling connections before common server/firewall idle timeouts, and by SQLAlchemy's
    # disconnect handling: a statement that meets a dead connection invalidates the pool.
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_recycle=300)
    event.listen(engine, "checkout", _discard_dead)
    return engine


def _discard_dead(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
    """Replace a pooled connection the server has closed, without a round trip.

    An idle connection has nothing to read; a terminated one has its FATAL message or EOF
    waiting on the socket. DisconnectionError makes the pool connect again."""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("connection closed while in the pool")
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError) as exc:
        raise DisconnectionError("connection socket unusable") from exc
    if readable:
        raise DisconnectionError("server closed or wrote to an idle connection")


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin, so that
    # SAVEPOINTs and our BEGIN IMMEDIATE below work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while a writer commits; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front: a deferred transaction that reads and then
    # writes could fail with "database is locked" instead of waiting its turn.
    mode = "BEGIN IMMEDIATE" if conn.get_execution_options().get("writer") else "BEGIN"
    conn.exec_driver_sql(mode)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that commits on success and rolls back on error."""
    with engine.connect().execution_options(writer=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_transaction(engine: Engine, autocommit: bool = False) -> Iterator[Connection]:
    """A connection whose reads share one transaction (one snapshot).

    `autocommit=True` is for a read that is a single statement, which is consistent on its
    own: on PostgreSQL it runs without BEGIN and COMMIT, two round trips fewer. (SQLite keeps
    its transaction: it is in-process, and its BEGIN listener above must keep pairing.)"""
    if autocommit and is_postgresql(engine):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn
        return
    with engine.connect() as conn, conn.begin():
        yield conn
