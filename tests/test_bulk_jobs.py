"""Asynchronous bulk loads (app/fhir/bulk_jobs.py): `POST /fhir` of NDJSON with
`Prefer: respond-async` answers 202 with a status URL, the worker loads the file with the
sender's rights, and the status URL gives the load's answer; on both databases."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select, update

from app.fhir import bulk_jobs
from app.state import state_of
from app.storage.schema import bulk_job_parts
from app.storage.schema import bulk_jobs as jobs_table
from tests.conftest import TEST_BASE_URL
from tests.factories import FHIR_JSON, body, slot
from tests.support.sas_agenda import start_worker, stop_worker
from tests.test_authorization import call, secured  # noqa: F401  (the fixture)
from tests.test_bulk_load import NDJSON, agenda_lines, count, ndjson, table_counts

Resource = dict[str, Any]
ASYNC = {"Content-Type": NDJSON, "Accept": FHIR_JSON, "Prefer": "respond-async"}


def submit(client: Any, data: bytes, headers: dict[str, str] | None = None) -> str:
    """POST asynchronously; returns the status URL's path."""
    response = client.post("/fhir", data=data, headers={**ASYNC, **(headers or {})})
    assert response.status_code == 202, response.get_data(as_text=True)
    location = response.headers["Content-Location"]
    assert "/fhir/_async/" in location
    return "/fhir/" + location.split("/fhir/", 1)[1]


def status(client: Any, path: str, headers: dict[str, str] | None = None) -> Any:
    return client.get(path, headers={"Accept": FHIR_JSON, **(headers or {})})


def answer(client: Any, path: str, headers: dict[str, str] | None = None) -> Resource:
    """The final answer: a batch-response Bundle holding the load's response."""
    response = status(client, path, headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = body(response)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "batch-response"
    (entry,) = bundle["entry"]
    return entry["response"]


def test_an_async_load_is_accepted_then_loaded_by_the_worker(app: Flask, client: Any,
                                                             engine: Engine) -> None:
    path = submit(client, ndjson(*agenda_lines("async", 40)))
    waiting = status(client, path)
    assert waiting.status_code == 202
    assert waiting.headers["X-Progress"].startswith("queued: 0 lines")
    assert count(engine, "Slot", "async-") == 0  # nothing before the worker runs
    assert bulk_jobs.run_next(state_of(app)) is not None
    assert bulk_jobs.run_next(state_of(app)) is None  # one job, done once
    response = answer(client, path)
    assert response["status"] == "200 OK"
    assert "42 resources loaded from 42 lines" in response["outcome"]["issue"][0]["diagnostics"]
    assert count(engine, "Slot", "async-") == 40
    found = body(client.get("/fhir/Slot?schedule=Schedule/async-sch&_count=100",
                            headers={"Accept": FHIR_JSON}))
    assert found["total"] == 40
    with engine.connect() as conn:  # the body is not kept once loaded
        assert conn.execute(select(func.count()).select_from(bulk_job_parts)).scalar_one() == 0
    # DELETE once done forgets the answer (the loaded resources stay).
    assert client.delete(path, headers={"Accept": FHIR_JSON}).status_code == 202
    assert status(client, path).status_code == 404
    assert count(engine, "Slot", "async-") == 40


def test_a_rejected_line_is_reported_and_nothing_is_loaded(app: Flask, client: Any,
                                                           engine: Engine) -> None:
    lines: list[Any] = list(agenda_lines("asyncbad", 5))
    lines.insert(3, slot("Schedule/asyncbad-sch", status="not-a-status", id="asyncbad-x"))
    before = table_counts(engine)
    path = submit(client, ndjson(*lines))
    bulk_jobs.run_next(state_of(app))
    response = answer(client, path)
    assert response["status"] == "422 Unprocessable Entity"
    diagnostics = [i["diagnostics"] for i in response["outcome"]["issue"]]
    assert any(d.startswith("line 4:") for d in diagnostics), diagnostics
    assert any("nothing was loaded" in d for d in diagnostics)
    assert count(engine, "Slot", "asyncbad-") == 0
    assert table_counts(engine) == before


def test_lines_that_straddle_two_parts_are_read_whole(app: Flask, client: Any, engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_jobs, "PART_BYTES", 97)  # a prime: lines cut anywhere
    data = ndjson(*agenda_lines("parts", 12))
    path = submit(client, data)
    with engine.connect() as conn:
        parts = conn.execute(select(func.count()).select_from(bulk_job_parts)).scalar_one()
    assert parts == -(-len(data) // 97)
    bulk_jobs.run_next(state_of(app))
    assert answer(client, path)["status"] == "200 OK"
    assert count(engine, "Slot", "parts-") == 12


def test_a_queued_load_can_be_cancelled(app: Flask, client: Any, engine: Engine) -> None:
    path = submit(client, ndjson(*agenda_lines("cancel", 3)))
    assert client.delete(path, headers={"Accept": FHIR_JSON}).status_code == 202
    assert status(client, path).status_code == 404
    assert bulk_jobs.run_next(state_of(app)) is None
    assert count(engine, "Slot", "cancel-") == 0


def test_a_load_whose_worker_died_is_taken_up_again(app: Flask, client: Any,
                                                     engine: Engine) -> None:
    path = submit(client, ndjson(*agenda_lines("orphan", 4)))
    job_id = path.rsplit("/", 1)[1]
    with engine.begin() as conn:  # claimed by a worker that never beat (killed midway)
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id)
                     .values(status=bulk_jobs.RUNNING, claimed_by="gone:1"))
    assert status(client, path).headers["X-Progress"].startswith("running")
    assert bulk_jobs.run_next(state_of(app)) == job_id
    assert answer(client, path)["status"] == "200 OK"
    assert count(engine, "Slot", "orphan-") == 4


