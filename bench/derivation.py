"""Slots derived from availability rules (app/gap), measured beside a write floor.

    python -m bench.derivation --database-url URL [--practitioners 10000] [--weeks 8]
    python -m bench.derivation --sqlite instance/bench-gap.db --practitioners 200

Loads `--practitioners` Practitioners, each with a Schedule defined only by rules (five
weekly half-days of four hours, 15-minute slots, a day off), then, in process, with the
worker's code (app/gap/derivation.py, one transaction per Schedule):

- first derivation: every Schedule's slots over `--weeks` weeks (80 slots a week, less the
  day off: 10,000 practitioners and 8 weeks give about 6.2 M slots) — throughput,
  p50/p95/p99 per Schedule;
- one rule edit: the afternoon of one weekday moved by an hour on `--edits` Schedules (the
  Schedule written, its slots re-derived: 4 deleted, 4 created a week) — p50/p95/p99 of
  the whole edit, and how many slots each touched;
- the floor, for both: the rows of `--sample` of those writes (resources, versions, index
  rows, SAS projection, outbox) written again by one COPY/executemany per table with no
  application code (bench/write_floor.py), ratio app / floor of the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, text

from app import create_app
from app.clock import utc_now
from app.config import Settings
from app.db import make_engine
from app.gap.availability import AVAILABILITY_URL, DURATION_URL
from app.gap.derivation import derive_due
from app.state import AppState, state_of
from app.storage.migrate import upgrade
from app.storage.schema import gap_derivation, resources
from bench import write_floor
from bench.run import _revision
from bench.writes import Case, Recorder

TYPE = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-schedule-type"
RFC2445 = "https://www.ietf.org/rfc/rfc2445"
HALF_DAYS = (("MO", "08:30", "12:30"), ("TU", "14:00", "18:00"), ("WE", "08:30", "12:30"),
             ("TH", "08:30", "12:30"), ("FR", "14:00", "18:00"))
Resource = dict[str, Any]


def _period(identifier: str, kind: str, start: str, end: str,
            day: str | None = None) -> Resource:
    parts: list[Resource] = [
        {"url": "identifier", "valueIdentifier": {"value": identifier}},
        {"url": "type", "valueCoding": {"system": TYPE, "code": kind}},
        {"url": "start", "valueDateTime": start}, {"url": "end", "valueDateTime": end}]
    if day is not None:
        parts.append({"url": "rrule", "extension": [
            {"url": "freq", "valueCoding": {"system": RFC2445, "code": "WEEKLY"}},
            {"url": "byDay", "valueString": day}]})
    return {"url": AVAILABILITY_URL, "extension": parts}


def schedule_for(number: int, monday: date, shift_hours: int = 0) -> Resource:
    """A Schedule defined by rules only; `shift_hours` moves Friday's afternoon."""
    rules = []
    for day, start, end in HALF_DAYS:
        offset = ["MO", "TU", "WE", "TH", "FR"].index(day)
        when = monday + timedelta(days=offset)
        hour = int(start[:2]) + (shift_hours if day == "FR" else 0)
        rules.append(_period(f"b{number}-{day}", "free", f"{when}T{hour:02d}{start[2:]}:00+01:00",
                             f"{when}T{int(end[:2]) + (shift_hours if day == 'FR' else 0):02d}"
                             f"{end[2:]}:00+01:00", day))
    holiday = monday + timedelta(weeks=3)  # a Monday off
    rules.append(_period(f"b{number}-ferie", "busy-unavailable", f"{holiday}",
                         f"{holiday + timedelta(days=1)}"))
    return {"resourceType": "Schedule", "id": f"bench-gap-{number}", "active": True,
            "meta": {"security": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R314-"
                                   "TypeCreneau/FHIR/TRE-R314-TypeCreneau", "code": "PUBLIC"}]},
            "actor": [{"reference": f"Practitioner/bench-gap-{number}"}],
            "extension": [{"url": DURATION_URL, "extension": [
                {"url": "serviceType", "valueCodeableConcept": {"coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                     "code": "AMB"}]}},
                {"url": "duration", "valueDuration": {"value": 15, "code": "min",
                                                      "system": "http://unitsofmeasure.org"}}]},
                *rules]}


def practitioner(number: int) -> Resource:
    return {"resourceType": "Practitioner", "id": f"bench-gap-{number}", "active": True,
            "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.1",
                            "value": f"8199{number:08d}"}],
            "name": [{"family": f"Règle-{number}", "given": ["Camille"]}]}


def load(state: AppState, count: int, monday: date) -> None:
    """The practitioners and their rule-defined Schedules, a thousand per transaction."""
    for first in range(0, count, 1000):
        with state.writing("bench.derivation") as repo:
            for number in range(first, min(count, first + 1000)):
                repo.update("Practitioner", f"bench-gap-{number}", practitioner(number))
                repo.update("Schedule", f"bench-gap-{number}", schedule_for(number, monday))


