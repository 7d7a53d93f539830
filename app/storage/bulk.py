"""Set-based SQL for the rows a unit of work writes: one statement per table, not per row.

A flush is a list of steps (insert, update or delete rows of one table), run in order.
PostgreSQL receives many rows through `COPY … FROM STDIN` (psycopg's copy, inside the
caller's transaction), and updates them by COPYing the new values into a temporary table
and one `UPDATE … FROM` it; the steps of few rows are sent together in psycopg's pipeline
mode, one round trip for all of them, as plain statements compiled once per table and
columns (a single write's version, index, projection and AuditEvent rows are a dozen such
statements). SQLite, which runs in-process, takes `executemany` of one prepared statement
per step. Errors of the driver reach the caller as SQLAlchemy's, as for any statement.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, text, update
from sqlalchemy.exc import DBAPIError

from app.storage.references import chunks

COPY_FROM = 50  # rows from which COPY (a round trip of its own) beats a pipelined executemany
Row = dict[str, Any]


@dataclass(frozen=True)
class Insert:
    table: Table
    rows: list[Row]  # all with the same keys


@dataclass(frozen=True)
class Update:
    table: Table
    key: str  # the column that finds each row
    rows: list[Row]  # all setting the same columns


@dataclass(frozen=True)
class Delete:
    table: Table
    column: str
    values: Sequence[Any]  # the rows whose `column` has one of these values go


Step = Insert | Update | Delete


def write(conn: Connection, steps: Sequence[Step]) -> None:
    """Run `steps` in order, in the caller's transaction."""
    steps = [step for step in steps if _rows_of(step)]
    if conn.dialect.name == "postgresql":
        with _as_sqlalchemy_errors(conn):
            _write_postgresql(conn, steps)
        return
    for step in steps:
        _write_core(conn, step)


def _rows_of(step: Step) -> Sequence[Any]:
    return step.values if isinstance(step, Delete) else step.rows


# -- PostgreSQL -------------------------------------------------------------------------------

def _write_postgresql(conn: Connection, steps: list[Step]) -> None:
    pending: list[Step] = []  # steps of few rows, sent together before the next COPY
    for step in steps:
        if isinstance(step, Delete) or len(step.rows) < COPY_FROM:
            pending.append(step)
            continue
        _send_together(conn, pending)
        pending = []
        if isinstance(step, Insert):
            _copy(conn, step.table.name, step.rows, list(step.rows[0]))
        else:
            _update_from_copy(conn, step)
    _send_together(conn, pending)


def _send_together(conn: Connection, steps: list[Step]) -> None:
    """One round trip for every statement (pipeline mode); errors raise at its end."""
    if not steps:
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.pipeline(), driver.cursor() as cursor:
        for step in steps:
            sql, parameters = _statement(conn, step)
            cursor.executemany(sql, parameters)


def _statement(conn: Connection, step: Step) -> tuple[str, list[tuple[Any, ...]]]:
    if isinstance(step, Delete):
        column_type = step.table.c[step.column].type.compile(dialect=conn.dialect)
        return (_delete_sql(step.table, step.column, column_type), [(list(step.values),)])
    columns = tuple(step.rows[0])
    if isinstance(step, Insert):
        return (_insert_sql(step.table, columns),
                [tuple(row[c] for c in columns) for row in step.rows])
    assigned = tuple(c for c in columns if c != step.key)
    return (_update_sql(step.table, step.key, assigned),
            [tuple(row[c] for c in (*assigned, step.key)) for row in step.rows])


@functools.lru_cache(maxsize=256)
def _insert_sql(table: Table, columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})")


@functools.lru_cache(maxsize=256)
def _update_sql(table: Table, key: str, columns: tuple[str, ...]) -> str:
    return (f"UPDATE {table.name} SET {', '.join(f'{c} = %s' for c in columns)} "
            f"WHERE {key} = %s")


@functools.lru_cache(maxsize=256)
def _delete_sql(table: Table, column: str, column_type: str) -> str:
    return f"DELETE FROM {table.name} WHERE {column} = ANY(CAST(%s AS {column_type}[]))"


def _copy(conn: Connection, table_name: str, rows: list[Row], columns: list[str]) -> None:
    cursor = conn.connection.cursor()  # the DBAPI cursor of this transaction's connection
    try:
        with cursor.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    finally:
        cursor.close()


def _update_from_copy(conn: Connection, step: Update) -> None:
    """COPY the new values into a temporary table, then one `UPDATE … FROM` it. (Arrays of
    parameters, one per column, cost three times more: psycopg adapts them in Python, and
    a thousand resources' JSON makes large arrays.) The temporary table lives as long as
    the connection and is emptied at each commit; created when missing (a new connection,
    or a transaction that rolled its creation back)."""
    table, key = step.table, step.key
    columns = [c for c in step.rows[0] if c != key]
    names = [key, *columns]
    scratch = f"_update_{table.name}_{zlib.crc32(','.join(names).encode()):08x}"
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {scratch} ON COMMIT DELETE ROWS"
                         f" AS SELECT {', '.join(names)} FROM {table.name} WITH NO DATA")
    _copy(conn, scratch, step.rows, names)
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    conn.exec_driver_sql(f"UPDATE {table.name} AS t SET {assignments} FROM {scratch} AS v "
                         f"WHERE t.{key} = v.{key}")
    conn.exec_driver_sql(f"DELETE FROM {scratch}")  # for the next update of this transaction


@contextmanager
def _as_sqlalchemy_errors(conn: Connection) -> Iterator[None]:
    """The driver's own errors (COPY, pipeline) as SQLAlchemy wraps any statement's: a
    unique violation is an IntegrityError to the repository, a lost connection an outage
    to app/db_errors.py."""
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except driver_error as exc:
        driver = conn.connection.driver_connection
        raise DBAPIError.instance(
            "flush of staged rows", None, exc, driver_error,
            connection_invalidated=bool(getattr(driver, "broken", False))) from exc


# -- SQLite (and any other dialect): SQLAlchemy Core ------------------------------------------

def _write_core(conn: Connection, step: Step) -> None:
    if isinstance(step, Insert):
        conn.execute(insert(step.table), step.rows)
    elif isinstance(step, Delete):
        for chunk in chunks(step.values):
            conn.execute(delete(step.table).where(step.table.c[step.column].in_(chunk)))
    else:
        columns = [c for c in step.rows[0] if c != step.key]
        statement = update(step.table).where(
            step.table.c[step.key] == bindparam("_key")).values(
            {c: bindparam(c) for c in columns})
        conn.execute(statement, [{"_key": row[step.key], **{c: row[c] for c in columns}}
                                 for row in step.rows])


def allocate_pks(conn: Connection, table: Table, count: int, after: int | None) -> list[int]:
    """`count` new values of `table`'s integer primary key, before rows are inserted.

    PostgreSQL takes them from the column's sequence (another transaction never gets the
    same); SQLite continues from `after` (the last one given in this transaction) or from
    the largest key: its writers hold the database's write lock (BEGIN IMMEDIATE) until they
    commit, so nobody else inserts meanwhile."""
    key = next(iter(table.primary_key.columns)).name
    if conn.dialect.name == "postgresql":
        return list(conn.execute(text(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', '{key}'))"
            " FROM generate_series(1, :n)"), {"n": count}).scalars())
    if after is None:
        after = conn.execute(text(f"SELECT coalesce(max({key}), 0) FROM {table.name}")
                             ).scalar_one()
    return list(range(after + 1, after + 1 + count))
