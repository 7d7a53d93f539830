"""Generate a synthetic national-scale agenda dataset straight into PostgreSQL.

    python -m bench.generate --database-url URL --practitioners 100000 --weeks 4 [--seed N]
    python -m bench.generate --throwaway --data-dir /work/pgbench-data --practitioners 100000

The rows are those the application would store (resources, resource_versions, search_*,
sas_slot), without going through it:

1. migrate (app.storage.migrate.upgrade), drop the 7 tables' constraints and indexes;
2. Python builds the world (bench/world.py) and the Slot kind templates (bench/slots.py,
   checked against the application's own functions); the non-Slot resources are built and
   indexed with the application's indexer in `--jobs` processes, COPYed to staging tables,
   while PostgreSQL expands the weekly plans into a Slot skeleton (generate_series);
3. one transaction per table (TRUNCATE + INSERT … SELECT: no WAL with wal_level=minimal)
   fills it from the staging tables and the skeleton joined with the templates;
4. VACUUM (FREEZE, ANALYZE), then indexes and constraints are rebuilt, `--jobs` at a time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from functools import partial
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from app.clock import format_instant, utc_now
from app.config import Settings
from app.db import make_engine
from app.sas.place_rules import PlaceRules
from app.storage.indexer import index_rows
from app.storage.migrate import upgrade
from bench import catalog, ddl, offers, places, slots
from bench.world import World, build_world, cpts_ids, other_resources

TZ = slots.TZ
SESSION = (
    "SET synchronous_commit = off",
    "SET maintenance_work_mem = '1GB'",
    "SET work_mem = '256MB'",
    "SET jit = off",
    "SET max_parallel_maintenance_workers = 0",
    f"SET TIME ZONE '{TZ}'",
)
INDEX_TABLES = tuple(slots.INDEX_COLUMNS)
COLUMN_TYPES = {"res_type": "text", "param": "text", "system": "text", "code": "text",
                "text": "text", "value": "text", "exact": "text", "low": "timestamp",
                "high": "timestamp", "target_type": "text", "target_id": "text", "url": "text"}


def _columns(table: str) -> str:
    return ", ".join(f"{c} {COLUMN_TYPES[c]}" for c in slots.INDEX_COLUMNS[table])


HELPERS: dict[str, str] = {
    "bench_day": "day_no int, day date, day_txt text, dow int, busy_pct int",
    "bench_schedule": "sched_no int, sched_key text, sched_id text, cpts_id text, profile int,"
                      " spec int, mask int, n_day int, n_sat int, am_start int, nm int,"
                      " pm_start int, len int",
    "bench_kind": "kind int PRIMARY KEY",  # + content/fragment parts, see kind_rows()
    "bench_stage_resources": "pk bigint, res_type text, res_id text, content text",
    "bench_stage_sas_place": ", ".join(f"{c} text" for c in places.COLUMNS),
    **{f"bench_kind_{t}": f"kind int, {_columns(t)}" for t in INDEX_TABLES},
    **{f"bench_stage_{t}": f"res_pk bigint, {_columns(t)}" for t in INDEX_TABLES},
}
SKELETON = ("bench_sday", "bench_slot")
# Staging rows go in index order: a B-tree built over presorted rows skips most of its sort.
STAGING_ORDER = {"token": "res_type, param, code, system", "string": "res_type, param, value",
                 "date": "res_type, param, low",
                 "reference": "res_type, param, target_id, target_type"}

Log = Callable[[str], None]


def conninfo(database_url: str) -> str:
    """A libpq URL from a SQLAlchemy one (`postgresql+psycopg://` → `postgresql://`)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


def scalar(conn: psycopg.Connection, sql: str, params: Sequence[Any] | None = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def connect(url: str, autocommit: bool = True) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=autocommit)
    for statement in SESSION:
        conn.execute(statement)
    return conn


# -- step 2: world, templates, staging ---------------------------------------------------------

