"""Writes at agenda-sync speed, measured through gunicorn beside a write floor.

    python -m bench.writes --database-url URL [--entries 1000] [--rounds 5] [--singles 300]
    python -m bench.writes --sqlite instance/bench-writes.db      # migrated + demo if absent

Cases (one client, gunicorn sync workers, the development security profile):
- transaction and batch Bundles of `--entries` Slots: created (POST) and updated (PUT of
  existing Slots, status flipped free ↔ busy);
- single writes: POST Slot, PUT Slot, POST Appointment, PUT Appointment;
- booking: a transaction PUT Slot busy + POST Appointment holding it; and, when the booking
  rule is installed (app/scheduling), a POST Appointment holding a free Slot alone;
- bulk: `--bulk` resources (practitioners, roles and schedules copied from the database
  under new ids, with their Slots) as NDJSON `POST /fhir` (application/fhir+ndjson) and
  `fhir-agenda load FILE.ndjson`, with SAS searches measured while the POST runs.

For each case: throughput, p50/p95/p99 per request, rows written per resource and table,
and the write floor (bench/write_floor.py: the same rows written again by one COPY or
executemany per table, no application code) with the ratio app / floor (medians).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Engine, select, text

from app.clock import utc_now
from app.db import make_engine
from app.storage.migrate import upgrade
from app.storage.schema import resources
from bench import slots as slot_kinds
from bench import write_floor
from bench.notifications import Workers
from bench.run import REPO_ROOT, _revision, gunicorn, percentile
from bench.sas import ACCEPT, request_set

TZ = ZoneInfo("Europe/Paris")
FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
Resource = dict[str, Any]


# -- the dataset's resources -------------------------------------------------------------------

@dataclass
class Dataset:
    engine: Engine
    schedules: list[str]
    practitioners: list[str]
    slot_pk_range: tuple[int, int]
    services: list[str]  # HealthcareServices (the CPTS slot kinds name one)
    used: set[int] = field(default_factory=set)  # slot pks already written by a case
    # Seeded by the system: runs add up on the same database, and a fixed seed made each run
    # draw the slots the runs before it had already booked (until none was found).
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def of(cls, engine: Engine) -> Dataset:
        with engine.connect() as conn:
            schedules = list(conn.execute(text(
                "SELECT res_id FROM resources WHERE res_type = 'Schedule' AND NOT deleted"
                " ORDER BY pk LIMIT 20000")).scalars())
            practitioners = list(conn.execute(text(
                "SELECT res_id FROM resources WHERE res_type = 'Practitioner' AND NOT deleted"
                " ORDER BY pk LIMIT 20000")).scalars())
            services = list(conn.execute(text(
                "SELECT res_id FROM resources WHERE res_type = 'HealthcareService'"
                " AND NOT deleted ORDER BY pk LIMIT 100")).scalars())
            low, high = conn.execute(text(
                "SELECT min(pk), max(pk) FROM resources WHERE res_type = 'Slot'")).one()
        if not schedules or low is None or not services:
            raise SystemExit("the database holds no Schedule, Slot or HealthcareService: "
                             "generate it first")
        return cls(engine, schedules, practitioners, (low, high), services)

    def existing_slots(self, count: int, statuses: tuple[str, ...] = ("free", "busy")
                       ) -> list[tuple[int, Resource]]:
        """`count` stored Slots never written by the benchmark, picked at random."""
        found: list[tuple[int, Resource]] = []
        low, high = self.slot_pk_range
        with self.engine.connect() as conn:
            for _attempt in range(200):
                if len(found) == count:
                    break
                wanted = {self.rng.randint(low, high) for _ in range(count * 2)} - self.used
                rows = conn.execute(select(resources.c.pk, resources.c.content).where(
                    resources.c.pk.in_(sorted(wanted)), resources.c.res_type == "Slot",
                    resources.c.deleted.is_(False)))
                held = set(conn.execute(text(
                    "SELECT target_id FROM search_reference WHERE res_type = 'Appointment'"
                    " AND param = 'slot'")).scalars())
                for pk, content in rows:
                    resource = orjson.loads(content)
                    if pk not in self.used and resource.get("status") in statuses and (
                            resource["id"] not in held):
                        self.used.add(pk)
                        found.append((pk, resource))
                        if len(found) == count:
                            break
            else:
                raise SystemExit(f"fewer than {count} Slots left to update: a larger dataset "
                                 "(bench.generate, or --sqlite with more --demo-days)")
        return found

    def new_slot(self, day_offset: int = 40) -> Resource:
        """A Slot like the dataset's (a random kind), on a random Schedule, in the future."""
        rng = self.rng
        day = date.today() + timedelta(days=day_offset + rng.randrange(60))
        start = datetime(day.year, day.month, day.day, rng.randrange(8, 18),
                         rng.choice((0, 15, 30, 45)), tzinfo=TZ)
        values = slot_kinds.Values("x", rng.choice(self.schedules), rng.choice(self.services),
                                   start.isoformat(), (start + timedelta(minutes=15)).isoformat())
        variant = rng.choice([v for v in slot_kinds.VARIANTS if v != slot_kinds.UNAVAILABLE])
        resource = slot_kinds.slot_resource(variant, False, rng.randrange(
            len(slot_kinds.SPECIALTIES)), values)
        del resource["id"]
        resource["comment"] = resource["comment"].replace("creneau=x", "creneau=new")
        return resource


