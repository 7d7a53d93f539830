"""Notification latency and throughput: appointment change → SAS (INT_R03) via the outbox.

    python -m bench.notifications [--database-url URL] [--changes 10000]
        [--latency-changes 200] [--workers 1,2] [--poll 0.05]
        [--markdown bench/NOTIFICATIONS.md]

Without --database-url a throwaway PostgreSQL is started (tests/support/postgres.py) and
removed at the end. The bench migrates the database, writes a doctor, a SAS regulator and a
patient, and stands in for SAS with a local HTTP receiver (plain HTTP/1.1, keep-alive,
threads) that records when each FrAppointmentSAS arrives. For each worker count it starts
that many `fhir-agenda worker` processes (WORKER_POLL_SECONDS=--poll, SAS_BASE_URL = the
receiver) and, after a warm-up, measures:

- latency: --latency-changes single appointment changes (one transaction each, spaced by a
  random pause of 0 to --gap s so that the workers are idle-waiting), from the moment the
  change's COMMIT is sent to the moment the receiver has read the request; p50/p95/p99;
- throughput: a burst of --changes appointment changes committed at once (one transaction,
  like an import or a transaction Bundle; the write time is shown apart), from that COMMIT
  to the receiver's last request; messages/s. The first worker count starts with a burst of
  new appointments (POST to SAS), which the later bursts then move (PUT ?identifier=).

Each notification is matched to its change by the appointment's SAS technical identifier and
its `start`, which the bench makes unique per change. The appointments are written in this
process through the application's repository and interceptors (validation, SAS projection,
SAS notifier, Subscription matcher), exactly as an HTTP write would be.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select, text

from app import create_app
from app.config import Settings
from app.db import make_engine
from app.identifiers import IDENTIFIER_TYPE_SYSTEM, IDNPS_SYSTEM, SAS_TECHNICAL_SYSTEM
from app.sas.appointments import OPERATOR_EXTENSION, technical_id
from app.sas.regulators import REGULATOR_PROFILE, SAS_SOURCE
from app.state import AppState, state_of
from app.storage.migrate import upgrade
from app.storage.schema import outbox

FHIR_BASE_URL = "http://127.0.0.1:5000/fhir"  # only names things: nothing listens there
PARIS_WINTER = timezone(timedelta(hours=1))
FIRST_START = datetime(2027, 1, 4, 8, 0, tzinfo=PARIS_WINTER)
CREATE_BATCH = 500
AUTHOR = "bench.notifications"
Resource = dict[str, Any]


# -- SAS stand-in -----------------------------------------------------------------------------

class SasReceiver:
    """Records the arrival time of every FrAppointmentSAS, keyed by (technical id, start)."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[str, str], float] = {}
        self.requests = 0
        self.duplicates = 0
        self.unmatched = 0
        self.methods: dict[str, int] = {}
        self.duplicate_keys: list[tuple[str, str, str]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _receive(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                arrived = time.perf_counter()
                receiver.record(self.command, data, arrived)
                self.send_response(201 if self.command == "POST" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _receive

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def record(self, method: str, data: bytes, arrived: float) -> None:
        try:
            shaped = orjson.loads(data)
            key = (shaped["identifier"][0]["value"], shaped["start"])
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            key = None
        with self.changed:
            self.requests += 1
            self.methods[method] = self.methods.get(method, 0) + 1
            if key is None:
                self.unmatched += 1
            elif key in self.arrivals:
                self.duplicates += 1
                self.duplicate_keys.append((method, *key))
            else:
                self.arrivals[key] = arrived
            self.changed.notify_all()

    def wait_for(self, key: tuple[str, str], timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: key in self.arrivals, timeout)
            return self.arrivals.get(key)

    def wait_count(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.arrivals) >= count, timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- worker processes -------------------------------------------------------------------------

class Workers:
    """`fhir-agenda worker` processes, stopped with SIGTERM (they finish their message)."""

    def __init__(self, count: int, env: dict[str, str], log_dir: Path) -> None:
        executable = Path(sys.executable).with_name("fhir-agenda")
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []
        for index in range(count):
            with open(log_dir / f"worker-{count}-{index}.log", "ab") as log:
                self.processes.append(subprocess.Popen(
                    [str(executable), "worker"], env=env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent))

    def check(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"worker {process.pid} exited with {process.returncode}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the agenda -------------------------------------------------------------------------------

def doctor() -> Resource:
    return {"resourceType": "Practitioner",
            "identifier": [{"system": IDNPS_SYSTEM, "value": "810001234567"}],
            "active": True, "name": [{"family": "Martin", "given": ["Claire"],
                                      "prefix": ["Dr"]}]}


def regulator() -> Resource:
    return {"resourceType": "Practitioner",
            "meta": {"source": SAS_SOURCE, "profile": [REGULATOR_PROFILE]},
            "identifier": [{"type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM,
                                                 "code": "INTRN"}]},
                            "system": SAS_TECHNICAL_SYSTEM, "value": str(uuid.uuid4())}],
            "active": True, "name": [{"family": "REGULATEUR", "given": ["Bench"]}],
            "telecom": [{"system": "email", "value": f"bench-{uuid.uuid4().hex[:8]}@example.fr"}]}


class Agenda:
    """Appointments booked by the regulator; every change gets a start never used before."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.base = state.settings.fhir_base_url
        self.counter = 0
        with state.writing(AUTHOR) as repo:
            self.doctor = repo.create("Practitioner", doctor()).resource_id
            self.regulator = repo.create("Practitioner", regulator()).resource_id
            self.patient = repo.create("Patient", {
                "resourceType": "Patient", "name": [{"family": "Durand", "given": ["Paul"]}],
                "birthDate": "1980-05-17"}).resource_id
        self.appointments: list[Resource] = []

    def _next_start(self) -> tuple[str, str]:
        start = FIRST_START + timedelta(minutes=5 * self.counter)
        self.counter += 1
        return (start.isoformat(timespec="seconds"),
                (start + timedelta(minutes=15)).isoformat(timespec="seconds"))

    def new_appointment(self) -> Resource:
        start, end = self._next_start()
        return {"resourceType": "Appointment", "status": "booked", "start": start, "end": end,
                "created": "2027-01-01",
                "extension": [{"url": OPERATOR_EXTENSION,
                               "valueReference": {"reference": f"Practitioner/{self.regulator}"}}],
                "participant": [
                    {"actor": {"reference": f"Practitioner/{self.doctor}"},
                     "status": "accepted"},
                    {"actor": {"reference": f"Patient/{self.patient}"}, "status": "accepted"}]}

    def key(self, appointment: Resource) -> tuple[str, str]:
        return technical_id(appointment["id"], self.base), appointment["start"]

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Yields the repository; `.committing` is set to the time COMMIT is sent."""
        with self.state.writing(AUTHOR) as repo:
            yield repo
            repo.committing = time.perf_counter()  # type: ignore[attr-defined]

    def create(self, count: int) -> tuple[list[tuple[str, str]], float, float]:
        """`count` new appointments in one transaction: their keys, write time, COMMIT time."""
        started = time.perf_counter()
        created = []
        with self.transaction() as repo:
            for _ in range(count):
                appointment = self.new_appointment()
                stored = repo.create("Appointment", appointment)
                created.append(stored.as_dict())
        self.appointments.extend(created)
        return [self.key(a) for a in created], repo.committing - started, repo.committing

    def move(self, appointments: Sequence[Resource]) -> tuple[list[tuple[str, str]], float,
                                                                  float]:
        """Move each appointment to a new start, in one transaction."""
        started = time.perf_counter()
        keys = []
        with self.transaction() as repo:
            for appointment in appointments:
                start, end = self._next_start()
                appointment.update(start=start, end=end)
                stored, _ = repo.update("Appointment", appointment["id"], appointment)
                appointment["meta"] = stored.as_dict()["meta"]
                keys.append(self.key(appointment))
        return keys, repo.committing - started, repo.committing


def outbox_counts(state: AppState) -> dict[str, int]:
    with state.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
        return {status: int(count) for status, count in rows}


def retried(state: AppState) -> tuple[int, int]:
    """Messages that needed more than one attempt, and the most attempts any needed."""
    with state.engine.connect() as conn:
        count, most = conn.execute(select(func.count(), func.max(outbox.c.attempts)).where(
            outbox.c.attempts > 1)).one()
    return int(count), int(most or 0)


def queue_depth(state: AppState) -> int:
    counts = outbox_counts(state)
    return counts.get("pending", 0) + counts.get("delivering", 0)


# -- measurements -----------------------------------------------------------------------------

def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Latency:
    workers: int
    latencies: list[float]
    lost: int


@dataclass
class Burst:
    workers: int
    kind: str  # POST (new appointments) | PUT (changes to announced ones)
    size: int
    history: int  # rows already in the outbox (delivered) when the burst was committed
    write_seconds: float
    seconds: float  # COMMIT → last notification received

    @property
    def throughput(self) -> float:
        return self.size / self.seconds if self.seconds else float("nan")


def measure_latency(agenda: Agenda, receiver: SasReceiver, workers: Workers, count: int,
                    gap: float, rng: random.Random, timeout: float) -> Latency:
    latencies, lost = [], 0
    pool = agenda.appointments
    for index in range(count):
        appointment = pool[index % len(pool)]
        (key,), _, committing = agenda.move([appointment])
        arrived = receiver.wait_for(key, timeout)
        if arrived is None:
            workers.check()
            lost += 1
        else:
            latencies.append(arrived - committing)
        time.sleep(rng.uniform(0, gap))
    return Latency(len(workers.processes), latencies, lost)


def measure_burst(agenda: Agenda, receiver: SasReceiver, workers: Workers, size: int,
                  kind: str, timeout: float) -> Burst:
    history = sum(outbox_counts(agenda.state).values())
    expected = len(receiver.arrivals) + size
    if kind == "POST":
        keys, write_seconds, committing = agenda.create(size)
    else:
        keys, write_seconds, committing = agenda.move(agenda.appointments[:size])
    deadline = time.monotonic() + timeout
    while not receiver.wait_count(expected, 5):
        workers.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"burst: {len(receiver.arrivals) - expected + size} of {size} "
                               f"notifications after {timeout:.0f}s")
    last = max(receiver.arrivals[key] for key in keys)
    return Burst(len(workers.processes), kind, size, history, write_seconds, last - committing)