def busy_percent(days_ahead: int) -> int:
    for limit, percent in catalog.BUSY_PERCENT_BY_DAYS_AHEAD:
        if days_ahead < limit:
            return percent
    return catalog.BUSY_PERCENT_BY_DAYS_AHEAD[-1][1]


def helper_rows(world: World) -> dict[str, list[tuple[Any, ...]]]:
    days = []
    for number in range(world.weeks * 7):
        day = world.start + timedelta(days=number)
        days.append((number, day, day.strftime("%Y%m%d"), day.weekday(), busy_percent(number)))
    profiles = {p.key: slots.PROFILES.index(p.profile) for p in catalog.PROFESSIONS}
    schedules = []
    for number, place in enumerate(world.places):
        person = world.practitioners[place.practitioner]
        department = world.cabinets[place.cabinet].city.department
        schedules.append((
            number, place.key, place.schedule_id, cpts_ids(department)[1],
            profiles[person.profession.key], person.specialty, place.weekday_mask,
            place.slots_per_day, place.saturday_slots, place.morning_start,
            place.morning_capacity, place.afternoon_start, place.slot_minutes))
    return {"bench_day": days, "bench_schedule": schedules}


def kind_rows(templates: list[slots.KindTemplate]) -> tuple[str, list[tuple[Any, ...]], int,
                                                             int]:
    """bench_kind: per kind, content parts c0…cN / markers cm1…cmN, fragment f0… / fm1…."""
    contents = [slots.split_template(t.content) for t in templates]
    fragments = [slots.split_template(t.fragment) if t.fragment else ([], [])
                 for t in templates]
    n = max(len(m) for _, m in contents)
    f = max(len(m) for _, m in fragments)
    columns = ("kind int PRIMARY KEY, sas boolean, cpts boolean, shared boolean"
               + "".join(f", c{i} text" for i in range(n + 1))
               + "".join(f", cm{i} int" for i in range(1, n + 1))
               + "".join(f", f{i} text" for i in range(f + 1))
               + "".join(f", fm{i} int" for i in range(1, f + 1)))

    def padded(values: list[Any], size: int) -> list[Any]:
        return values + [None] * (size - len(values))

    rows = [(t.kind, t.fragment is not None, t.cpts, t.shared, *padded(cp, n + 1),
             *padded(cm, n),
             *padded(fp, f + 1), *padded(fm, f))
            for t, (cp, cm), (fp, fm) in zip(templates, contents, fragments, strict=True)]
    return columns, rows, n, f


def load_helpers(conn: psycopg.Connection, world: World,
                 templates: list[slots.KindTemplate]) -> tuple[int, int]:
    """Create and fill the helper tables; returns the marker counts of content/fragment."""
    kind_columns, kinds, content_markers, fragment_markers = kind_rows(templates)
    for name, columns in HELPERS.items():
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE UNLOGGED TABLE {name} "
                     f"({kind_columns if name == 'bench_kind' else columns})")
    for name in SKELETON:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
    rows = helper_rows(world)
    rows["bench_kind"] = kinds
    for table in INDEX_TABLES:
        rows[f"bench_kind_{table}"] = [(t.kind, *row) for t in templates
                                       for row in t.constant_rows[table]]
    with conn.cursor() as cursor:
        for name, table_rows in rows.items():
            with cursor.copy(f"COPY {name} FROM STDIN") as copy:
                for row in table_rows:
                    copy.write_row(row)
    for name in rows:
        conn.execute(f"ANALYZE {name}")
    return content_markers, fragment_markers