def flipped(resource: Resource) -> Resource:
    """The Slot as an agenda would send it after a booking or a cancellation."""
    changed = {k: v for k, v in resource.items() if k != "meta"}
    security = (resource.get("meta") or {}).get("security")
    if security:
        changed["meta"] = {"security": security}
    changed["status"] = "busy" if resource.get("status") == "free" else "free"
    return changed


# -- HTTP --------------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


class Client:
    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)

    def send(self, method: str, path: str, body: bytes | None = None,
             content_type: str = FHIR_JSON, headers: dict[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        try:
            sent = {"Accept": FHIR_JSON, **(headers or {})}
            if body is not None:
                sent["Content-Type"] = content_type
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=sent)
                response = conn.getresponse()
                data = response.read()
            except (BrokenPipeError, ConnectionResetError) as exc:
                # A server refusing a large body answers before reading it all.
                return Answer(0, str(exc).encode(), time.perf_counter() - started)
            return Answer(response.status, data, time.perf_counter() - started,
                          dict(response.getheaders()))
        finally:
            conn.close()

    def json(self, method: str, path: str, resource: Any,
             headers: dict[str, str] | None = None) -> Answer:
        return self.send(method, path, orjson.dumps(resource), headers=headers)


# -- measurements --------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    resources_per_request: int
    latencies: list[float] = field(default_factory=list)  # seconds per request
    floors: list[float] = field(default_factory=list)  # seconds per request, floor
    rows: Counter[str] = field(default_factory=Counter)
    written: int = 0  # resources written by the client (not counting the server's own)
    errors: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def throughput(self) -> float:
        total = sum(self.latencies)
        return self.resources_per_request * len(self.latencies) / total if total else 0.0

    def p(self, which: int, floor: bool = False) -> float:
        values = self.floors if floor else self.latencies
        return percentile(values, which) * 1000 if values else float("nan")

    @property
    def ratio(self) -> float:
        if not self.floors or not self.latencies:
            return float("nan")
        return statistics.median(self.latencies) / statistics.median(self.floors)


class Recorder:
    """Around each measured write: what the database held before, and what it wrote."""

    def __init__(self, engine: Engine, floor: bool) -> None:
        self.engine, self.floor = engine, floor
        self.writes: list[write_floor.Write] = []

    @contextlib.contextmanager
    def write(self, changed: Sequence[int] = ()) -> Iterator[None]:
        if not self.floor:
            yield
            return
        before = write_floor.marks(self.engine)
        prior = write_floor.capture(self.engine, changed)
        since = utc_now()
        yield
        self.writes.append(write_floor.record(self.engine, before, changed, prior, since))

    def finish(self, case: Case) -> None:
        """Rows per table, then the floor: the writes undone and replayed, one by one."""
        for written in self.writes:
            case.rows.update(written.rows_written())
        if not self.floor or not self.writes:
            return
        write_floor.restore(self.engine, self.writes)
        for written in self.writes:
            case.floors.append(write_floor.replay(self.engine, written))
            if not write_floor.same_as_recorded(self.engine, written):
                case.errors.append("floor replay differs from the application's rows")
        self.writes = []


def _bundle(kind: str, entries: list[Resource]) -> Resource:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _check_bundle(case: Case, answer: Answer, expected: int) -> None:
    if answer.status != 200:
        case.errors.append(f"HTTP {answer.status}: {answer.body[:300]!r}")
        return
    entries = answer.json().get("entry", [])
    bad = [e["response"]["status"] for e in entries
           if not e["response"]["status"].startswith(("200", "201"))]
    if len(entries) != expected or bad:
        case.errors.append(f"{len(entries)} entries, failed: {Counter(bad)}")


def bundle_case(client: Client, data: Dataset, recorder: Recorder, kind: str, action: str,
                entries: int, rounds: int) -> Case:
    case = Case(f"{kind} of {entries} Slots, {action}", entries)
    for number in range(rounds + 1):  # the first round warms up
        if action == "create":
            body = _bundle(kind, [{"resource": data.new_slot(), "request": {
                "method": "POST", "url": "Slot"}} for _ in range(entries)])
            changed: list[int] = []
        else:
            picked = data.existing_slots(entries)
            body = _bundle(kind, [{"resource": flipped(r), "request": {
                "method": "PUT", "url": f"Slot/{r['id']}"}} for _, r in picked])
            changed = [pk for pk, _ in picked]
        payload = orjson.dumps(body)
        if number == 0:
            _check_bundle(case, client.send("POST", "/fhir", payload), entries)
            continue
        with recorder.write(changed):
            answer = client.send("POST", "/fhir", payload, headers={"Prefer": "return=minimal"})
        _check_bundle(case, answer, entries)
        case.latencies.append(answer.seconds)
        case.written += entries
    recorder.finish(case)
    return case


def single_case(name: str, count: int, recorder: Recorder,
                one: Callable[[], tuple[Answer, set[int]]],
                prepare: Callable[[], Sequence[int]] = lambda: ()) -> Case:
    """`one()` sends one request and returns it with the HTTP statuses it may answer;
    `prepare()` names the existing resources it will change (for the floor)."""
    case = Case(name, 1)
    for number in range(count + 10):  # 10 warm-up requests
        changed = prepare()
        with recorder.write(changed) if number >= 10 else contextlib.nullcontext():
            answer, accepted = one()
        if answer.status not in accepted:
            case.errors.append(f"HTTP {answer.status}: {answer.body[:200]!r}")
        if number >= 10:
            case.latencies.append(answer.seconds)
            case.written += 1
    recorder.finish(case)
    return case


def singles(client: Client, data: Dataset, recorder: Recorder, count: int) -> list[Case]:
    cases = []
    cases.append(single_case("single POST Slot", count, recorder, lambda: (
        client.json("POST", "/fhir/Slot", data.new_slot()), {201})))

    pending: list[tuple[int, Resource]] = []

    def pick() -> Sequence[int]:
        pending[:] = data.existing_slots(1)
        return [pending[0][0]]

    def put_slot() -> tuple[Answer, set[int]]:
        resource = flipped(pending[0][1])
        return client.json("PUT", f"/fhir/Slot/{resource['id']}", resource), {200}

    cases.append(single_case("single PUT Slot", count, recorder, put_slot, pick))

    patient = client.json("POST", "/fhir/Patient", {
        "resourceType": "Patient", "name": [{"family": "Banc", "given": ["Essai"]}]}).json()
    appointments: list[Resource] = []

    def appointment(slot: Resource | None = None) -> Resource:
        if slot:
            start, end = slot["start"], slot["end"]
        else:
            # A quarter-hour of its own: a practitioner is in one appointment at a time
            # (GAP's overlap rule answers 409), and runs add up on the same database.
            moment = datetime(2031, 1, 6, 8, tzinfo=TZ) + timedelta(
                days=data.rng.randrange(3650), minutes=15 * data.rng.randrange(40))
            start = moment.isoformat()
            end = (moment + timedelta(minutes=15)).isoformat()
        body: Resource = {
            "resourceType": "Appointment", "status": "booked", "start": start, "end": end,
            "participant": [
                {"actor": {"reference": f"Practitioner/{data.rng.choice(data.practitioners)}"},
                 "status": "accepted"},
                {"actor": {"reference": f"Patient/{patient['id']}"}, "status": "accepted"}]}
        if slot:
            body["slot"] = [{"reference": f"Slot/{slot['id']}"}]
        return body

    def post_appointment() -> tuple[Answer, set[int]]:
        answer = client.json("POST", "/fhir/Appointment", appointment())
        if answer.status == 201:
            appointments.append(answer.json())
        return answer, {201}

    cases.append(single_case("single POST Appointment", count, recorder, post_appointment))
    queue: list[Resource] = []

    def pick_appointment() -> Sequence[int]:
        queue[:] = [appointments.pop()]
        with data.engine.connect() as conn:
            return [conn.execute(select(resources.c.pk).where(
                resources.c.res_type == "Appointment",
                resources.c.res_id == queue[0]["id"])).scalar_one()]

    def put_appointment() -> tuple[Answer, set[int]]:
        body = {k: v for k, v in queue[0].items() if k != "meta"}
        body["description"] = f"Consultation {uuid.uuid4().hex[:8]}"
        return client.json("PUT", f"/fhir/Appointment/{body['id']}", body), {200}

    cases.append(single_case("single PUT Appointment", count, recorder, put_appointment,
                             pick_appointment))

    def pick_free() -> Sequence[int]:
        pending[:] = data.existing_slots(1, ("free",))
        return [pending[0][0]]

    def booking_transaction() -> tuple[Answer, set[int]]:
        slot = pending[0][1]
        busy = {**flipped(slot), "status": "busy"}
        bundle = _bundle("transaction", [
            {"resource": busy, "request": {"method": "PUT", "url": f"Slot/{slot['id']}"}},
            {"resource": appointment(slot), "request": {"method": "POST", "url": "Appointment"}}])
        return client.json("POST", "/fhir", bundle), {200}

    cases.append(single_case("booking: transaction PUT Slot busy + POST Appointment", count,
                             recorder, booking_transaction, pick_free))
    if booking_rule_installed():
        def book() -> tuple[Answer, set[int]]:
            return client.json("POST", "/fhir/Appointment", appointment(pending[0][1])), {201}

        cases.append(single_case("booking: POST Appointment holding a free Slot (booking rule)",
                                 count, recorder, book, pick_free))
    return cases


def booking_rule_installed() -> bool:
    return (REPO_ROOT / "app" / "scheduling" / "booking.py").exists()


# -- bulk --------------------------------------------------------------------------------------

def bulk_resources(data: Dataset, count: int, tag: str) -> list[Resource]:
    """Practitioners with their roles and schedules copied from the database under new ids,
    and Slots on those schedules: about the national dataset's mix (~4 % not Slots)."""
    found: list[Resource] = []
    slots: list[Resource] = []
    with data.engine.connect() as conn:
        practitioners = conn.execute(text(
            "SELECT res_id, content FROM resources WHERE res_type = 'Practitioner'"
            " AND NOT deleted ORDER BY pk LIMIT 2000")).all()
        for cycle in range(1_000_000):
            if len(found) + len(slots) >= count:
                break
            found, slots = _bulk_group(conn, data, practitioners[cycle % len(practitioners)],
                                       f"{tag}{cycle // len(practitioners)}-", found, slots)
    return (found + slots)[:count]


def _bulk_group(conn: Any, data: Dataset, practitioner: Any, tag: str, found: list[Resource],
                slots: list[Resource]) -> tuple[list[Resource], list[Resource]]:
    """One practitioner with its roles and schedules under new ids, and their Slots."""
    res_id, content = practitioner
    renamed = {f"Practitioner/{res_id}": f"Practitioner/{tag}{res_id}"}
    group = [orjson.loads(content)]
    roles = conn.execute(text(
        "SELECT r.res_id, r.content FROM search_reference x JOIN resources r"
        " ON r.pk = x.res_pk WHERE x.res_type = 'PractitionerRole'"
        " AND x.param = 'practitioner' AND x.target_id = :id AND NOT r.deleted"),
        {"id": res_id}).all()
    for role_id, role in roles:
        renamed[f"PractitionerRole/{role_id}"] = f"PractitionerRole/{tag}{role_id}"
        group.append(orjson.loads(role))
    schedules = conn.execute(text(
        "SELECT DISTINCT r.res_id, r.content FROM search_reference x JOIN resources r"
        " ON r.pk = x.res_pk WHERE x.res_type = 'Schedule' AND x.param = 'actor'"
        " AND x.target_id = :id AND NOT r.deleted"), {"id": res_id}).all()
    for schedule_id, schedule in schedules:
        group.append(orjson.loads(schedule))
        for _ in range(45 // max(1, len(schedules))):
            slot = data.new_slot()
            slot["schedule"] = {"reference": f"Schedule/{tag}{schedule_id}"}
            slot["id"] = f"{tag}{uuid.uuid4().hex[:20]}"
            slots.append(slot)
    for resource in group:
        resource["id"] = f"{tag}{resource['id']}"
        resource.pop("meta", None)
        text_form = orjson.dumps(resource).decode()
        for old, new in renamed.items():
            text_form = text_form.replace(f'"{old}"', f'"{new}"')
        found.append(orjson.loads(text_form))
    return found, slots


def _ndjson(resources_: list[Resource]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in resources_) + b"\n"


class Searcher(threading.Thread):
    """SAS searches (INT_R01, 25 practitioners) in a loop until stopped."""

    def __init__(self, client: Client, paths: list[str]) -> None:
        super().__init__(daemon=True)
        self.client, self.paths = client, paths
        self.latencies: list[float] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            answer = self.client.send("GET", self.paths[index % len(self.paths)],
                                      headers={"Accept": ACCEPT})
            index += 1
            if answer.status != 200:
                self.errors += 1
            self.latencies.append(answer.seconds)
            time.sleep(0.02)


def async_load(client: Client, payload: bytes) -> Answer:
    """POST with `Prefer: respond-async`, then poll the status URL until the worker has
    loaded it: the answer's status is the load's, its time from upload to answer."""
    started = time.perf_counter()
    accepted = client.send("POST", "/fhir", payload, content_type=NDJSON,
                           headers={"Prefer": "respond-async"})
    if accepted.status != 202:
        return accepted
    path = "/fhir/" + accepted.headers["Content-Location"].split("/fhir/", 1)[1]
    while True:
        time.sleep(0.25)
        polled = client.send("GET", path)
        if polled.status != 202:
            break
    if polled.status != 200:
        return polled
    response = orjson.loads(polled.body)["entry"][0]["response"]
    return Answer(int(response["status"].split()[0]), orjson.dumps(response["outcome"]),
                  time.perf_counter() - started)


@contextlib.contextmanager
def worker(database_url: str, log: Path) -> Iterator[None]:
    """`fhir-agenda worker` beside gunicorn: it loads the asynchronous bulk jobs."""
    env = dict(os.environ, DATABASE_URL=database_url, SECURITY_PROFILE="development",
               FHIR_BASE_URL=os.environ.get("FHIR_BASE_URL", "http://127.0.0.1:5000/fhir"))
    workers = Workers(1, env, log.parent)
    try:
        yield
    finally:
        workers.stop()


def sas_paths(data: Dataset, count: int = 200) -> list[str]:
    with data.engine.connect() as conn:
        codes = sorted(set(conn.execute(text(
            "SELECT idnps FROM sas_place")).scalars()))
        row = conn.execute(text("SELECT min(start) FROM sas_slot")).scalar()
    if not codes or row is None:
        return []
    first = row if isinstance(row, datetime) else datetime.fromisoformat(str(row))
    per = min(25, len(codes))
    return [r.path for r in request_set(codes, per, count, first.date(), 7, 1)]


def bulk_cases(client: Client, data: Dataset, recorder: Recorder, count: int,
               database_url: str, rounds: int) -> list[Case]:
    cases = []
    paths = sas_paths(data)
    if paths:
        quiet = Case(f"SAS search ({min(25, len(paths))} practitioners), no load", 1)
        searcher = Searcher(client, paths)
        searcher.start()
        time.sleep(8)
        searcher.stop.set()
        searcher.join()
        quiet.latencies = searcher.latencies[5:]
        cases.append(quiet)
    for number in range(rounds):
        tag = f"b{number}{uuid.uuid4().hex[:4]}-"
        payload = _ndjson(bulk_resources(data, count, tag))
        case = next((c for c in cases if c.name.startswith("bulk POST")), None)
        if case is None:
            case = Case(f"bulk POST /fhir NDJSON, respond-async ({count} resources, "
                        "upload to answer)", count)
            cases.append(case)
        searcher = Searcher(client, paths) if paths else None
        if searcher:
            searcher.start()
        with recorder.write():
            answer = async_load(client, payload)
        if searcher:
            searcher.stop.set()
            searcher.join()
            during = next((c for c in cases if c.name.startswith("SAS search") and "during"
                           in c.name), None)
            if during is None:
                during = Case(f"SAS search ({min(25, len(paths))} practitioners), during the "
                              "bulk POST", 1)
                cases.append(during)
            during.latencies += searcher.latencies
        if answer.status != 200:
            case.errors.append(f"HTTP {answer.status}: {answer.body[:300]!r}")
        case.latencies.append(answer.seconds)
        case.written += count
    for case in cases:
        if case.name.startswith("bulk POST"):
            recorder.finish(case)
    cli = Case(f"fhir-agenda load FILE.ndjson ({count} resources, process start included)",
               count)
    for number in range(rounds):
        tag = f"c{number}{uuid.uuid4().hex[:4]}-"
        with tempfile.NamedTemporaryFile("wb", suffix=".ndjson", delete=False) as handle:
            handle.write(_ndjson(bulk_resources(data, count, tag)))
            path = handle.name
        try:
            env = dict(os.environ, DATABASE_URL=database_url, SECURITY_PROFILE="development",
                       FHIR_BASE_URL=os.environ.get("FHIR_BASE_URL",
                                                    "http://127.0.0.1:5000/fhir"))
            started = time.perf_counter()
            # This checkout's application (the console script may point at another one).
            done = subprocess.run([sys.executable, "-c", "from app.cli import main; main()",
                                   "load", path], env=env, capture_output=True, text=True,
                                  cwd=REPO_ROOT, check=False)
            seconds = time.perf_counter() - started
        finally:
            os.unlink(path)
        if done.returncode != 0:
            cli.errors.append(f"exit {done.returncode}: {done.stderr[-300:]}")
        cli.latencies.append(seconds)
        cli.written += count
    cases.append(cli)
    return cases


# -- report ------------------------------------------------------------------------------------

def _target(case: Case, backend: str) -> str:
    name = case.name
    if name.startswith(("transaction", "batch")):
        goal = 2000 if backend == "postgresql" else 1000
        if name.startswith("batch") and backend != "postgresql":
            goal = 0
        verdicts = []
        if goal:
            verdicts.append(f"≥ {goal:,}/s: {'yes' if case.throughput >= goal else 'NO'}")
        if backend == "postgresql":
            verdicts.append(f"≤ 3× floor: {'yes' if case.ratio <= 3 else 'NO'}")
        return "; ".join(verdicts)
    if name.startswith("single"):
        return f"p95 ≤ 10 ms: {'yes' if case.p(95) <= 10 else 'NO'}"
    if name.startswith("booking"):
        return f"p95 ≤ 15 ms: {'yes' if case.p(95) <= 15 else 'NO'}"
    if name.startswith(("bulk", "fhir-agenda load")):
        return f"≥ 10,000/s: {'yes' if case.throughput >= 10000 else 'NO'}"
    return ""


def _rows(case: Case) -> str:
    if not case.rows or not case.written:
        return ""
    short = {"resources": "res", "resource_versions": "ver", "search_token": "tok",
             "search_string": "str", "search_date": "date", "search_reference": "ref",
             "sas_slot": "sas", "outbox": "out"}
    return " ".join(f"{short[t]} {case.rows[t] / case.written:.2f}"
                    for t in write_floor.ALL_TABLES if case.rows.get(t))


def report(cases: list[Case], backend: str) -> str:
    lines = ["| case | n | errors | resources/s | p50 ms | p95 ms | p99 ms | floor p50 ms | "
             "app / floor | rows per resource | target |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for case in cases:
        floor = f"{case.p(50, floor=True):.1f}" if case.floors else ""
        ratio = f"{case.ratio:.2f}" if case.floors else ""
        lines.append(f"| {case.name} | {len(case.latencies)} | {len(case.errors)} | "
                     f"{case.throughput:,.0f} | {case.p(50):.1f} | {case.p(95):.1f} | "
                     f"{case.p(99):.1f} | {floor} | {ratio} | {_rows(case)} | "
                     f"{_target(case, backend)} |")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------

def prepare_sqlite(path: Path, days: int = 240) -> str:
    """The embedded default as `make run` leaves it: migrated, demo data loaded."""
    url = f"sqlite:///{path.resolve()}"
    if not path.exists():
        from app import create_app
        from app.config import Settings
        from app.demo import build_demo_bundle
        from app.fhir import transactions
        from app.state import state_of

        engine = make_engine(url)
        upgrade(engine)
        app = create_app(Settings.from_env(database_url=url), engine=engine)
        transactions.process(state_of(app), build_demo_bundle(date.today(), days=days),
                             "minimal", "bench.writes")
        engine.dispose()
    return url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--database-url", help="a PostgreSQL database made by bench.generate")
    target.add_argument("--sqlite", type=Path, help="a SQLite file (created with the demo "
                        "data when absent)")
    parser.add_argument("--demo-days", type=int, default=240,
                        help="days of demo slots in a new --sqlite file")
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="Bundles per Bundle case")
    parser.add_argument("--singles", type=int, default=300, help="requests per single case")
    parser.add_argument("--bulk", type=int, default=20000, help="resources per bulk load")
    parser.add_argument("--bulk-rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", default="bundles,singles,bulk")
    parser.add_argument("--no-floor", dest="floor", action="store_false")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--log", type=Path,
                        default=Path(tempfile.gettempdir()) / "bench-writes-gunicorn.log")
    args = parser.parse_args(argv)

    url = args.database_url or prepare_sqlite(args.sqlite, args.demo_days)
    engine = make_engine(url)
    upgrade(engine)
    backend = engine.dialect.name
    data = Dataset.of(engine)
    recorder = Recorder(engine, args.floor)
    wanted = set(args.cases.split(","))
    load = os.getloadavg()
    print(f"{backend}: {len(data.schedules):,} schedules, slot pks {data.slot_pk_range}; "
          f"app {_revision()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
          flush=True)
    cases: list[Case] = []
    with gunicorn(url, args.workers, "sync", 1, args.log) as (base, _server):
        client = Client(base)
        if "bundles" in wanted:
            for kind in ("transaction", "batch"):
                for action in ("create", "update"):
                    cases.append(bundle_case(client, data, recorder, kind, action,
                                             args.entries, args.rounds))
                    print(report(cases[-1:], backend).splitlines()[-1], flush=True)
        if "singles" in wanted:
            for case in singles(client, data, recorder, args.singles):
                cases.append(case)
                print(report([case], backend).splitlines()[-1], flush=True)
        if "bulk" in wanted:
            with worker(url, args.log):
                found = bulk_cases(client, data, recorder, args.bulk, url, args.bulk_rounds)
            for case in found:
                cases.append(case)
                print(report([case], backend).splitlines()[-1], flush=True)
    load = os.getloadavg()
    print(f"\n{backend}, load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(report(cases, backend))
    for case in cases:
        for error in case.errors[:3]:
            print(f"  {case.name}: {error}")
    if args.json:
        args.json.write_text(json.dumps({
            "backend": backend, "revision": _revision(), "load": load,
            "cases": [{"name": c.name, "n": len(c.latencies), "throughput": c.throughput,
                       "p50": c.p(50), "p95": c.p(95), "p99": c.p(99),
                       "floor_p50": c.p(50, True), "ratio": c.ratio, "rows": dict(c.rows),
                       "written": c.written, "errors": c.errors} for c in cases]}, indent=1))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
