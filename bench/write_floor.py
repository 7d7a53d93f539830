"""The write floor: the rows a write wrote, written again by one COPY/executemany per table.

For each measured write (a Bundle, a single request, a bulk load) the benchmark captures
the rows the application changed in every table it writes (resources, resource_versions,
the four index tables, sas_slot, outbox), puts the database back as it was before (off the
clock), then writes the same rows again with no application code, in one transaction per
write, timed:

- PostgreSQL: `COPY … FROM STDIN` per table for new rows, one `UPDATE … FROM unnest(…)` for
  the `resources` rows that existed, one `DELETE … = ANY(…)` per table for the rows they
  replace;
- SQLite: `executemany` per table (the sqlite3 module, in-process), same statements.

The database ends in the state the application left (checked by row counts).
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Engine, Table, delete, func, insert, select, update

from app.storage.schema import (
    outbox,
    resource_versions,
    resources,
    sas_slot,
    search_date,
    search_reference,
    search_string,
    search_token,
)

# Tables keyed by the resource they belong to: (table, key column).
PER_RESOURCE: tuple[tuple[Table, str], ...] = (
    (resource_versions, "res_pk"), (search_token, "res_pk"), (search_string, "res_pk"),
    (search_date, "res_pk"), (search_reference, "res_pk"), (sas_slot, "slot_pk"))
ALL_TABLES = ("resources", *(t.name for t, _ in PER_RESOURCE), "outbox")
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Marks:
    """Where the database stood before a write: new resources and messages come after."""

    resource_pk: int
    outbox_pk: int


@dataclass
class Snapshot:
    """Rows per table, for a set of resource pks (and outbox messages after a mark)."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    _by_pk: dict[str, dict[int, list[Row]]] = field(default_factory=dict)

    def of(self, table: str, pk: int) -> list[Row]:
        if table not in self._by_pk:
            index: dict[int, list[Row]] = {}
            for row in self.rows.get(table, []):
                index.setdefault(row[0], []).append(row)
            self._by_pk[table] = index
        return self._by_pk[table].get(pk, [])


def marks(engine: Engine) -> Marks:
    with engine.connect() as conn:
        return Marks(conn.execute(select(func.coalesce(func.max(resources.c.pk), 0))).scalar_one(),
                     conn.execute(select(func.coalesce(func.max(outbox.c.pk), 0))).scalar_one())


def _columns(table: Table, key: str) -> list[Any]:
    """The key column first, then the others in table order."""
    return [table.c[key], *(c for c in table.c if c.name != key)]


def capture(engine: Engine, pks: Iterable[int], after: Marks | None = None) -> Snapshot:
    """The rows of these resources in every table (+ the outbox rows after `after`)."""
    wanted = sorted(set(pks))
    snapshot = Snapshot()
    with engine.connect() as conn:
        for table, key in ((resources, "pk"), *PER_RESOURCE):
            found: list[Row] = []
            for start in range(0, len(wanted), 5000):
                chunk = wanted[start:start + 5000]
                found += [tuple(r) for r in conn.execute(
                    select(*_columns(table, key)).where(table.c[key].in_(chunk)))]
            snapshot.rows[table.name] = found
        if after is not None:
            snapshot.rows["outbox"] = [tuple(r) for r in conn.execute(
                select(*_columns(outbox, "pk")).where(outbox.c.pk > after.outbox_pk))]
    return snapshot


def new_pks(engine: Engine, before: Marks) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(resources.c.pk).where(
            resources.c.pk > before.resource_pk).order_by(resources.c.pk)).scalars())


def changed_since(engine: Engine, before: Marks, since: Any) -> list[int]:
    """Resources that existed before and were written since `since` (a naive UTC time)."""
    with engine.connect() as conn:
        return list(conn.execute(select(resources.c.pk).where(
            resources.c.pk <= before.resource_pk, resources.c.last_updated >= since)).scalars())