def derive_each(state: AppState, case: Case, recorder: Recorder, sample: int) -> int:
    """Derive every queued Schedule, one at a time; the first `sample` recorded."""
    count = 0
    while True:
        with recorder.write() if count < sample else contextlib.nullcontext():
            started = time.perf_counter()
            done = derive_due(state, budget_seconds=float("inf"), limit=1)
            seconds = time.perf_counter() - started
        if not done:
            return count
        case.latencies.append(seconds)
        count += 1
        if count % 1000 == 0:
            print(f"  {count:,} Schedules derived", flush=True)


def slot_count(state: AppState) -> int:
    with state.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(resources).where(
            resources.c.res_type == "Slot", resources.c.deleted.is_(False))).scalar_one())


def report(cases: list[Case]) -> str:
    lines = ["| case | n | per Schedule p50 / p95 / p99 ms | slots/s | floor p50 ms "
             "| app / floor |", "|---|---:|---|---:|---:|---:|"]
    for case in cases:
        lines.append(f"| {case.name} | {len(case.latencies):,} | {case.p(50):.1f} / "
                     f"{case.p(95):.1f} / {case.p(99):.1f} | {case.throughput:,.0f} | "
                     f"{case.p(50, True):.1f} | {case.ratio:.2f}× |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.derivation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--database-url")
    target.add_argument("--sqlite", type=Path)
    parser.add_argument("--practitioners", type=int, default=10000)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--sample", type=int, default=20, help="writes replayed as the floor")
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite:///{args.sqlite.resolve()}"
    os.environ.setdefault("SECURITY_PROFILE", "development")
    engine = make_engine(url)
    upgrade(engine)
    app = create_app(Settings.from_env(database_url=url, gap_horizon_days=7 * args.weeks),
                     engine=engine)
    state = state_of(app)
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday())
    load_avg = os.getloadavg()
    print(f"{engine.dialect.name}: {args.practitioners:,} practitioners, {args.weeks} weeks; "
          f"app {_revision()}; load average {load_avg[0]:.2f} {load_avg[1]:.2f} "
          f"{load_avg[2]:.2f}", flush=True)
    started = time.perf_counter()
    load(state, args.practitioners, monday)
    print(f"loaded in {time.perf_counter() - started:.0f} s", flush=True)

    before = slot_count(state)
    first = Case("first derivation", 0)
    recorder = Recorder(engine, True)
    wall = time.perf_counter()
    derived = derive_each(state, first, recorder, args.sample)
    wall = time.perf_counter() - wall
    slots = slot_count(state) - before
    first.resources_per_request = round(slots / max(derived, 1))
    recorder.finish(first)
    print(f"{derived:,} Schedules, {slots:,} slots derived in {wall:.0f} s "
          f"({slots / wall:,.0f} slots/s); rows per write {dict(first.rows)}", flush=True)

    edit = Case("one rule edit (Friday afternoon +1 h) and its slots", 0)
    edited = Recorder(engine, True)
    touched: list[int] = []
    for number in range(min(args.edits, args.practitioners)):
        with engine.begin() as conn:  # nothing else due: only this edit is measured
            conn.execute(delete(gap_derivation))

        def work(number: int = number) -> None:
            with state.writing("bench.derivation") as repo:
                repo.update("Schedule", f"bench-gap-{number}",
                            schedule_for(number, monday, shift_hours=1))
            derive_due(state, budget_seconds=float("inf"), limit=1)

        if number < args.sample:
            written, seconds = recorded(engine, f"bench-gap-{number}", work)
            edit.latencies.append(seconds)
            edited.writes.append(written)
            touched.append(len(written.created) + len(written.changed))
        else:
            start = time.perf_counter()
            work()
            edit.latencies.append(time.perf_counter() - start)
    edit.resources_per_request = round(statistics.mean(touched)) if touched else 0
    edited.finish(edit)
    load_avg = os.getloadavg()
    print(f"\nload average after: {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}\n")
    print(report([first, edit]))
    for case in (first, edit):
        for error in case.errors[:3]:
            print(f"  {case.name}: {error}")
    engine.dispose()
    return 0


def recorded(engine: Any, schedule_id: str, work: Any) -> tuple[write_floor.Write, float]:
    """Run `work` (a rule edit and its derivation), timed by the caller's floor: the
    Schedule and those of its slots that changed, with their rows before and after."""
    with engine.connect() as conn:
        pks = list(conn.execute(text(
            "SELECT pk FROM resources WHERE res_type = 'Schedule' AND res_id = :i UNION "
            "SELECT res_pk FROM search_reference WHERE res_type = 'Slot' AND param = "
            "'schedule' AND target_id = :i"), {"i": schedule_id}).scalars())
    before = write_floor.marks(engine)
    prior = write_floor.capture(engine, pks)
    since = utc_now()
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    changed = set(write_floor.changed_since(engine, before, since))
    kept = write_floor.Snapshot({table: [row for row in rows if row[0] in changed]
                                 for table, rows in prior.rows.items()})
    return write_floor.record(engine, before, sorted(changed), kept, since), seconds


if __name__ == "__main__":
    sys.exit(main())
