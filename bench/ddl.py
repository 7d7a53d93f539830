"""Drop the constraints and indexes of the loaded tables, and rebuild them exactly after the load.

Definitions are read from the catalog (pg_get_indexdef / pg_get_constraintdef), so what comes
back is what the migrations created, whatever they become.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

TABLES = ("resources", "resource_versions", "search_token", "search_string", "search_date",
          "search_reference", "sas_slot", "sas_place")


@dataclass(frozen=True)
class Index:
    table: str
    name: str
    create: str  # CREATE [UNIQUE] INDEX …
    constraint: str | None  # PRIMARY KEY | UNIQUE when the index backs a constraint

    def statements(self) -> list[str]:
        found = [self.create]
        if self.constraint:
            found.append(f'ALTER TABLE {self.table} ADD CONSTRAINT "{self.name}" '
                         f'{self.constraint} USING INDEX "{self.name}"')
        return found


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    definition: str

    def add_not_valid(self) -> str:
        return f'ALTER TABLE {self.table} ADD CONSTRAINT "{self.name}" {self.definition} NOT VALID'

    def validate(self) -> str:
        return f'ALTER TABLE {self.table} VALIDATE CONSTRAINT "{self.name}"'


@dataclass(frozen=True)
class Schema:
    indexes: list[Index]
    foreign_keys: list[ForeignKey]


def capture(conn: psycopg.Connection) -> Schema:
    tables = list(TABLES)
    foreign_keys = [ForeignKey(t, n, d) for t, n, d in conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
        [tables])]
    indexes = []
    for table, name, create, contype in conn.execute(
            "SELECT i.indrelid::regclass::text, c.relname, pg_get_indexdef(i.indexrelid),"
            "       k.contype"
            "  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            "  LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid"
            "       AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u')"
            " WHERE i.indrelid::regclass::text = ANY(%s) ORDER BY 1, 2", [tables]):
        constraint = {"p": "PRIMARY KEY", "u": "UNIQUE"}.get(contype or "")
        indexes.append(Index(table, name, create, constraint))
    return Schema(indexes, foreign_keys)


def drop(conn: psycopg.Connection, schema: Schema) -> None:
    for fk in schema.foreign_keys:
        conn.execute(f'ALTER TABLE {fk.table} DROP CONSTRAINT "{fk.name}"')
    for index in schema.indexes:
        if index.constraint:
            conn.execute(f'ALTER TABLE {index.table} DROP CONSTRAINT "{index.name}"')
        else:
            conn.execute(f'DROP INDEX "{index.name}"')