def _stage(url: str, world: World, seed: int, now: datetime, base: str, part: int,
           parts: int, pipe: Pipe) -> None:
    """Child process: build, store-format and index the non-Slot resources of one slice."""
    try:
        counts: Counter[str] = Counter()
        with ExitStack() as stack:
            copies = {}
            for name in ("resources", *INDEX_TABLES):
                conn = stack.enter_context(psycopg.connect(url))
                conn.execute("SET synchronous_commit = off")
                columns = ("pk, res_type, res_id, content" if name == "resources" else
                           "res_pk, " + ", ".join(slots.INDEX_COLUMNS[name]))
                copies[name] = stack.enter_context(conn.cursor().copy(
                    f"COPY bench_stage_{name} ({columns}) FROM STDIN"))
            copies["sas_place"] = stack.enter_context(stack.enter_context(psycopg.connect(
                url)).cursor().copy("COPY bench_stage_sas_place FROM STDIN"))
            # The places by the application's rules, one practitioner at a time.
            stager = places.PlaceStager(world, seed, now, PlaceRules(
                base, Settings.from_env().local_identifier_system, warn=False))

            def flush() -> None:
                for row in stager.flush():
                    copies["sas_place"].write_row(row)
                    counts["sas_place"] += 1

            write_resource = copies["resources"].write_row
            for pk, resource_type, resource in other_resources(world, seed, part, parts):
                content = slots.stored(resource_type, resource["id"], resource, now)
                if resource_type == "Practitioner":
                    flush()
                stager.add(resource_type, content)
                write_resource((pk, resource_type, resource["id"],
                                orjson.dumps(content).decode()))
                for table, rows in index_rows(resource_type, content, default_tz=TZ,
                                              local_base=base).items():
                    names = slots.INDEX_COLUMNS[table]
                    write = copies[table].write_row
                    for row in rows:
                        write((pk, *(row[c] for c in names)))
                    counts[table] += len(rows)
                counts[resource_type] += 1
            flush()
        pipe.send(dict(counts))
    except BaseException as exc:  # report, then die without running the parent's finalizers
        pipe.send(f"{type(exc).__name__}: {exc}")
    finally:
        pipe.close()
        os._exit(0)