def warm_up(agenda: Agenda, receiver: SasReceiver, workers: Workers) -> None:
    """One change through every worker's connections, and an empty queue."""
    if not agenda.appointments:
        agenda.create(1)
    for _ in range(10):
        (key,), _, _ = agenda.move(agenda.appointments[:1])
        if receiver.wait_for(key, 60) is None:
            workers.check()
            raise RuntimeError("warm-up: no notification within 60 s")
    while queue_depth(agenda.state):
        time.sleep(0.1)


# -- report -----------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total_kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {total_kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs{memory}; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}")


def load_average() -> str:
    try:
        return "/".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def tables(latencies: list[Latency], bursts: list[Burst], target: float) -> str:
    lines = ["| workers | changes | p50 ms | p95 ms | p99 ms | max ms | lost |",
             "|---:|---:|---:|---:|---:|---:|---:|"] if latencies else []
    for run in latencies:
        values = run.latencies
        lines.append(
            f"| {run.workers} | {len(values)} | {percentile(values, 50) * 1000:.0f} | "
            f"{percentile(values, 95) * 1000:.0f} | {percentile(values, 99) * 1000:.0f} | "
            f"{max(values, default=float('nan')) * 1000:.0f} | {run.lost} |")
    if latencies:
        met = all(percentile(r.latencies, 95) <= target and not r.lost for r in latencies)
        lines += ["", f"p95 target ≤ {target * 1000:.0f} ms: {'met' if met else 'NOT met'}."]
    if bursts:
        lines += ([""] if lines else []) + [
            "| workers | burst | outbox rows before | write s | commit → last s | msg/s |",
            "|---:|---|---:|---:|---:|---:|"]
        for burst in bursts:
            lines.append(
                f"| {burst.workers} | {burst.size} {burst.kind} | {burst.history} | "
                f"{burst.write_seconds:.1f} | {burst.seconds:.1f} | {burst.throughput:.0f} |")
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------

