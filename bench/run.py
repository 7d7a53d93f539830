"""Measure the SAS search through the real HTTP stack (gunicorn), beside its floor.

    python -m bench.run --database-url URL [--requests 300] [--concurrency 8]

Cases (same seeded request sets for the server and the floor):
- 1 and 25 practitioners over 72 h, one client: `http.client` on one connection, each
  request timed from send to last byte;
- 25 (and 1) practitioners with `--concurrency` clients: `wrk` (C, epoll) rotating through
  the pre-built URLs, or Python threads with `--client python` (their GIL and parsing cost
  shares the 2 cores with the server and distorts throughput);
- the floor (bench/floor.py): one SQL statement + orjson, in-process, one client (best p95
  of `--floor-passes` passes);
- the HTTP floor (bench/http_floor.py): the same gunicorn configuration, clients, request
  paths and headers, serving the application's recorded answers (same bytes per path) from
  a minimal WSGI callable: the transport alone, no Flask, no database.
Every request set is replayed once before it is measured (warm caches).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench import floor, http_floor
from bench.generate import conninfo, scalar
from bench.sas import ACCEPT, SasRequest, practitioner_identifiers, request_set

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_P95_MS = 50.0
TARGET_THROUGHPUT = 200.0
TARGET_FLOOR_RATIO = 3.0


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Case:
    name: str
    practitioners: int
    clients: int
    latencies_ms: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    slots: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: int = 0
    tool: str = "python"
    percentiles: dict[int, float] | None = None  # from wrk (no per-request list)
    count: int | None = None
    cpu_ms_per_request: dict[str, float] | None = None
    http_floor: bool = False  # served by bench/http_floor.py, not the application
    # single client: the answer to each request path, and the headers of one (HTTP floor)
    answers: dict[str, bytes] = field(default_factory=dict)
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.count if self.count is not None else len(self.latencies_ms)

    def p(self, which: int) -> float:
        if self.percentiles is not None:
            return self.percentiles[which]
        return percentile(self.latencies_ms, which)

    @property
    def throughput(self) -> float:
        return self.n / self.wall_seconds if self.wall_seconds else 0.0


# -- server ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(database_url: str, workers: int, worker_class: str, threads: int,
             log_path: Path, app: str = "wsgi:app", extra_env: dict[str, str] | None = None
             ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    from gunicorn.config import Config

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    options = ["-b", f"127.0.0.1:{port}", "-w", str(workers), "--worker-class", worker_class,
               "--graceful-timeout", "5", "--backlog", "2048", "--log-level", "warning"]
    if worker_class == "gthread":
        options += ["--threads", str(threads)]
    if "control_socket_disable" in Config().settings:  # gunicorn >= 27 (see scripts/newman.sh)
        options.append("--no-control-socket")
    env = dict(os.environ, DATABASE_URL=database_url, FHIR_BASE_URL=f"{base}/fhir",
               SECRET_KEY=os.environ.get("SECRET_KEY", secrets.token_hex(16)),
               # The clients have no SAS certificate or token: the authentication gate is
               # open (its cost per request is not part of these numbers).
               SECURITY_PROFILE=os.environ.get("SECURITY_PROFILE", "development"),
               **(extra_env or {}))
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--chdir", str(REPO_ROOT), *options, app],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({process.returncode}); see {log_path}")
            try:
                with urllib.request.urlopen(f"{base}/fhir/metadata", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _cpu_seconds(pids: Sequence[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _postmaster_pid(url: str) -> int:
    """The postmaster serving `url` (the parent of our backend)."""
    with psycopg.connect(url) as conn:
        backend = scalar(conn, "SELECT pg_backend_pid()")
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


def _postgres_pids(postmaster: int) -> list[int]:
    """The postmaster and all its children (not other servers' processes)."""
    return [postmaster, *_children(postmaster)]


def _machine_busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


class CpuMeter:
    """CPU seconds used by gunicorn, our PostgreSQL, the client, and anything else."""

    def __init__(self, server: subprocess.Popen[bytes], url: str) -> None:
        self.server = server
        self.postmaster = _postmaster_pid(url)

    def snapshot(self) -> dict[str, float]:
        workers = _children(self.server.pid)
        mine = os.times()
        found = {"gunicorn": _cpu_seconds([self.server.pid, *workers]),
                 "postgres": _cpu_seconds(_postgres_pids(self.postmaster)),
                 "client": mine.user + mine.system + mine.children_user + mine.children_system}
        found["other processes"] = _machine_busy_seconds() - sum(found.values())
        return found


def start_py_spy(pid: int, output: Path, seconds: int) -> subprocess.Popen[bytes]:
    binary = os.environ.get("PY_SPY") or shutil.which("py-spy") or "py-spy"
    return subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate",
         "200", "--duration", str(seconds), "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- clients ---------------------------------------------------------------------------------

def _get(conn: http.client.HTTPConnection, path: str
         ) -> tuple[float, bytes, http.client.HTTPResponse]:
    started = time.perf_counter()
    conn.request("GET", path, headers={"Accept": ACCEPT})
    response = conn.getresponse()
    body = response.read()
    return time.perf_counter() - started, body, response


def _total(body: bytes) -> int:
    return int(orjson.loads(body)["total"])


def python_clients(base: str, requests: list[SasRequest], clients: int, case: Case,
                   count: int | None = None) -> None:
    """`clients` threads, one HTTP/1.1 connection each, `count` requests in all."""
    host, port = base.removeprefix("http://").split(":")
    total = count or len(requests)
    lock = threading.Lock()
    issued = 0

    def worker() -> None:
        nonlocal issued
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                if issued >= total:
                    break
                index = issued
                issued += 1
            request = requests[index % len(requests)]
            seconds, body, response = _get(conn, request.path)
            with lock:
                case.latencies_ms.append(seconds * 1000)
                if response.status != 200:
                    case.errors += 1
                elif clients == 1:  # parsing is off the clock; skip it under load
                    case.slots.append(_total(body))
                    case.sizes.append(len(body))
                    case.answers[request.path] = body
                    case.headers = case.headers or response.getheaders()
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    case.wall_seconds = time.perf_counter() - started


WRK_SCRIPT = """
local paths = {%(paths)s}
local headers = { ["Accept"] = "%(accept)s" }
local counter = 0
local next_offset = 0

function setup(thread)
  thread:set("offset", next_offset)
  next_offset = next_offset + 7919
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[((counter + offset) %% #paths) + 1], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %%d, "duration_us": %%d, "p50": %%d, "p95": %%d,'
    .. ' "p99": %%d, "max": %%d, "status": %%d, "connect": %%d, "read": %%d, "write": %%d,'
    .. ' "timeout": %%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max, e.status, e.connect, e.read,
    e.write, e.timeout))
end
"""


def wrk(base: str, requests: list[SasRequest], clients: int, seconds: int,
        case: Case | None) -> None:
    paths = ", ".join(f'"{r.path}"' for r in requests)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        script = Path(directory) / "sas.lua"
        script.write_text(WRK_SCRIPT % {"paths": paths, "accept": ACCEPT})
        result = subprocess.run(
            ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s",
             "-s", str(script), base], capture_output=True, text=True, check=True)
    line = next(x for x in result.stdout.splitlines() if x.startswith("WRK "))
    data = json.loads(line[4:])
    if case is None:
        return
    case.tool = "wrk"
    case.count = data["requests"]
    case.wall_seconds = data["duration_us"] / 1e6
    case.percentiles = {50: data["p50"] / 1000, 95: data["p95"] / 1000, 99: data["p99"] / 1000}
    case.errors = sum(data[k] for k in ("status", "connect", "read", "write", "timeout"))