def _skeleton_sql(world: World, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """The Slot skeleton: one row per Slot, in pk order (by day, then schedule, then time)."""
    local = f"AT TIME ZONE '{TZ}'"
    instant = "'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM'"
    return [(
        "CREATE UNLOGGED TABLE bench_sday AS"
        " SELECT d.day_no, d.day, d.day_txt, d.busy_pct, s.sched_no, s.sched_key, s.sched_id,"
        "        s.cpts_id,"
        "        s.profile, s.spec, s.am_start, s.nm, s.pm_start, s.len, c.n,"
        "        sum(c.n) OVER (ORDER BY d.day_no, s.sched_no ROWS UNBOUNDED PRECEDING) - c.n"
        "          AS offs"
        "   FROM bench_day d JOIN bench_schedule s ON (s.mask >> d.dow) & 1 = 1"
        "  CROSS JOIN LATERAL (SELECT CASE WHEN d.dow = 5 THEN s.n_sat ELSE s.n_day END AS n) c"
        "  ORDER BY d.day_no, s.sched_no", {}), (
        "CREATE UNLOGGED TABLE bench_slot AS"
        " SELECT g.pk,"
        "        ((%(mix)s::int[])[g.profile * 100"
        "            + ((hashint8extended(g.pk, %(seed)s) & 2147483647) %% 100)::int + 1] * 2"
        "         + ((hashint8extended(g.pk, %(seed)s + 1) & 2147483647) %% 100"
        "            < g.busy_pct)::int) * %(nspec)s + g.spec AS kind,"
        # day first: ids sort like pks, so uq_resources_type_id is built from sorted input
        "        'slot-' || g.day_txt || '-' || g.sched_key || '-'"
        "          || lpad((g.m / 60)::text, 2, '0') || lpad((g.m %% 60)::text, 2, '0')"
        "          AS slot_id,"
        "        g.sched_no, g.sched_id, g.cpts_id, g.ts AT TIME ZONE 'UTC' AS start_utc,"
        f"       to_char(g.ts, {instant}) AS start_txt, to_char(g.te, {instant}) AS end_txt"
        "   FROM (SELECT %(pk0)s + sd.offs + k + 1 AS pk, sd.*, x.m,"
        f"              (sd.day + make_interval(mins => x.m)) {local} AS ts,"
        f"              (sd.day + make_interval(mins => x.m + sd.len)) {local} AS te"
        "           FROM bench_sday sd"
        "          CROSS JOIN LATERAL generate_series(0, sd.n - 1) AS k"
        "          CROSS JOIN LATERAL (SELECT CASE WHEN k < sd.nm THEN sd.am_start + k * sd.len"
        "                              ELSE sd.pm_start + (k - sd.nm) * sd.len END AS m) x) g",
        {"mix": slots.mix_table(), "seed": seed, "nspec": len(slots.SPECIALTIES),
         "pk0": world.slot_pk_offset}),
        ("CREATE INDEX bench_slot_kind ON bench_slot (kind, pk)", {}),
        ("VACUUM ANALYZE bench_slot", {})]


# -- step 3: one transaction per table ---------------------------------------------------------

def _render_sql(prefix: str, markers: int, sas: bool) -> str:
    """SQL twin of slots.render: concat(part0, value(marker1), part1, …) in one pass."""
    start, end = "s.start_txt", "s.end_txt"
    if sas:  # slots.sas_form
        start = "left(s.start_txt, 19) || '.000' || right(s.start_txt, 6)"
        end = "left(s.end_txt, 19) || '.000' || right(s.end_txt, 6)"
    pieces = [f"k.{prefix}0"]
    for i in range(1, markers + 1):
        pieces.append(f"CASE k.{prefix}m{i} WHEN 1 THEN s.slot_id WHEN 2 THEN s.sched_id"
                      f" WHEN 3 THEN s.cpts_id WHEN 4 THEN {start} WHEN 5 THEN {end} END")
        pieces.append(f"k.{prefix}{i}")
    return f"concat({', '.join(pieces)})"


# SQL twins of slots.variable_rows (build_templates checks those against the application),
# ordered like their B-tree (res_type, param, low) / (res_type, param, target_id, …).
VARIABLE_SQL = {
    "reference": "SELECT s.pk, 'Slot', 'schedule', 'Schedule', s.sched_id, NULL FROM bench_slot s"
                 " UNION ALL SELECT s.pk, 'Slot', 'service-type-reference', 'HealthcareService',"
                 " s.cpts_id, NULL FROM bench_slot s JOIN bench_kind k USING (kind)"
                 " WHERE k.shared ORDER BY 3, 5",
    "date": "SELECT s.pk, 'Slot', 'start', s.start_utc,"
            " s.start_utc + interval '0.999999 second' FROM bench_slot s ORDER BY s.start_utc",
}

Statement = tuple[str, dict[str, Any] | None]


def load_tasks(templates: list[slots.KindTemplate],
               markers: tuple[int, int]) -> list[tuple[str, float, list[Statement]]]:
    """(table, relative cost, statements) — each list runs in one transaction."""
    content = _render_sql("c", markers[0], sas=False)
    now = {"now": None}  # filled by _run_load
    resource_columns = "pk, res_type, res_id, version, last_updated, deleted, content"
    version_columns = "res_pk, version, res_type, res_id, last_updated, deleted, method, content"
    tasks: list[tuple[str, float, list[Statement]]] = [
        ("resources", 10, [
            (f"INSERT INTO resources ({resource_columns}) SELECT pk, res_type, res_id, 1,"
             " %(now)s, false, content FROM bench_stage_resources ORDER BY pk", now),
            (f"INSERT INTO resources ({resource_columns}) SELECT s.pk, 'Slot', s.slot_id, 1,"
             f" %(now)s, false, {content} FROM bench_slot s JOIN bench_kind k USING (kind)",
             now)]),
        ("resource_versions", 10, [
            (f"INSERT INTO resource_versions ({version_columns}) SELECT pk, 1, res_type,"
             " res_id, %(now)s, false, 'PUT', content FROM bench_stage_resources ORDER BY pk",
             now),
            (f"INSERT INTO resource_versions ({version_columns}) SELECT s.pk, 1, 'Slot',"
             f" s.slot_id, %(now)s, false, 'PUT', {content}"
             " FROM bench_slot s JOIN bench_kind k USING (kind)", now)]),
        ("sas_slot", 4, [
            ("INSERT INTO sas_slot (slot_pk, slot_id, schedule_id, start, fragment, cpts)"
             " SELECT s.pk, s.slot_id, s.sched_id, s.start_utc,"
             f" {_render_sql('f', markers[1], sas=True)},"
             """ CASE WHEN k.cpts THEN '["' || s.cpts_id || '"]' END"""
             " FROM bench_slot s JOIN bench_kind k USING (kind) WHERE k.sas", None)]),
        ("sas_place", 0.2, [
            (f"INSERT INTO sas_place ({', '.join(places.COLUMNS)}) SELECT"
             f" {', '.join(places.COLUMNS)} FROM bench_stage_sas_place"
             " ORDER BY schedule_id, idnps", None)]),
    ]
    for table in INDEX_TABLES:
        columns = ", ".join(slots.INDEX_COLUMNS[table])
        picked = ", ".join("k." + c for c in slots.INDEX_COLUMNS[table])
        target = f"INSERT INTO search_{table} (res_pk, {columns}) "
        statements: list[Statement] = [(
            target + f"SELECT res_pk, {columns} FROM bench_stage_{table}"
            f" ORDER BY {STAGING_ORDER[table]}", None)]
        constant = sum(len(t.constant_rows[table]) for t in templates) / len(templates)
        if table == "token":
            # Kind by kind in index-key order, each kind's slots by an index-only scan: the
            # rows arrive grouped by key and ix_search_token_code is built from sorted input.
            statements.append((
                target + f"SELECT b.pk, {picked}"
                " FROM (SELECT * FROM bench_kind_token ORDER BY res_type, param, code, system,"
                "       kind) k"
                " CROSS JOIN LATERAL (SELECT s.pk FROM bench_slot s WHERE s.kind = k.kind"
                "                     OFFSET 0) b", None))
        elif constant:
            statements.append((target + f"SELECT s.pk, {picked} FROM bench_slot s"
                               f" JOIN bench_kind_{table} k USING (kind)", None))
        if table in VARIABLE_SQL:
            statements.append((target + VARIABLE_SQL[table], None))
        tasks.append((f"search_{table}", 0.1 + 1.2 * constant + 1.5 * (table in VARIABLE_SQL),
                      statements))
    return tasks


def _run_load(url: str, table: str, statements: list[Statement], now: datetime) -> int:
    with connect(url) as conn, conn.transaction():
        # A table emptied in this transaction is loaded without WAL when wal_level=minimal.
        conn.execute(f"TRUNCATE {table}")
        return sum(conn.execute(sql, {"now": now} if params is not None and "now" in params
                                else params).rowcount for sql, params in statements)


def run_parallel(jobs: int, tasks: Sequence[tuple[str, float, Callable[[], Any]]],
                 log: Log) -> dict[str, Any]:
    """Run tasks `jobs` at a time, costliest first; returns each task's result by name."""
    results: dict[str, Any] = {}

    def timed(name: str, action: Callable[[], Any]) -> None:
        started = time.monotonic()
        results[name] = action()
        log(f"  {name}: {time.monotonic() - started:.1f} s")

    ordered = sorted(tasks, key=lambda t: -t[1])
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(timed, name, action) for name, _, action in ordered]:
            future.result()
    return results