@dataclass
class Write:
    """What one write did: resources it created, resources it changed (rows before and
    after), and the outbox messages it queued."""

    created: list[int]
    changed: list[int]
    before: Snapshot
    after: Snapshot

    def replaced(self, table: str) -> list[int]:
        """Changed resources whose rows in `table` differ (the floor rewrites those)."""
        return [pk for pk in self.changed
                if Counter(self.before.of(table, pk)) != Counter(self.after.of(table, pk))]

    def rows_written(self) -> Counter[str]:
        """Rows inserted or rewritten per table (what "rows per resource" counts)."""
        counts: Counter[str] = Counter()
        created = set(self.created)
        counts["resources"] = len(self.created) + len(self.changed)
        for table, _ in PER_RESOURCE:
            name = table.name
            if name == "resource_versions":
                old = Counter(self.before.rows.get(name, []))
                counts[name] = sum(1 for r in self.after.rows[name]
                                   if r[0] in created or old[r] == 0)
                continue
            rewritten = set(self.replaced(name)) | created
            counts[name] = sum(1 for r in self.after.rows[name] if r[0] in rewritten)
        counts["outbox"] = len(self.after.rows.get("outbox", []))
        return counts


def record(engine: Engine, before: Marks, changed: Sequence[int], prior: Snapshot,
           since: Any) -> Write:
    """After the application wrote: what it wrote (see `Write`)."""
    created = new_pks(engine, before)
    unexpected = set(changed_since(engine, before, since)) - set(changed)
    if unexpected:
        raise RuntimeError(f"{len(unexpected)} resources changed that the case did not "
                           "announce: the floor would miss their rows")
    after = capture(engine, [*created, *changed], before)
    return Write(created, list(changed), prior, after)


def restore(engine: Engine, writes: Sequence[Write]) -> None:
    """Put the database back as it was before these writes (off the clock)."""
    with engine.begin() as conn:
        for write in reversed(writes):
            if write.after.rows.get("outbox"):
                conn.execute(delete(outbox).where(
                    outbox.c.pk.in_([r[0] for r in write.after.rows["outbox"]])))
            for start in range(0, len(write.created), 5000):
                chunk = write.created[start:start + 5000]
                for table, key in PER_RESOURCE:  # no reliance on ON DELETE CASCADE
                    conn.execute(delete(table).where(table.c[key].in_(chunk)))
                conn.execute(delete(resources).where(resources.c.pk.in_(chunk)))
            if not write.changed:
                continue
            for table, key in PER_RESOURCE:
                conn.execute(delete(table).where(table.c[key].in_(write.changed)))
                rows = write.before.rows.get(table.name, [])
                if rows:
                    names = [c.name for c in _columns(table, key)]
                    conn.execute(insert(table), [dict(zip(names, r, strict=True))
                                                 for r in rows])
            names = [c.name for c in _columns(resources, "pk")]
            for row in write.before.rows["resources"]:
                values = dict(zip(names, row, strict=True))
                conn.execute(update(resources).where(resources.c.pk == values.pop("pk"))
                             .values(**values))


def replay(engine: Engine, write: Write) -> float:
    """Write `write`'s rows again in one transaction; returns the seconds it took."""
    if engine.dialect.name == "postgresql":
        return _replay_postgres(engine, write)
    return _replay_sqlite(engine, write)


def _plan(write: Write) -> tuple[list[Row], list[Row], dict[str, tuple[list[int], list[Row]]]]:
    """(new resources rows, changed resources rows, per table: (pks to clear, rows to add))."""
    created = set(write.created)
    new_rows = [r for r in write.after.rows["resources"] if r[0] in created]
    changed_rows = [r for r in write.after.rows["resources"] if r[0] not in created]
    tables: dict[str, tuple[list[int], list[Row]]] = {}
    for table, _ in PER_RESOURCE:
        name = table.name
        if name == "resource_versions":
            old = Counter(write.before.rows.get(name, []))
            tables[name] = ([], [r for r in write.after.rows[name] if old[r] == 0])
            continue
        cleared = write.replaced(name)
        rewritten = set(cleared) | created
        tables[name] = (cleared, [r for r in write.after.rows[name] if r[0] in rewritten])
    tables["outbox"] = ([], write.after.rows.get("outbox", []))
    return new_rows, changed_rows, tables


