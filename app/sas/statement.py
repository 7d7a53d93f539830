"""The one SQL statement of a SAS answer: a list of identifiers and a window, per dialect.

PostgreSQL binds the identifiers as one array and SQLite as one JSON array: the SQL text
never changes, so SQLAlchemy compiles it once and psycopg prepares it (no planning per
request). PostgreSQL runs the text SQLAlchemy compiles for it (same casts, same prepared
statement) as driver SQL: no compiled-cache lookup or bind processing per call, which cost a
third of the statement's own time for one practitioner (bench/README.md). SQLite keeps the
Core path: its DateTime binds need SQLAlchemy's string processing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, DateTime, String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

DIALECTS = ("postgresql", "sqlite")


def one_of(column: str) -> dict[str, str]:
    """`column` among the bound identifiers (`:ids`), per dialect."""
    return {"postgresql": f"{column} = ANY(CAST(:ids AS text[]))",
            "sqlite": f"{column} IN (SELECT value FROM json_each(:ids))"}


class WindowStatement:
    """`sql` with `{name}` placeholders filled per dialect from `parts`, binding `:ids`,
    `:low` and `:high`."""

    def __init__(self, sql: str, **parts: dict[str, str]) -> None:
        self.by_dialect = {}
        for dialect in DIALECTS:
            ids = bindparam("ids", type_=ARRAY(String) if dialect == "postgresql" else String)
            self.by_dialect[dialect] = text(sql.format(
                **{name: part[dialect] for name, part in parts.items()})).bindparams(
                ids, bindparam("low", type_=DateTime), bindparam("high", type_=DateTime))
        self.postgresql = str(self.by_dialect["postgresql"].compile(
            dialect=PGDialect_psycopg()))

    def rows(self, conn: Connection, ids: list[str], low: datetime,
             high: datetime) -> Iterable[Sequence[Any]]:
        # fetchall: one call to the driver for all the rows, not one per row (an SOS answer
        # holds thousands of slots).
        params = {"ids": ids, "low": low, "high": high}
        if conn.dialect.name == "postgresql":
            return conn.exec_driver_sql(self.postgresql, params).fetchall()  # type: ignore[arg-type]
        return conn.execute(self.by_dialect["sqlite"],
                            {**params, "ids": orjson.dumps(ids).decode()}).fetchall()
