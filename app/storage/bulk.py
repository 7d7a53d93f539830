"""Set-based SQL for the rows a unit of work writes: one statement per table, not per row.

PostgreSQL receives many rows through `COPY … FROM STDIN` (psycopg's copy, inside the
caller's transaction), and updates them by COPYing the new values into a temporary table
and one `UPDATE … FROM` it; SQLite, which runs in-process, through `executemany` of one
prepared statement. Few rows go as plain statements on both: a COPY has a fixed cost of its
own.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, text, update

from app.storage.references import chunks

COPY_FROM = 8  # rows from which COPY beats an executemany on PostgreSQL


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        _copy(conn, table.name, rows, list(rows[0]))
    else:
        conn.execute(insert(table), rows)


def _copy(conn: Connection, table_name: str, rows: list[dict[str, Any]],
          columns: list[str]) -> None:
    cursor = conn.connection.cursor()  # the DBAPI cursor of this transaction's connection
    try:
        with cursor.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    finally:
        cursor.close()


def delete_where_in(conn: Connection, table: Table, column: str, values: Sequence[Any]) -> None:
    for chunk in chunks(values):
        conn.execute(delete(table).where(table.c[column].in_(chunk)))


def update_rows(conn: Connection, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    """Update rows by their key column (every row sets the same columns)."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != key]
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_FROM:
        _update_from_copy(conn, table, key, columns, rows)
        return
    statement = update(table).where(table.c[key] == bindparam("_key")).values(
        {c: bindparam(c) for c in columns})
    conn.execute(statement, [{"_key": row[key], **{c: row[c] for c in columns}}
                             for row in rows])


def _update_from_copy(conn: Connection, table: Table, key: str, columns: list[str],
                      rows: list[dict[str, Any]]) -> None:
    """COPY the new values into a temporary table, then one `UPDATE … FROM` it. (Arrays of
    parameters, one per column, cost three times more: psycopg adapts them in Python, and
    a thousand resources' JSON makes large arrays.) The temporary table lives as long as
    the connection and is emptied at each commit; created when missing (a new connection,
    or a transaction that rolled its creation back)."""
    names = [key, *columns]
    scratch = f"_update_{table.name}_{zlib.crc32(','.join(names).encode()):08x}"
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {scratch} ON COMMIT DELETE ROWS"
                         f" AS SELECT {', '.join(names)} FROM {table.name} WITH NO DATA")
    _copy(conn, scratch, rows, names)
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    conn.exec_driver_sql(f"UPDATE {table.name} AS t SET {assignments} FROM {scratch} AS v "
                         f"WHERE t.{key} = v.{key}")
    conn.exec_driver_sql(f"DELETE FROM {scratch}")  # for the next update of this transaction


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
