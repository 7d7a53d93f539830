"""Asynchronous bulk loads: `POST /fhir` of NDJSON with `Prefer: respond-async`, the FHIR R4
asynchronous request pattern.

A first load of hundreds of thousands of lines takes longer than a web worker may hold a
request (gunicorn's timeout kills it, and the client sees an error). So the body is received
into the database in parts — in one transaction: a job is wholly accepted or absent — and
the answer is 202 Accepted with the job's status URL in Content-Location. The worker loads
it in a thread of its own (deliveries go on meanwhile) through the same all-or-nothing load
as the synchronous path (app/fhir/bulk_load.py), with the rights of the client that sent it.
The status URL answers 202 with X-Progress while the job waits or runs, then 200 with a
batch-response Bundle holding the load's answer; DELETE cancels. A worker killed midway
leaves nothing loaded (its transaction never commits) and the job is taken up again once
that worker's heartbeat has stopped.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

import orjson
from sqlalchemy import Connection, delete, insert, select, update

from app.auth.context import current_principal
from app.auth.principal import Principal
from app.auth.scopes import Scopes
from app.clock import utc_now
from app.db import read_transaction, write_transaction
from app.fhir import bulk_load
from app.ops.heartbeat import worker_name
from app.outcome import Issue, operation_outcome
from app.state import AppState
from app.storage.schema import bulk_job_parts, bulk_jobs, worker_heartbeats

log = logging.getLogger(__name__)

PART_BYTES = 4 * 1024 * 1024  # one row of bulk_job_parts
PROGRESS_LINES = 2000  # lines between two progress updates (and cancel checks)
STALE_AFTER = timedelta(minutes=2)  # a running job's worker silent this long is gone
POLL_SECONDS = 2.0
QUEUED, RUNNING, DONE, CANCELLED = "queued", "running", "done", "cancelled"


@dataclass(frozen=True)
class Job:
    id: str
    status: str
    owner: str
    size: int
    lines_read: int
    answer_status: int | None
    answer: dict[str, Any] | None


# -- the web side ----------------------------------------------------------------------------

def submit(state: AppState, body: IO[bytes], owner: str, principal: Principal | None,
           address: str | None) -> str:
    """Receive the whole body as a queued job; returns its id."""
    job_id = str(uuid.uuid4())
    size = 0
    with write_transaction(state.engine) as conn:
        conn.execute(insert(bulk_jobs).values(
            id=job_id, status=QUEUED, owner=owner[:512], principal=_principal_json(principal),
            address=address, size=0, created_at=utc_now()))
        for seq in itertools.count():
            data = body.read(PART_BYTES)
            if not data:
                break
            size += len(data)
            conn.execute(insert(bulk_job_parts).values(job_id=job_id, seq=seq, data=data))
        conn.execute(update(bulk_jobs).where(bulk_jobs.c.id == job_id).values(size=size))
    return job_id


def find(state: AppState, job_id: str, owner: str) -> Job | None:
    """The job, if this owner sent it (anyone else is told it does not exist)."""
    with read_transaction(state.engine) as conn:
        row = conn.execute(select(bulk_jobs).where(bulk_jobs.c.id == job_id,
                                                   bulk_jobs.c.owner == owner[:512])).first()
    if row is None:
        return None
    return Job(row.id, row.status, row.owner, row.size, row.lines_read, row.answer_status,
               orjson.loads(row.answer) if row.answer else None)


def cancel(state: AppState, job_id: str) -> None:
    """A queued job is dropped at once; a running one stops at its next progress check
    and rolls back; a finished one's answer is forgotten."""
    with write_transaction(state.engine) as conn:
        conn.execute(delete(bulk_jobs).where(bulk_jobs.c.id == job_id,
                                             bulk_jobs.c.status == DONE))
        conn.execute(update(bulk_jobs).where(bulk_jobs.c.id == job_id,
                                             bulk_jobs.c.status == QUEUED)
                     .values(status=CANCELLED, finished_at=utc_now()))
        conn.execute(update(bulk_jobs).where(bulk_jobs.c.id == job_id,
                                             bulk_jobs.c.status == RUNNING)
                     .values(cancel_requested=True))
        _drop_parts_of_finished(conn, job_id)


# -- the worker side -------------------------------------------------------------------------