@contextmanager
def database(url: str | None) -> Iterator[tuple[str, str]]:
    """The database URL and a description of the server."""
    if url:
        yield url, "given --database-url"
        return
    from tests.support.postgres import ThrowawayPostgres

    with ThrowawayPostgres() as server:
        yield (server.create_database("notifications_bench"),
               "throwaway PostgreSQL (tests/support/postgres.py: fsync=off, "
               "synchronous_commit=off, full_page_writes=off)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.notifications",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--changes", type=int, default=10_000, help="burst size")
    parser.add_argument("--latency-changes", type=int, default=200)
    parser.add_argument("--workers", default="1,2", help="worker process counts to run")
    parser.add_argument("--poll", type=float, default=0.05, help="WORKER_POLL_SECONDS")
    parser.add_argument("--gap", type=float, default=0.2,
                        help="latency changes are spaced by a random pause of 0 to GAP s")
    parser.add_argument("--target", type=float, default=1.0, help="p95 latency target, s")
    parser.add_argument("--timeout", type=float, default=600.0, help="burst time limit, s")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--markdown", type=Path,
                        help="append the results as a section of this Markdown file")
    return parser.parse_args(argv)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped by SIGTERM or SIGINT (even started in the background, where a shell ignores
    # SIGINT), the bench still stops its workers and removes its throwaway PostgreSQL.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    rng = random.Random(args.seed)
    receiver = SasReceiver()
    latencies: list[Latency] = []
    bursts: list[Burst] = []
    load_before = load_average()
    with database(args.database_url) as (url, server), \
            tempfile.TemporaryDirectory(prefix="bench-notifications-") as logs:
        engine = make_engine(url)
        upgrade(engine)
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one() \
                if engine.dialect.name == "postgresql" else "SQLite"
        secret = os.environ.get("SECRET_KEY") or "bench-notifications"
        settings = Settings.from_env(database_url=url, fhir_base_url=FHIR_BASE_URL,
                                     sas_base_url=receiver.base_url,
                                     worker_poll_seconds=args.poll, secret_key=secret)
        state = state_of(create_app(settings, engine=engine))
        env = {**os.environ, "DATABASE_URL": url, "FHIR_BASE_URL": FHIR_BASE_URL,
               "SAS_BASE_URL": receiver.base_url, "WORKER_POLL_SECONDS": str(args.poll),
               "SECRET_KEY": secret}
        env.pop("SQL_ECHO", None)
        agenda = Agenda(state)
        print(f"database: {engine.url.render_as_string(hide_password=True)} ({version})",
              flush=True)

        def burst(workers: Workers, kind: str) -> None:
            what = "new appointments" if kind == "POST" else "changes"
            print(f"{workers.count} worker(s): burst of {args.changes} {what}…", flush=True)
            bursts.append(measure_burst(agenda, receiver, workers, args.changes, kind,
                                        args.timeout))
            print(tables([], bursts[-1:], args.target).strip(), flush=True)

        for index, count in enumerate(counts):
            workers = Workers(count, env, Path(logs))
            try:
                warm_up(agenda, receiver, workers)
                if index == 0:  # the appointments the later changes move
                    burst(workers, "POST")
                print(f"{count} worker(s): {args.latency_changes} single changes…",
                      flush=True)
                latencies.append(measure_latency(agenda, receiver, workers,
                                                 args.latency_changes, args.gap, rng, 10.0))
                print(tables(latencies[-1:], [], args.target), flush=True)
                burst(workers, "PUT")
            finally:
                workers.stop()
        retries = retried(state)
        engine.dispose()
    receiver.close()
    report = tables(latencies, bursts, args.target)
    print()
    print(report)
    print(f"requests received: {receiver.requests} ({receiver.methods}), duplicates "
          f"{receiver.duplicates} {receiver.duplicate_keys[:5]}, unmatched "
          f"{receiver.unmatched}; messages sent more than once: {retries[0]} (at most "
          f"{retries[1]} attempts)")
    if args.markdown:
        command = "python -m bench.notifications " + " ".join(
            sys.argv[1:] if argv is None else argv)
        write_markdown(args.markdown, command, server, version, args, report, receiver,
                       f"{load_before} before, {load_average()} after (1/5/15 min)", retries)
    lost = sum(run.lost for run in latencies)
    return 0 if not lost and not receiver.unmatched else 1


def write_markdown(path: Path, command: str, server: str, version: str,
                   args: argparse.Namespace, report: str, receiver: SasReceiver,
                   load: str, retries: tuple[int, int]) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"""
## Run of {when}

- command: `{command.strip()}`
- machine: {machine()}; load average {load}
- database: {server}, PostgreSQL {version}, same machine
- workers: `fhir-agenda worker` processes, WORKER_POLL_SECONDS={args.poll}; receiver: Python
  `ThreadingHTTPServer` on 127.0.0.1 (HTTP/1.1 keep-alive), answering 201/200 at once
- latency: {args.latency_changes} single changes per worker count, one transaction each,
  spaced by 0–{args.gap} s; from the COMMIT of the change to the receiver reading the request
- bursts: {args.changes} changes committed in one transaction ("write s" is the time to
  write them); "commit → last" runs from that COMMIT to the last request received; the
  outbox keeps its delivered rows, as in production (nothing purges them)
- {receiver.requests} requests received in all: {receiver.duplicates} duplicates (the same
  change received twice), {receiver.unmatched} unmatched; {retries[0]} outbox messages needed
  more than one attempt (at most {retries[1]})

{report}
"""
    existing = path.read_text() if path.exists() else (
        "# Notification benchmark\n\n"
        "Latency and throughput of the SAS notifications (INT_R03): appointment change → "
        "outbox → delivery worker → SAS. Produced by `python -m bench.notifications "
        "--markdown bench/NOTIFICATIONS.md`; see the module docstring for the method.\n")
    path.write_text(existing.rstrip("\n") + "\n" + section)


if __name__ == "__main__":
    sys.exit(main())
