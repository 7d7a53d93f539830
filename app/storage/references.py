"""What resources refer to, read from the `search_reference` index (live resources only);
the other way round (who refers to X) is a search: app/search/api.py `referring`.

Id lists go in chunks: SQLite bounds the number of parameters of a statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import ARRAY, Column, ColumnElement, Connection, any_, bindparam, select

from app.storage.schema import resources, search_reference

CHUNK = 500  # ids per statement: well under SQLite's bound-parameter limit
ARRAY_CHUNK = 10_000  # ids per PostgreSQL array parameter (one parameter, any length)


def chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start:start + CHUNK]


def among(conn: Connection, column: Column[Any], values: Iterable[Any]
          ) -> Iterator[tuple[list[Any], ColumnElement[bool]]]:
    """"`column` is one of `values`", in as few statements as the database takes: on
    PostgreSQL one array parameter (`= ANY`) per ten thousand values, compiled and sent as
    one value; elsewhere an IN list per CHUNK values. Yields each part and its clause."""
    if conn.dialect.name != "postgresql":
        for chunk in chunks(values):
            yield chunk, column.in_(chunk)
        return
    ordered = sorted(values)
    for start in range(0, len(ordered), ARRAY_CHUNK):
        part = ordered[start:start + ARRAY_CHUNK]
        yield part, column == any_(bindparam(None, part, type_=ARRAY(column.type)))


def referenced(conn: Connection, source_type: str, source_ids: set[str], param: str,
               target_type: str) -> set[str]:
    """Ids of the `target_type` resources that `param` of these sources references."""
    index = search_reference
    found: set[str] = set()
    for chunk in chunks(source_ids):
        query = select(index.c.target_id).join(
            resources, index.c.res_pk == resources.c.pk).where(
            resources.c.res_type == source_type, resources.c.res_id.in_(chunk),
            resources.c.deleted.is_(False), index.c.param == param,
            index.c.target_type == target_type, index.c.url.is_(None))
        found.update(conn.execute(query).scalars())
    return found
