"""Where the time of one SAS search goes: SQL plans, SQL vs Python, Python profile.

    python -m bench.profile --database-url URL [--practitioners 25] [--requests 200]
        [--explain] [--pyinstrument]

Runs the app in-process (Flask test client: no HTTP, no gunicorn) on the same seeded request
set as bench.run. It always prints the split between time inside SQL statements (driver
included) and the rest; `--explain` prints EXPLAIN (ANALYZE, BUFFERS) of every statement
of one request; `--pyinstrument` profiles the requests (needs pyinstrument importable).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event

from app import create_app
from app.config import Settings
from bench.generate import conninfo
from bench.run import _dataset
from bench.sas import ACCEPT, practitioner_identifiers, request_set


class SqlClock:
    """Statements run by the app, and the time spent inside each (driver included)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any, float]] = []
        self._started = 0.0

    def before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        self._started = time.perf_counter()

    def after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        self.statements.append((statement, parameters, time.perf_counter() - self._started))


def summarize(path: Path, top: int = 40) -> str:
    """Inclusive and self share of each function in py-spy's collapsed stacks (`--format raw`)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r" \((?:/[^)]*/)?(site-packages/)?([^)]*)\)", r" (\2)", f)
                  for f in stack.split(";")[1:]]  # drop the process frame
        for frame in set(frames):
            inclusive[frame] += samples
        if frames:
            own[frames[-1]] += samples
    lines = [f"{total} samples; inclusive share (top {top}):"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines.append(f"self share (top {top}):")
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--collapsed", type=Path,
                        help="only summarize py-spy collapsed stacks (bench.run --py-spy FILE)")
    parser.add_argument("--practitioners", type=int, default=25)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--pyinstrument", action="store_true")
    args = parser.parse_args(argv)
    if args.collapsed:
        print(summarize(args.collapsed))
        return 0
    if not args.database_url:
        parser.error("--database-url is required")

    url = conninfo(args.database_url)
    info = _dataset(url)
    with psycopg.connect(url) as conn:
        identifiers = practitioner_identifiers(conn)
    requests = request_set(identifiers, args.practitioners, args.requests,
                           date.fromisoformat(info["start"]), info["weeks"] * 7, args.seed)
    settings = Settings.from_env(database_url=args.database_url, fhir_base_url=info["base_url"])
    app = create_app(settings)
    engine = app.extensions["agenda"].engine
    client = app.test_client()
    for request in requests:  # warm-up
        client.get(request.path, headers={"Accept": ACCEPT})

    clock = SqlClock()
    event.listen(engine, "before_cursor_execute", clock.before)
    event.listen(engine, "after_cursor_execute", clock.after)
    profiler = None
    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    totals = []
    started = time.perf_counter()
    for request in requests:
        began = time.perf_counter()
        response = client.get(request.path, headers={"Accept": ACCEPT})
        assert response.status_code == 200, response.get_data(as_text=True)
        totals.append(time.perf_counter() - began)
    wall = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
    event.remove(engine, "before_cursor_execute", clock.before)
    event.remove(engine, "after_cursor_execute", clock.after)

    per_request = len(clock.statements) / len(requests)
    sql = sum(s[2] for s in clock.statements)
    print(f"{len(requests)} requests of {args.practitioners} practitioners in-process: "
          f"median {statistics.median(totals) * 1000:.2f} ms, "
          f"mean {wall / len(requests) * 1000:.2f}"
          f" ms; {per_request:.1f} statements per request; time in SQL (driver included) "
          f"{sql / len(requests) * 1000:.2f} ms, the rest {(wall - sql) / len(requests) * 1000:.2f}"
          " ms per request")
    by_shape: dict[str, list[float]] = {}
    for statement, _params, seconds in clock.statements:
        key = " ".join(statement.split())[:110]
        by_shape.setdefault(key, []).append(seconds)
    for key, values in sorted(by_shape.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {sum(values) / len(requests) * 1000:7.3f} ms/request  n={len(values):5d}  {key}")

    if args.explain:
        first = [s for s in clock.statements[: int(per_request + 0.5)]]
        with engine.connect() as conn:
            for statement, params, _seconds in first:
                if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    continue
                print("\n" + " ".join(statement.split()))
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                for (line,) in plan:
                    print("    " + line)
    if profiler is not None:
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