def run_next(state: AppState) -> str | None:
    """Load the oldest queued job (or one whose worker died); returns its id, None when
    there was nothing to do."""
    me = worker_name()
    with write_transaction(state.engine) as conn:
        row = _claimable(conn)
        if row is None:
            return None
        conn.execute(update(bulk_jobs).where(bulk_jobs.c.id == row.id).values(
            status=RUNNING, claimed_by=me, started_at=utc_now(), lines_read=0,
            cancel_requested=False))
    job_id, owner, address = row.id, row.owner, row.address
    progress = _Progress(state, job_id)
    token = current_principal.set(_principal_of(row.principal))
    answer: tuple[int, dict[str, Any]] | None  # (status, OperationOutcome); None: cancelled
    try:
        report = bulk_load.load(state, _lines(state, job_id), owner, address,
                                progress=progress)
        answer = (report.status, report.outcome()) if report.lines else (
            400, operation_outcome([Issue("required", "The NDJSON body holds no resource")]))
    except _Cancelled:
        answer = None
    except Exception:  # the job must end with an answer, whatever broke
        log.exception("bulk job %s failed", job_id)
        answer = (500, operation_outcome([Issue(
            "exception", "The load failed on the server; nothing was loaded")]))
    finally:
        current_principal.reset(token)
    with write_transaction(state.engine) as conn:
        values: dict[str, Any] = {"finished_at": utc_now(), "lines_read": progress.lines,
                                  "status": CANCELLED}
        if answer is not None:
            values.update(status=DONE, answer_status=answer[0],
                          answer=orjson.dumps(answer[1]).decode())
        conn.execute(update(bulk_jobs).where(bulk_jobs.c.id == job_id).values(**values))
        _drop_parts_of_finished(conn, job_id)
    log.info("bulk job finished", extra={"fields": {
        "event": "bulk-job", "job": job_id, "status": answer[0] if answer else "cancelled",
        "lines": progress.lines}})
    return job_id


class BulkJobRunner:
    """The worker's periodic task: starts the next job in a thread when none runs, so that
    a load of minutes never holds up notifications."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.thread: threading.Thread | None = None

    def __call__(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        self.thread = threading.Thread(target=self._drain, name="bulk-jobs", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            while run_next(self.state) is not None:
                pass
        except Exception:  # the database is away: try again at the next tick
            log.exception("bulk jobs: could not claim a job")


def run_bulk_jobs(state: AppState) -> tuple[float, Callable[[], object]]:
    """Registered in app/__init__.py: the worker runs it every POLL_SECONDS."""
    return POLL_SECONDS, BulkJobRunner(state)


# -- helpers ---------------------------------------------------------------------------------

class _Cancelled(Exception):
    """The client cancelled the job while it ran: the load rolls back."""


class _Progress:
    """Counts lines; every PROGRESS_LINES, records them (the status URL shows them) and
    looks whether the client cancelled. SQLite holds its write lock for the whole load, so
    there the count is kept until the end."""

    def __init__(self, state: AppState, job_id: str) -> None:
        self.state, self.job_id, self.lines = state, job_id, 0
        self.live = state.engine.dialect.name != "sqlite"

    def __call__(self, _size: int) -> None:
        self.lines += 1
        if not self.live or self.lines % PROGRESS_LINES:
            return
        with write_transaction(self.state.engine) as conn:
            conn.execute(update(bulk_jobs).where(bulk_jobs.c.id == self.job_id)
                         .values(lines_read=self.lines))
            stop = conn.execute(select(bulk_jobs.c.cancel_requested)
                                .where(bulk_jobs.c.id == self.job_id)).scalar()
        if stop:
            raise _Cancelled


def _lines(state: AppState, job_id: str) -> Iterator[bytes]:
    """The body's lines, part after part (a line may straddle two parts)."""
    rest = b""
    for seq in itertools.count():
        with read_transaction(state.engine) as conn:
            data = conn.execute(select(bulk_job_parts.c.data).where(
                bulk_job_parts.c.job_id == job_id, bulk_job_parts.c.seq == seq)).scalar()
        if data is None:
            break
        *complete, rest = (rest + bytes(data)).split(b"\n")
        for line in complete:
            yield line + b"\n"
    if rest:
        yield rest


def _claimable(conn: Connection) -> Any:
    alive = select(worker_heartbeats.c.worker).where(
        worker_heartbeats.c.beat_at >= utc_now() - STALE_AFTER)
    orphaned = (bulk_jobs.c.status == RUNNING) & bulk_jobs.c.claimed_by.not_in(alive)
    return conn.execute(select(bulk_jobs.c.id, bulk_jobs.c.owner, bulk_jobs.c.address,
                               bulk_jobs.c.principal)
                        .where((bulk_jobs.c.status == QUEUED) | orphaned)
                        .order_by(bulk_jobs.c.created_at).limit(1)
                        .with_for_update(skip_locked=True)).first()


def _drop_parts_of_finished(conn: Connection, job_id: str) -> None:
    finished = conn.execute(select(bulk_jobs.c.status).where(bulk_jobs.c.id == job_id)
                            ).scalar() in {DONE, CANCELLED}
    if finished:
        conn.execute(delete(bulk_job_parts).where(bulk_job_parts.c.job_id == job_id))


def _principal_json(principal: Principal | None) -> str | None:
    if principal is None:
        return None
    return orjson.dumps({"kind": principal.kind, "subject": principal.subject,
                         "scopes": str(principal.scopes),
                         "practitioners": sorted(principal.practitioners),
                         "organizations": sorted(principal.organizations)}).decode()


def _principal_of(text: str | None) -> Principal | None:
    if text is None:
        return None
    data = orjson.loads(text)
    return Principal(data["kind"], data["subject"], Scopes.parse(data["scopes"]),
                     frozenset(data["practitioners"]), frozenset(data["organizations"]))

