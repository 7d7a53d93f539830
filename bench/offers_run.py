"""Measure the CPTS and SOS Médecins searches through gunicorn, beside their floors.

    python -m bench.offers_run --database-url URL [--requests 300]

On a dataset of `python -m bench.generate` (CPTS share and SOS associations included):
the CPTS search (the individual one with the CPTS includes) for 1 and 25 practitioners,
and the SOS Médecins search for 1 and 25 associations (at most as many as the dataset has),
over 72 h, one client (`http.client`, one connection, timed from send to last byte); each
beside its floor (bench/offers.py: one SQL statement + orjson, best p95 of three passes).
Targets, as for the individual search: p95 ≤ 50 ms for 25 identifiers, ≤ 3× the floor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from bench import offers
from bench.floor import FloorResult
from bench.generate import conninfo, scalar
from bench.run import (
    TARGET_FLOOR_RATIO,
    TARGET_P95_MS,
    Case,
    gunicorn,
    percentile,
    python_clients,
)
from bench.sas import practitioner_identifiers, request_set

Floor = Callable[[psycopg.Connection, Any, str], FloorResult]


def floor_case(url: str, requests: Sequence[Any], base: str, run: Floor, case: Case,
               passes: int) -> None:
    """A warm-up pass, then `passes` timed passes; the floor is the one with the lowest p95."""
    best: list[FloorResult] | None = None
    with psycopg.connect(url, autocommit=True) as conn:
        for request in requests:
            run(conn, request, base)
        for _ in range(passes):
            results = [run(conn, request, base) for request in requests]
            if best is None or percentile([r.seconds for r in results], 95) < percentile(
                    [r.seconds for r in best], 95):
                best = results
    assert best is not None
    case.latencies_ms = [r.seconds * 1000 for r in best]
    case.slots = [r.slots for r in best]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.offers_run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--floor-passes", type=int, default=3)
    args = parser.parse_args(argv)
    url = conninfo(args.database_url)
    with psycopg.connect(url) as conn:
        info = scalar(conn, "SELECT info FROM bench_dataset WHERE id = 1")
        identifiers = practitioner_identifiers(conn)
        sirets = offers.association_sirets(conn)
    start, days, base = date.fromisoformat(info["start"]), info["weeks"] * 7, info["base_url"]
    sets: dict[str, tuple[list[Any], Floor]] = {}
    for k in (1, 25):
        sets[f"CPTS, {k} practitioner{'s' * (k > 1)}"] = (offers.cpts_set(request_set(
            identifiers, k, args.requests, start, days, args.seed)), offers.cpts_floor)
        sos_k = min(k, len(sirets))
        sets[f"SOS, {sos_k} association{'s' * (sos_k > 1)}"] = (offers.sos_set(
            sirets, k, args.requests, start, days, args.seed), offers.sos_floor)
    print(f"dataset: {info['practitioners']:,} practitioners, "
          f"{info['resources'].get('Slot', 0):,} generated slots, "
          f"{info['resources'].get('sos_associations', 0)} SOS associations "
          f"({info['resources'].get('sos_places', 0)} places, "
          f"{info['resources'].get('sos_slots', 0):,} slots), "
          f"{info['resources'].get('cpts_offers', 0)} CPTS offers", flush=True)
    floors = {}
    for name, (requests, run) in sets.items():
        floors[name] = Case(f"floor, {name}", 0, 1, tool="floor")
        floor_case(url, requests, base, run, floors[name], args.floor_passes)
    served = {}
    with tempfile.TemporaryDirectory(prefix="bench-offers-") as directory, gunicorn(
            args.database_url, args.workers, "sync", 1, Path(directory) / "gunicorn.log"
            ) as (server, _process):
        for name, (requests, _run) in sets.items():
            python_clients(server, requests, 1, Case("warm-up", 0, 1))
            served[name] = Case(name, 0, 1)
            python_clients(server, requests, 1, served[name])
    print()
    print("| case | n | p50 ms | p95 ms | floor p95 ms | p95 / floor | slots (mean) | targets |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, case in served.items():
        floor = floors[name]
        ratio = case.p(95) / floor.p(95)
        within = ratio <= TARGET_FLOOR_RATIO
        checks = [f"≤ {TARGET_FLOOR_RATIO:g}× floor: {'yes' if within else 'NO'}"]
        if name.split(", ")[1].startswith("25"):
            checks.insert(0, f"p95 ≤ {TARGET_P95_MS:g} ms: "
                             f"{'yes' if case.p(95) <= TARGET_P95_MS else 'NO'}")
        mean = sum(case.slots) / len(case.slots) if case.slots else 0
        errors = f", {case.errors} errors" if case.errors else ""
        print(f"| {name} | {case.n} | {case.p(50):.2f} | {case.p(95):.2f} | "
              f"{floor.p(95):.2f} | {ratio:.1f} | {mean:.1f} | {'; '.join(checks)}{errors} |")
        mismatched = sum(got > want for got, want in zip(case.slots, floor.slots, strict=True))
        if mismatched:
            print(f"note: {name}: {mismatched} answers hold more slots than the floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