def test_the_worker_task_loads_in_a_thread_of_its_own(app: Flask, client: Any,
                                                      engine: Engine) -> None:
    path = submit(client, ndjson(*agenda_lines("thread", 6)))
    period, task = bulk_jobs.run_bulk_jobs(state_of(app))
    assert period > 0
    task()
    assert isinstance(task, bulk_jobs.BulkJobRunner) and task.thread is not None
    task.thread.join(timeout=60)
    assert answer(client, path)["status"] == "200 OK"
    assert count(engine, "Slot", "thread-") == 6


def test_an_unknown_job_is_404(client: Any) -> None:
    response = status(client, "/fhir/_async/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert body(response)["resourceType"] == "OperationOutcome"


def test_the_sender_s_rights_apply_and_only_the_sender_sees_its_job(
        secured: Flask, engine: Engine) -> None:  # noqa: F811
    client = secured.test_client()
    mine = slot("Schedule/sch-martin-a", id="async-martin", start="2031-01-06T09:00:00+01:00",
                end="2031-01-06T09:15:00+01:00")
    theirs = slot("Schedule/sch-blanc", id="async-blanc", start="2031-01-06T09:00:00+01:00",
                  end="2031-01-06T09:15:00+01:00")
    martin = {"Authorization": "Bearer martin-only"}
    path = submit(client, ndjson(mine, theirs), martin)
    # Another client is told the job does not exist, and cannot cancel it.
    everything = {"Authorization": "Bearer everything"}
    assert status(client, path, everything).status_code == 404
    assert client.delete(path, headers={"Accept": FHIR_JSON, **everything}).status_code == 404
    bulk_jobs.run_next(state_of(secured))
    response = answer(client, path, martin)
    assert response["status"] == "403 Forbidden", response
    assert any(i["diagnostics"].startswith("line 2:") for i in response["outcome"]["issue"])
    assert count(engine, "Slot", "async-") == 0
    # Without the restricted line, the same client's load goes through.
    path = submit(client, ndjson(mine), martin)
    bulk_jobs.run_next(state_of(secured))
    assert answer(client, path, martin)["status"] == "200 OK"
    assert call(secured, "everything", "GET", "/fhir/Slot/async-martin").status_code == 200


def test_the_worker_process_loads_a_job_sent_over_http(client: Any, database_url: str,
                                                      engine: Engine, tmp_path: Path) -> None:
    """`fhir-agenda worker` (as `make run` starts it) takes the job up and loads it."""
    env = {**os.environ, "DATABASE_URL": database_url, "FHIR_BASE_URL": TEST_BASE_URL,
           "SECRET_KEY": "tests", "SECURITY_PROFILE": "development",
           "WORKER_POLL_SECONDS": "0.05"}
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        path = submit(client, ndjson(*agenda_lines("live", 300)))
        deadline = time.monotonic() + 60
        while status(client, path).status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer(client, path)["status"] == "200 OK"
        assert count(engine, "Slot", "live-") == 300
    finally:
        assert stop_worker(worker) == 0, (tmp_path / "worker.log").read_text()


def test_a_running_load_cancelled_midway_keeps_nothing(app: Flask, client: Any, engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite holds its write lock for the whole load: a DELETE waits for it")
    monkeypatch.setattr(bulk_jobs, "PROGRESS_LINES", 5)
    path = submit(client, ndjson(*agenda_lines("stop", 40)))
    job_id = path.rsplit("/", 1)[1]
    reading = bulk_jobs._lines

    def cancelled_midway(state: Any, job: str) -> Any:
        for number, line in enumerate(reading(state, job), start=1):
            if number == 12:  # the client's DELETE arrives while the worker loads
                assert client.delete(path, headers={"Accept": FHIR_JSON}).status_code == 202
            yield line

    monkeypatch.setattr(bulk_jobs, "_lines", cancelled_midway)
    assert bulk_jobs.run_next(state_of(app)) == job_id
    assert status(client, path).status_code == 404
    assert count(engine, "Slot", "stop-") == 0 and count(engine, "Schedule", "stop-") == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(bulk_job_parts)).scalar_one() == 0
