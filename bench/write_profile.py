"""Where the time of a write goes: validation, indexing, SQL, audit, outbox matching,
projections — the split of bench.writes' Bundle cases, in-process.

    python -m bench.write_profile --database-url URL | --sqlite FILE [--entries 1000]

Runs the app in-process (Flask test client: no HTTP, no gunicorn) on the Bundles bench.writes
sends, with timers around each interceptor's hooks and the indexer, and SQLAlchemy's cursor
events around every statement. Time is exclusive: a statement run by an interceptor is that
interceptor's SQL, not its Python; what no timer covers is the request itself (routing, JSON,
Bundle parsing and response); `repository` is the repository's own Python and SQL.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event

from app import create_app
from app.config import Settings
from app.db import make_engine
from app.storage import indexer
from app.storage.migrate import upgrade
from app.storage.repository import Repository
from bench.writes import Dataset, _bundle, flipped, prepare_sqlite

GROUPS = {"AccessGuard": "access", "ValidationInterceptor": "validation",
          "SubscriptionRules": "rules", "RegulatorRules": "rules", "SlotBooking": "booking",
          "SasSlotProjection": "projection", "SasPlaceProjection": "projection",
          "SasNotifier": "outbox matching", "SubscriptionMatcher": "outbox matching",
          "AuditTrail": "audit"}
REPOSITORY = ("_write",)
HOOKS = ("before_write", "after_write", "before_noop_write", "before_commit")


class Split:
    """Exclusive time per category; SQL statements charged to the category running them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.python: Counter[str] = Counter()
        self.sql: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.stack: list[str] = ["request"]
        self.mark = time.perf_counter()
        self._sql_started = 0.0

    def _switch(self, category: str | None) -> None:
        now = time.perf_counter()
        self.python[self.stack[-1]] += now - self.mark
        self.mark = now
        if category is None:
            self.stack.pop()
        else:
            self.stack.append(category)

    def wrap(self, category: str, function: Callable[..., Any], *,
             nested: bool = False) -> Callable[..., Any]:
        """`nested`: only when the request itself calls it (else the caller's category)."""
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._switch(category if not nested or self.stack[-1] == "request"
                         else self.stack[-1])
            try:
                return function(*args, **kwargs)
            finally:
                self._switch(None)
        return timed

    def before_sql(self, *_args: Any) -> None:
        now = time.perf_counter()
        self.python[self.stack[-1]] += now - self.mark
        self._sql_started = now

    def after_sql(self, *_args: Any) -> None:
        now = time.perf_counter()
        self.sql[self.stack[-1]] += now - self._sql_started
        self.statements[self.stack[-1]] += 1
        self.mark = now


def instrument(app: Any, split: Split) -> None:
    state = app.extensions["agenda"]
    for interceptor in state.interceptors:
        group = GROUPS.get(type(interceptor).__name__, type(interceptor).__name__)
        for hook in HOOKS:
            method = getattr(interceptor, hook, None)
            if method is not None:
                setattr(interceptor, hook, split.wrap(group, method))
    indexer.index_rows = split.wrap("indexing", indexer.index_rows)  # type: ignore[assignment]
    defer = Repository.defer

    def timed_defer(repo: Repository, key: Any, task: Callable[[], None]) -> None:
        # Deferred work is charged to whoever deferred it (the interceptor running now).
        defer(repo, key, split.wrap(split.stack[-1], task))

    Repository.defer = timed_defer  # type: ignore[method-assign]
    # The flush writes the staged rows (COPY bypasses SQLAlchemy's cursor events): its
    # time is SQL plus the Python that feeds the rows, whoever triggered it.
    Repository.flush = split.wrap("flush (set-based SQL)", Repository.flush)  # type: ignore
    for name in REPOSITORY:
        if hasattr(Repository, name):
            setattr(Repository, name, split.wrap("repository", getattr(Repository, name),
                                                 nested=True))
    event.listen(state.engine, "before_cursor_execute", split.before_sql)
    event.listen(state.engine, "after_cursor_execute", split.after_sql)


def profile(client: Any, split: Split, bodies: list[bytes]) -> float:
    total = 0.0
    for body in bodies:
        split.stack, split.mark = ["request"], time.perf_counter()
        started = time.perf_counter()
        response = client.post("/fhir", data=body, content_type="application/fhir+json",
                               headers={"Prefer": "return=minimal"})
        total += time.perf_counter() - started
        split.python["request"] += time.perf_counter() - split.mark
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return total


def table(split: Split, total: float, resources: int) -> str:
    lines = ["| part | Python ms | SQL ms | statements | share |", "|---|---:|---:|---:|---:|"]
    parts = sorted(set(split.python) | set(split.sql),
                   key=lambda k: -(split.python[k] + split.sql[k]))
    for part in parts:
        spent = split.python[part] + split.sql[part]
        lines.append(f"| {part} | {split.python[part] * 1000:.0f} | {split.sql[part] * 1000:.0f}"
                     f" | {split.statements[part]} | {spent / total:.0%} |")
    lines.append(f"| **total** | {sum(split.python.values()) * 1000:.0f} | "
                 f"{sum(split.sql.values()) * 1000:.0f} | {sum(split.statements.values())} | "
                 f"{total * 1000:.0f} ms, {resources / total:,.0f} resources/s |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.write_profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--database-url")
    target.add_argument("--sqlite", type=Path)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kind", default="transaction", choices=("transaction", "batch"))
    args = parser.parse_args(argv)
    os.environ.setdefault("SECURITY_PROFILE", "development")  # as bench.writes' gunicorn
    url = args.database_url or prepare_sqlite(args.sqlite)
    engine = make_engine(url)
    upgrade(engine)
    app = create_app(Settings.from_env(database_url=url), engine=engine)
    client = app.test_client()
    data = Dataset.of(engine)
    split = Split()
    instrument(app, split)
    for action in ("create", "update"):
        def bundle(action: str = action) -> bytes:
            if action == "create":
                return orjson.dumps(_bundle(args.kind, [
                    {"resource": data.new_slot(), "request": {"method": "POST", "url": "Slot"}}
                    for _ in range(args.entries)]))
            return orjson.dumps(_bundle(args.kind, [
                {"resource": flipped(r), "request": {"method": "PUT", "url": f"Slot/{r['id']}"}}
                for _, r in data.existing_slots(args.entries)]))

        profile(client, split, [bundle()])  # warm-up
        split.reset()
        total = profile(client, split, [bundle() for _ in range(args.rounds)])
        print(f"\n{engine.dialect.name}: {args.kind} of {args.entries} Slots, {action}, "
              f"{args.rounds} Bundles in-process\n")
        print(table(split, total, args.entries * args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
