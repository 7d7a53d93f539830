"""Database-side experiments and checks around the SAS search benchmark.

    python -m bench.experiments stats apply|drop --database-url URL
    python -m bench.experiments check --database-url URL

`stats` creates (or drops) the extended statistics of migration 0006 under other names, to
measure the planner with and without them. `check` verifies that the `sas_place` projection
of the database is exactly what the application's rebuild computes from the stored resources
(in a transaction that is rolled back): the projection kept by the interceptor, filled by
migration 0007 or written by the generator must not drift from the place rules.

The in-memory patches measured here before (one statement, no pre-ping, pre-shaped places)
are now the application's own code: see bench/README.md, "Applied".
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import psycopg
from sqlalchemy import text

from app.config import Settings
from app.db import make_engine
from app.sas.place_projection import rebuild
from bench.generate import conninfo
from bench.places import COLUMNS


def stats(action: str, url: str) -> None:
    """Extended statistics on the correlated (res_type, param, system|target_type) columns."""
    with psycopg.connect(url, autocommit=True) as conn:
        if action == "apply":
            conn.execute("CREATE STATISTICS IF NOT EXISTS bench_st_token (mcv)"
                         " ON res_type, param, system FROM search_token")
            conn.execute("CREATE STATISTICS IF NOT EXISTS bench_st_reference (mcv)"
                         " ON res_type, param, target_type FROM search_reference")
        else:
            conn.execute("DROP STATISTICS IF EXISTS bench_st_token")
            conn.execute("DROP STATISTICS IF EXISTS bench_st_reference")
        conn.execute("ANALYZE search_token")
        conn.execute("ANALYZE search_reference")


def check(database_url: str) -> int:
    """sas_place as stored vs rebuilt from the resources; 0 when identical."""
    settings = Settings.from_env(database_url=database_url)
    query = text(f"SELECT {', '.join(COLUMNS)} FROM sas_place")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            stored = {tuple(row) for row in conn.execute(query)}
            started = time.monotonic()
            places = rebuild(conn, settings.fhir_base_url, settings.local_identifier_system)
            seconds = time.monotonic() - started
            rebuilt = {tuple(row) for row in conn.execute(query)}
            transaction.rollback()
    finally:
        engine.dispose()
    missing, extra = rebuilt - stored, stored - rebuilt
    print(f"{len(stored)} sas_place rows, {places} places rebuilt in {seconds:.1f} s: "
          f"{len(missing)} missing, {len(extra)} extra")
    for row in sorted(missing)[:3] + sorted(extra)[:3]:
        print("  ", row[:4])
    return 1 if missing or extra else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("stats", "check"))
    parser.add_argument("action", nargs="?", help="stats: apply|drop")
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args(argv)
    if args.what == "check":
        return check(args.database_url)
    if args.action not in ("apply", "drop"):
        parser.error(f"stats {args.action}: expected apply or drop")
    stats(args.action, conninfo(args.database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