# -- the whole run ---------------------------------------------------------------------------

def _sizes(conn: psycopg.Connection) -> dict[str, Any]:
    tables = {t: scalar(conn, "SELECT pg_total_relation_size(%s)", [t]) for t in ddl.TABLES}
    database = scalar(conn, "SELECT pg_database_size(current_database())")
    return {"tables": tables, "database": database}


def _check_empty(conn: psycopg.Connection) -> None:
    if scalar(conn, "SELECT EXISTS (SELECT 1 FROM resources)"):
        raise SystemExit("the database already holds resources: use --reset (drops the "
                         "public schema) or a fresh database")


def generate(database_url: str, practitioners: int, weeks: int, seed: int = 1, *,
             start: date | None = None, jobs: int = 2, reset: bool = False,
             base_url: str = Settings.fhir_base_url, log: Log = print,
             keep_helpers: bool = False, sos_associations: int = 0) -> dict[str, Any]:
    url = conninfo(database_url)
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        now_clock = time.monotonic()
        timings[name] = round(now_clock - clock, 1)
        log(f"{name}: {timings[name]} s")
        clock = now_clock

    started = time.monotonic()
    if reset:
        with connect(url) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    start = start or datetime.now(ZoneInfo(TZ)).date()
    now = utc_now()
    world = build_world(practitioners, weeks, start, seed)
    templates = slots.build_templates(now, base_url)
    with connect(url) as conn:
        _check_empty(conn)
        schema = ddl.capture(conn)
        ddl.drop(conn, schema)
        markers = load_helpers(conn, world, templates)
    phase("migrate, world, templates, helper tables")

    # Children first (fork before any thread or connection of ours is alive).
    context = multiprocessing.get_context("fork")
    children = []
    for part in range(jobs):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_stage, args=(url, world, seed, now, base_url, part,
                                                     jobs, send), daemon=False)
        child.start()
        send.close()
        children.append((child, receive))
    with connect(url) as conn:
        for statement, params in _skeleton_sql(world, seed):
            conn.execute(statement, params)
        slot_count = scalar(conn, "SELECT count(*) FROM bench_slot")
    log(f"  slot skeleton: {slot_count} slots")
    staged: Counter[str] = Counter()
    for child, receive in children:
        result = receive.recv()
        child.join()
        if not isinstance(result, dict):
            raise RuntimeError(f"staging failed: {result}")
        staged.update(result)
    phase("non-Slot resources staged + Slot skeleton")

    loaded = run_parallel(jobs, [
        (table, cost, partial(_run_load, url, table, statements, now))
        for table, cost, statements in load_tasks(templates, markers)], log)
    with connect(url) as conn:
        for name in () if keep_helpers else (*HELPERS, *SKELETON):
            conn.execute(f"DROP TABLE {name}")
        conn.execute("SELECT setval(pg_get_serial_sequence('resources', 'pk'),"
                     " (SELECT max(pk) FROM resources))")
    phase("tables loaded")

    def sql(statements: list[str]) -> Callable[[], None]:
        def action() -> None:
            with connect(url) as conn:
                for statement in statements:
                    conn.execute(statement)
        return action

    with connect(url) as conn:
        sizes = _sizes(conn)["tables"]
    run_parallel(jobs, [(f"vacuum {t}", sizes[t], sql([f"VACUUM (FREEZE, ANALYZE) {t}"]))
                        for t in ddl.TABLES], log)
    phase("VACUUM (FREEZE, ANALYZE)")
    run_parallel(jobs, [(i.name, sizes[i.table] * (1 + i.create.count(",")),
                         sql(i.statements())) for i in schema.indexes], log)
    phase("indexes and keys")
    with connect(url) as conn:
        for fk in schema.foreign_keys:
            conn.execute(fk.add_not_valid())
    run_parallel(jobs, [(fk.name, sizes[fk.table], sql([fk.validate()]))
                        for fk in schema.foreign_keys], log)
    with connect(url) as conn:
        conn.execute("CHECKPOINT")
    phase("foreign keys validated, checkpoint")
    # The CPTS offers' projection, and SOS Médecins associations written by the application.
    written = offers.write_offers(database_url, base_url, sos_associations, start,
                                  weeks * 7, seed, log)
    with connect(url) as conn:
        conn.execute("ANALYZE")
    phase("CPTS offers and SOS Médecins associations")

    total = round(time.monotonic() - started, 1)
    resource_counts = {k: v for k, v in staged.items()
                       if k not in INDEX_TABLES and k != "sas_place"}
    resource_counts["Slot"] = slot_count
    resource_counts.update(written)
    with connect(url) as conn:
        measured = _sizes(conn)
        info = {
            "practitioners": practitioners, "weeks": weeks, "seed": seed,
            "start": start.isoformat(), "timezone": TZ, "base_url": base_url,
            "generated_at": format_instant(now), "generation_seconds": total,
            "phases": timings, "resources": resource_counts, "rows": loaded,
            "bytes": measured["tables"], "database_bytes": measured["database"],
            "jobs": jobs, "server_version": scalar(conn, "SHOW server_version"),
        }
        conn.execute("CREATE TABLE IF NOT EXISTS bench_dataset (id int PRIMARY KEY,"
                     " info jsonb NOT NULL)")
        conn.execute("INSERT INTO bench_dataset VALUES (1, %s) ON CONFLICT (id) DO UPDATE"
                     " SET info = excluded.info", [Jsonb(info)])
    log(f"total: {total} s")
    return info


