"""Rows a unit of work has decided to write, sent to the database together (app/storage/bulk.py).

The repository stages each version it stores (its `resources` row, its `resource_versions`
row, the index rows that changed) and interceptors stage the rows of their projections; the
repository flushes them before anything else runs SQL on its connection, and before it
commits. Within one flush a resource is staged at most once (the repository flushes before
staging a resource again), so per table every delete can run before every insert.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table

from app.storage import bulk
from app.storage.schema import resource_versions, resources

Row = dict[str, Any]


@dataclass
class Staging:
    new_resources: list[Row] = field(default_factory=list)
    changed_resources: list[Row] = field(default_factory=list)
    # Per table, in the order tables were first staged: rows to delete (by one column's
    # values), then rows to insert.
    deletes: dict[Table, dict[str, list[Any]]] = field(default_factory=dict)
    inserts: dict[Table, list[Row]] = field(default_factory=dict)
    keys: set[Hashable] = field(default_factory=set)  # the resources staged

    def __bool__(self) -> bool:
        return bool(self.keys or self.deletes or self.inserts)

    def touches(self, tables: Iterable[Table]) -> bool:
        """Whether rows of any of these tables wait here."""
        staged = {*self.deletes, *self.inserts}
        if self.keys:
            staged |= {resources, resource_versions}
        return any(table in staged for table in tables)

    def resource(self, key: Hashable, row: Row, *, new: bool) -> None:
        self.keys.add(key)
        (self.new_resources if new else self.changed_resources).append(row)

    def insert(self, table: Table, row: Row) -> None:
        self.deletes.setdefault(table, {})
        self.inserts.setdefault(table, []).append(row)

    def delete(self, table: Table, column: str, value: Any) -> None:
        self.deletes.setdefault(table, {}).setdefault(column, []).append(value)
        self.inserts.setdefault(table, [])

    def flush(self, conn: Connection) -> None:
        """Write everything staged (parents first: index and projection rows refer to
        their resource), and start empty."""
        steps: list[bulk.Step] = [bulk.Insert(resources, self.new_resources),
                                  bulk.Update(resources, "pk", self.changed_resources)]
        steps += [bulk.Delete(table, column, values)
                  for table, by_column in self.deletes.items()
                  for column, values in by_column.items()]
        steps += [bulk.Insert(table, group) for table, rows in self.inserts.items()
                  for group in _by_keys(rows)]
        self.new_resources, self.changed_resources = [], []
        self.deletes, self.inserts, self.keys = {}, {}, set()
        bulk.write(conn, steps)


def _by_keys(rows: list[Row]) -> list[list[Row]]:
    """Rows grouped by their set of columns (one statement needs the same columns)."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.values())