def floor_case(url: str, requests: list[SasRequest], base: str, case: Case,
               passes: int = 3) -> list[floor.FloorResult]:
    """A warm-up pass, then `passes` timed passes: the floor is the pass with the lowest p95
    (the floor is what the machine can do at best; neighbours' load only raises it)."""
    best: list[floor.FloorResult] | None = None
    with psycopg.connect(url, autocommit=True) as conn:
        for request in requests:
            floor.run(conn, request, base)
        for _ in range(passes):
            results = [floor.run(conn, request, base) for request in requests]
            p95 = percentile([r.seconds for r in results], 95)
            if best is None or p95 < percentile([r.seconds for r in best], 95):
                best = results
    assert best is not None
    case.latencies_ms = [r.seconds * 1000 for r in best]
    case.wall_seconds = sum(r.seconds for r in best)
    case.slots = [r.slots for r in best]
    case.sizes = [r.size for r in best]
    return best


# -- report ----------------------------------------------------------------------------------

def _verdict(case: Case, floors: dict[int, Case]) -> str:
    checks: list[str] = []
    if case.http_floor:
        return ""
    ratio = case.p(95) / floors[case.practitioners].p(95)
    if case.clients == 1 and case.tool != "floor":
        checks.append(f"p95 ≤ {TARGET_FLOOR_RATIO:g}× floor: {'yes' if ratio <= 3 else 'NO'}")
        if case.practitioners == 25:
            checks.append(f"p95 ≤ {TARGET_P95_MS:g} ms: "
                          f"{'yes' if case.p(95) <= TARGET_P95_MS else 'NO'}")
    if case.clients > 1 and case.practitioners == 25:
        checks.append(f"≥ {TARGET_THROUGHPUT:g}/s: "
                      f"{'yes' if case.throughput >= TARGET_THROUGHPUT else 'NO'}")
    return "; ".join(checks)