def _report(info: dict[str, Any], log: Log) -> None:
    log("\nresources: " + ", ".join(f"{k} {v:,}" for k, v in sorted(info["resources"].items())))
    log("table               rows         size")
    for table in ddl.TABLES:
        log(f"{table:<18} {info['rows'][table]:>12,} {info['bytes'][table] / 2**30:>8.2f} GiB")
    log(f"database size: {info['database_bytes'] / 2**30:.2f} GiB; "
        f"generated in {info['generation_seconds']} s")


def _throwaway(data_dir: Path, dbname: str) -> str:
    from bench.pgserver import KeptPostgres

    server = KeptPostgres(data_dir).start()
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return server.url(dbname)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--database-url", help="an empty (or --reset) PostgreSQL database")
    target.add_argument("--throwaway", action="store_true",
                        help="start (or reuse) a tuned PostgreSQL in --data-dir, kept after exit"
                             " (stop it with python -m bench.pgserver stop --data-dir DIR)")
    parser.add_argument("--data-dir", type=Path, default=Path("/work/pgbench-data"))
    parser.add_argument("--dbname", default="bench", help="database name with --throwaway "
                        "(dropped and recreated)")
    parser.add_argument("--practitioners", type=int, default=100_000)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=None,
                        help="first day of slots (default: today in Europe/Paris)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--reset", action="store_true",
                        help="drop and recreate the public schema of --database-url first")
    parser.add_argument("--base-url", default=Settings.fhir_base_url)
    parser.add_argument("--keep-helpers", action="store_true",
                        help="keep the bench_* staging tables (to debug the generator)")
    parser.add_argument("--sos-associations", type=int, default=None,
                        help="SOS Médecins associations (default: one per 2,000 practitioners)")
    args = parser.parse_args(argv)
    database_url = (_throwaway(args.data_dir, args.dbname) if args.throwaway
                    else args.database_url)
    print(f"database: {database_url}", flush=True)
    info = generate(database_url, args.practitioners, args.weeks, args.seed, start=args.start,
                    jobs=args.jobs, reset=args.reset, base_url=args.base_url,
                    log=lambda line: print(line, flush=True), keep_helpers=args.keep_helpers,
                    sos_associations=(offers.default_associations(args.practitioners)
                                      if args.sos_associations is None
                                      else args.sos_associations))
    _report(info, print)
    print(f"\nDATABASE_URL={database_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
