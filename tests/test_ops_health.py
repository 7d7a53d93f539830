"""/healthz and /readyz through HTTP, on both databases: each readiness check failing on
its own, with the reason in the JSON answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, insert, update

from app import create_app
from app.clock import utc_now
from app.config import Settings
from app.db import write_transaction
from app.ops import health
from app.ops.heartbeat import Heartbeat
from app.storage.schema import outbox, worker_heartbeats


def ready(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    answer = client.get("/readyz")
    assert answer.headers["Cache-Control"] == "no-store"
    return answer.status_code, answer.get_json()


def test_healthz_says_the_process_answers(client: FlaskClient) -> None:
    answer = client.get("/healthz")
    assert (answer.status_code, answer.get_json()) == (200, {"status": "ok"})


def test_ready_with_a_fresh_heartbeat_and_nothing_waiting(app: Flask, client: FlaskClient,
                                                          engine: Engine) -> None:
    status, document = ready(client)
    assert status == 503 and document["status"] == "not-ready"
    assert document["checks"]["worker"] == {
        "ok": False, "detail": "no delivery worker has ever beaten: start `fhir-agenda worker`"}
    assert document["checks"]["database"]["ok"] and document["checks"]["migrations"]["ok"]
    beat = Heartbeat(engine, name="host-a:1")
    beat()
    status, document = ready(client)
    assert (status, document["status"]) == (200, "ready")
    assert document["checks"]["outbox"] == {"ok": True, "detail": "nothing waiting"}
    beat.stop()  # a clean stop takes the worker out at once
    assert ready(client)[0] == 503


def test_a_silent_worker_makes_the_service_not_ready(client: FlaskClient,
                                                     engine: Engine) -> None:
    Heartbeat(engine, name="host-a:1")()
    with write_transaction(engine) as conn:
        conn.execute(update(worker_heartbeats).values(
            beat_at=utc_now() - timedelta(seconds=61)))
    status, document = ready(client)
    assert status == 503
    assert document["checks"]["worker"]["ok"] is False
    assert document["checks"]["worker"]["detail"].endswith("s (limit 60 s)")


def _queue(engine: Engine, age: timedelta, status: str = "pending") -> None:
    moment = utc_now() - age
    with write_transaction(engine) as conn:
        conn.execute(insert(outbox).values(
            subscriber="sas", ordering_key="Appointment/1", resource_type="Appointment",
            resource_id="1", version=1, method="POST", url="https://sas.example/Appointment",
            headers="{}", body=None, status=status, attempts=3, next_attempt_at=moment,
            created_at=moment))


def test_a_notification_waiting_too_long_makes_the_service_not_ready(
        client: FlaskClient, engine: Engine) -> None:
    Heartbeat(engine, name="host-a:1")()
    _queue(engine, timedelta(hours=2), status="parked")  # parked: for an operator, not us
    _queue(engine, timedelta(minutes=5))
    assert ready(client)[0] == 200
    _queue(engine, timedelta(minutes=16))
    status, document = ready(client)
    assert status == 503
    assert document["checks"]["outbox"]["ok"] is False
    assert document["checks"]["outbox"]["detail"].endswith("s (limit 900 s)")


def test_limits_come_from_the_settings_and_zero_turns_a_check_off(
        engine: Engine, database_url: str, app: Flask) -> None:
    _queue(engine, timedelta(minutes=16))
    relaxed = create_app(Settings.from_env(
        database_url=database_url, health_worker_max_age_seconds=0,
        health_outbox_max_age_seconds=0), engine=engine).test_client()
    status, document = ready(relaxed)
    assert status == 200
    assert document["checks"]["worker"]["detail"] == "not checked"


def test_a_database_behind_the_code_is_not_ready(client: FlaskClient,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 engine: Engine) -> None:
    Heartbeat(engine, name="host-a:1")()
    monkeypatch.setattr(health, "expected_revisions", lambda: frozenset({"9999"}))
    status, document = ready(client)
    assert status == 503
    assert document["checks"]["migrations"]["ok"] is False
    assert "code at 9999" in document["checks"]["migrations"]["detail"]


def test_an_unreachable_database_is_not_ready() -> None:
    broken = create_app(Settings.from_env(
        database_url="postgresql://nobody@127.0.0.1:1/none")).test_client()
    status, document = ready(broken)
    assert status == 503
    assert document["checks"] == {"database": {
        "ok": False, "detail": document["checks"]["database"]["detail"]}}
    assert document["checks"]["database"]["detail"].startswith("unreachable")
    assert broken.get("/healthz").status_code == 200  # the process itself is fine