def report(cases: list[Case], floors: dict[int, Case],
           transport: dict[tuple[int, int], Case] | None = None) -> str:
    """The results table; "HTTP floor p95" compares each case with the HTTP floor of the same
    practitioner count and clients (`transport`, keyed by (practitioners, clients))."""
    lines = ["| case | client | n | errors | p50 ms | p95 ms | p99 ms | searches/s "
             "| p95 / floor p95 | p95 / HTTP floor p95 | targets |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case in cases:
        ratio = case.p(95) / floors[case.practitioners].p(95)
        http = (None if case.tool == "floor"
                else (transport or {}).get((case.practitioners, case.clients)))
        http_ratio = f"{case.p(95) / http.p(95):.2f}" if http else ""
        lines.append(
            f"| {case.name} | {case.tool} | {case.n} | {case.errors} | {case.p(50):.1f} | "
            f"{case.p(95):.1f} | {case.p(99):.1f} | {case.throughput:.0f} | {ratio:.2f} | "
            f"{http_ratio} | {_verdict(case, floors)} |")
    return "\n".join(lines)


def sizes_report(cases: list[Case]) -> str:
    lines = ["| case | slots per response: min / median / p95 / max | bytes per response "
             "(median) |", "|---|---|---:|"]
    for case in cases:
        if case.slots:
            lines.append(
                f"| {case.name} | {min(case.slots)} / {percentile(case.slots, 50):.0f} / "
                f"{percentile(case.slots, 95):.0f} / {max(case.slots)} | "
                f"{percentile(case.sizes, 50):,.0f} |")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------

def _revision() -> str:
    """The application's git revision, `+dirty` when app/ or migrations/ have local changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                              text=True, check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--", "app", "migrations", "wsgi.py")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def _dataset(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT info FROM bench_dataset WHERE id = 1").fetchone()
    if row is None:
        raise SystemExit("no bench_dataset row: generate the database with bench.generate")
    return dict(row[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--requests", type=int, default=300,
                        help="requests per single-client case (and floor)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="clients of the concurrent cases (1: single-client cases only)")
    parser.add_argument("--duration", type=int, default=20,
                        help="seconds of each concurrent wrk case")
    parser.add_argument("--client", choices=("wrk", "python"),
                        default="wrk" if shutil.which("wrk") else "python",
                        help="client of the concurrent cases")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--floor-passes", type=int, default=3,
                        help="timed floor passes; the one with the lowest p95 is reported")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--py-spy", type=Path, metavar="FILE",
                        help="record the gunicorn workers with py-spy during the 25-practitioner"
                             " concurrent case (collapsed stacks, `py-spy` on PATH or PY_SPY)")
    parser.add_argument("--app", default="wsgi:app", help="WSGI app gunicorn serves")
    parser.add_argument("--no-http-floor", dest="http_floor", action="store_false",
                        help="skip the HTTP floor (bench/http_floor.py) cases")
    parser.add_argument("--nice", type=int, default=None, metavar="N",
                        help="on a shared machine: run this process, gunicorn, wrk and the "
                             "PostgreSQL server of --database-url at this priority (e.g. -10)")
    parser.add_argument("--log", type=Path,
                        default=Path(tempfile.gettempdir()) / "bench-gunicorn.log")
    args = parser.parse_args(argv)

    url = conninfo(args.database_url)
    if args.nice is not None:
        restore = prioritize(url, args.nice)
        try:
            return measure(args, url)
        finally:
            restore()
    return measure(args, url)


def prioritize(url: str, nice: int) -> Callable[[], None]:
    """Run us and our PostgreSQL server at `nice`; returns what puts the server back."""
    postmaster = _postmaster_pid(url)
    server = [pid for pid in _postgres_pids(postmaster) if pid > 1]
    before = {pid: os.getpriority(os.PRIO_PROCESS, pid) for pid in server}
    group = Path(f"/proc/{postmaster}/autogroup")
    group_before = group.read_text().split()[-1] if group.exists() else None
    # Children (gunicorn, wrk) inherit ours; new backends inherit the postmaster's.
    for pid in (os.getpid(), *server):
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    for path in (Path(f"/proc/{os.getpid()}/autogroup"), group):  # sched_autogroup: per session
        with contextlib.suppress(OSError):
            path.write_text(str(nice))

    def restore() -> None:
        for pid in _postgres_pids(postmaster):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, pid, before.get(pid, before[postmaster]))
        if group_before is not None:
            with contextlib.suppress(OSError):
                group.write_text(group_before)
    return restore


def _people(k: int) -> str:
    return f"{k} practitioner{'s' if k > 1 else ''}"


def served_cases(args: argparse.Namespace, url: str, sets: dict[int, list[SasRequest]],
                 app: str, http_floor_env: dict[str, str] | None = None) -> list[Case]:
    """The single-client then the concurrent cases against gunicorn serving `app`; with
    `http_floor_env`, the HTTP floor (bench/http_floor.py) under the same configuration."""
    label = "HTTP floor, " if http_floor_env else ""
    cases: list[Case] = []
    with gunicorn(args.database_url, args.workers, args.worker_class, args.threads,
                  args.log, app, http_floor_env) as (base, server):
        meter = CpuMeter(server, url)
        for k in (1, 25):
            case = Case(f"{label}{_people(k)}, 1 client", k, 1, http_floor=bool(label))
            python_clients(base, sets[k], 1, Case("warm-up", k, 1))
            python_clients(base, sets[k], 1, case)
            cases.append(case)
        for k in (1, 25) if args.concurrency > 1 else ():
            case = Case(f"{label}{_people(k)}, {args.concurrency} clients", k,
                        args.concurrency, http_floor=bool(label))
            spy = None
            if args.client == "wrk":
                wrk(base, sets[k], args.concurrency, 3, None)  # warm-up
                if args.py_spy and k == 25 and not label:
                    spy = start_py_spy(server.pid, args.py_spy, args.duration)
                before = meter.snapshot()
                wrk(base, sets[k], args.concurrency, args.duration, case)
            else:
                before = meter.snapshot()
                python_clients(base, sets[k], args.concurrency, case,
                               count=max(len(sets[k]), 1000))
            after = meter.snapshot()
            if spy is not None:
                spy.wait()
            case.cpu_ms_per_request = {name: (after[name] - before[name]) * 1000 / case.n
                                       for name in after}
            cases.append(case)
    return cases


def measure(args: argparse.Namespace, url: str) -> int:
    info = _dataset(url)
    with psycopg.connect(url) as conn:
        identifiers = practitioner_identifiers(conn)
    start, days = date.fromisoformat(info["start"]), info["weeks"] * 7
    sets = {k: request_set(identifiers, k, args.requests, start, days, args.seed) for k in (1, 25)}
    print(f"dataset: {info['resources'].get('Practitioner', 0):,} practitioners, "
          f"{info['resources'].get('Slot', 0):,} slots, {info['database_bytes'] / 2**30:.1f} GiB;"
          f" {len(identifiers):,} active practitioners to pick from; app {_revision()} "
          f"({args.app})", flush=True)

    floors = {k: Case(f"floor, {k} practitioner{'s' if k > 1 else ''}", k, 1, tool="floor")
              for k in sets}
    floor_results = {k: floor_case(url, sets[k], info["base_url"], floors[k], args.floor_passes)
                     for k in sets}

    cases = served_cases(args, url, sets, args.app)
    for case in cases[:2]:
        mismatched = sum(1 for got, want in zip(case.slots, floor_results[case.practitioners],
                                                strict=True) if got != want.slots)
        if mismatched:
            print(f"note: {case.name}: {mismatched} responses differ in slot count from "
                  "the floor (places without an address are not published)")
    transport: dict[tuple[int, int], Case] = {}
    if args.http_floor:
        with tempfile.TemporaryDirectory(prefix="bench-http-floor-") as directory:
            answers = Path(directory) / "answers.json"
            recorded = {path: body for c in cases[:2] for path, body in c.answers.items()}
            http_floor.save(answers, cases[0].headers, recorded)
            floor_cases = served_cases(args, url, sets, "bench.http_floor:app",
                                       {http_floor.ENVIRONMENT_VARIABLE: str(answers)})
        transport = {(c.practitioners, c.clients): c for c in floor_cases}
        cases += floor_cases
    cases += [floors[1], floors[25]]

    print()
    print(report(cases, floors, transport))
    print()
    print(sizes_report(cases))
    print()
    for case in cases:
        if case.cpu_ms_per_request:
            cpu = ", ".join(f"{k} {v:.2f}" for k, v in case.cpu_ms_per_request.items())
            print(f"CPU ms per request, {case.name}: {cpu} (errors: {case.errors})")
    if args.json:
        args.json.write_text(json.dumps({
            "dataset": info, "args": {k: str(v) for k, v in vars(args).items()},
            "revision": _revision(),
            "cases": [{"name": c.name, "tool": c.tool, "http_floor": c.http_floor, "n": c.n,
                       "p50": c.p(50), "p95": c.p(95), "p99": c.p(99),
                       "throughput": c.throughput, "errors": c.errors,
                       "slots": c.slots, "cpu_ms_per_request": c.cpu_ms_per_request}
                      for c in cases]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
