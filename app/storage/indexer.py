"""Keep the search index tables in step with the current version of each resource."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from sqlalchemy import Connection, delete

from app.search import extract
from app.search.registry import indexed_params
from app.storage.scan import scan
from app.storage.schema import INDEX_TABLES


def index_rows(resource_type: str, resource: dict[str, Any], *, default_tz: str,
               local_base: str, kinds: Collection[str] | None = None
               ) -> dict[str, list[dict[str, Any]]]:
    """Rows to insert per index table (without `res_pk`); only those of the tables named
    in `kinds` when given."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in INDEX_TABLES}
    for param in indexed_params(resource_type):
        kind = param.index_type
        if kinds is not None and kind not in kinds:
            continue
        base = {"res_type": resource_type, "param": param.name}
        if kind == "token":
            for system, code, text in extract.token_rows(resource, param):
                rows["token"].append({**base, "system": system, "code": code, "text": text})
        elif kind == "string":
            for value, exact in extract.string_rows(resource, param):
                rows["string"].append({**base, "value": value, "exact": exact})
        elif kind == "date":
            for low, high in extract.date_rows(resource, param, default_tz):
                rows["date"].append({**base, "low": low, "high": high})
        elif kind == "reference":
            for target_type, target_id, url in extract.reference_rows(resource, param,
                                                                       local_base):
                rows["reference"].append({**base, "target_type": target_type,
                                          "target_id": target_id, "url": url})
    return rows


def changed_tables(resource_type: str, new: dict[str, Any], old: dict[str, Any]) -> set[str]:
    """The index tables whose rows may differ between two versions: those with a parameter
    whose values differ. (Rows are made from those values alone, so equal values give
    equal rows; comparing values costs a fraction of extracting rows from both versions.)"""
    changed: set[str] = set()
    for param in indexed_params(resource_type):
        if param.index_type in changed:
            continue
        if any(extract.walk(new, path) != extract.walk(old, path) for path in param.paths):
            changed.add(param.index_type)
    return changed


def clear(conn: Connection, res_pk: int) -> None:
    for table in INDEX_TABLES.values():
        conn.execute(delete(table).where(table.c.res_pk == res_pk))


def write(conn: Connection, res_pk: int, rows: dict[str, list[dict[str, Any]]]) -> None:
    for name, table_rows in rows.items():
        if table_rows:
            conn.execute(INDEX_TABLES[name].insert(),
                         [{**row, "res_pk": res_pk} for row in table_rows])


def reindex_all(conn: Connection, *, default_tz: str, local_base: str,
                batch_size: int = 2000, types: tuple[str, ...] | None = None,
                content_like: tuple[str, ...] = ()) -> int:
    """Rebuild every index row from the stored resources (after the registry changed), or
    only those of some resource types (and whose JSON matches one of `content_like`)."""
    count = 0
    for batch in scan(conn, types, batch_size, content_like):
        for row in batch:
            clear(conn, row.pk)
            write(conn, row.pk, index_rows(row.resource_type, orjson.loads(row.content),
                                           default_tz=default_tz, local_base=local_base))
        count += len(batch)
    return count