def _names(table: Table, key: str) -> list[str]:
    return [c.name for c in _columns(table, key)]


def _pg_url(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


TABLES: dict[str, tuple[Table, str]] = {t.name: (t, k) for t, k in PER_RESOURCE}
TABLES["outbox"] = (outbox, "pk")


def _replay_postgres(engine: Engine, write: Write) -> float:
    new_rows, changed_rows, tables = _plan(write)
    columns = _names(resources, "pk")
    with psycopg.connect(_pg_url(engine)) as conn:
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            if changed_rows:
                arrays = list(zip(*changed_rows, strict=True))
                cursor.execute(
                    "UPDATE resources r SET version = v.version, last_updated = v.last_updated,"
                    " deleted = v.deleted, content = v.content FROM unnest(%s::bigint[],"
                    " %s::int[], %s::timestamp[], %s::boolean[], %s::text[])"
                    " AS v(pk, version, last_updated, deleted, content) WHERE r.pk = v.pk",
                    [list(arrays[0]), list(arrays[columns.index("version")]),
                     list(arrays[columns.index("last_updated")]),
                     list(arrays[columns.index("deleted")]),
                     list(arrays[columns.index("content")])])
            _copy(cursor, "resources", columns, new_rows)
            for name, (cleared, rows) in tables.items():
                table, key = TABLES[name]
                if cleared:
                    cursor.execute(f"DELETE FROM {name} WHERE {key} = ANY(%s)", [cleared])
                _copy(cursor, name, _names(table, key), rows)
        return time.perf_counter() - started


def _copy(cursor: psycopg.Cursor[Any], table: str, columns: list[str], rows: list[Row]) -> None:
    if not rows:
        return
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _replay_sqlite(engine: Engine, write: Write) -> float:
    new_rows, changed_rows, tables = _plan(write)
    columns = _names(resources, "pk")
    database = engine.url.database
    assert database
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        if changed_rows:
            conn.executemany(
                "UPDATE resources SET version = ?, last_updated = ?, deleted = ?, content = ?"
                " WHERE pk = ?",
                [(r[columns.index("version")], _sqlite_value(r[columns.index("last_updated")]),
                  r[columns.index("deleted")], r[columns.index("content")], r[0])
                 for r in changed_rows])
        _insert_sqlite(conn, "resources", columns, new_rows)
        for name, (cleared, rows) in tables.items():
            table, key = TABLES[name]
            if cleared:
                conn.executemany(f"DELETE FROM {name} WHERE {key} = ?", [(pk,) for pk in cleared])
            _insert_sqlite(conn, name, _names(table, key), rows)
        conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy stores naive datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text in SQLite.
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if hasattr(value, "strftime") else value


def _insert_sqlite(conn: sqlite3.Connection, table: str, columns: list[str],
                   rows: list[Row]) -> None:
    if rows:
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                         [tuple(_sqlite_value(v) for v in row) for row in rows])


def count_rows(engine: Engine, write: Write) -> Counter[str]:
    """Rows now held for the write's resources, per table (to check a replay)."""
    again = capture(engine, [*write.created, *write.changed])
    found = Counter({name: len(rows) for name, rows in again.rows.items()})
    return found


def same_as_recorded(engine: Engine, write: Write) -> bool:
    found = count_rows(engine, write)
    expected = Counter({name: len(rows) for name, rows in write.after.rows.items()
                        if name != "outbox"})
    return found == expected
