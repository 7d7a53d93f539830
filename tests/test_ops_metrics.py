"""The Prometheus metrics (names and labels), request ids and the request log line,
through HTTP and the delivery worker, on both databases."""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, select

from app import create_app
from app.config import Settings
from app.ops.heartbeat import Heartbeat
from app.ops.logs import JsonFormatter
from app.ops.selftest.searches import ps_search
from app.state import state_of
from app.storage.maintenance import truncate_all
from app.storage.schema import outbox
from app.subscriptions.worker import Worker
from tests.factories import body, create, read
from tests.support.accounts import login
from tests.test_subscriptions import Receiver, subscription

RPPS = "810003456786"


def scrape(client: FlaskClient) -> str:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_are_counted_per_interaction_variant_and_status(client: FlaskClient) -> None:
    sas = {"interaction": "search-type", "variant": "sas-individual"}
    before = {code: value("fhir_agenda_http_requests_total", code=code, **sas)
              for code in ("200", "400")}
    assert client.get(f"/fhir/{ps_search([RPPS]).url}").status_code == 200
    assert client.get(f"/fhir/{ps_search([RPPS], hours=73).url}").status_code == 400
    assert client.get("/fhir/Practitioner?name=martin").status_code == 200
    assert client.get("/fhir/Practitioner/unknown").status_code == 404
    assert client.get("/fhir/metadata").status_code == 200
    text = scrape(client)
    for code in ("200", "400"):
        assert value("fhir_agenda_http_requests_total", code=code, **sas) == before[code] + 1
    # The SAS search is its own series, beside ordinary searches, with the 1 s and 7 s bounds.
    for le in ("1.0", "7.0", "+Inf"):
        assert (f'fhir_agenda_http_request_duration_seconds_bucket{{interaction="search-type",'
                f'le="{le}",variant="sas-individual"}}') in text
    assert ('fhir_agenda_http_request_duration_seconds_count{interaction="search-type",'
            'variant="none"}') in text
    assert ('fhir_agenda_http_requests_total{code="404",interaction="read",variant="none"}'
            in text)
    assert 'interaction="capabilities"' in text
    assert "# TYPE fhir_agenda_db_pool_checked_out_connections gauge" in text
    assert "# TYPE fhir_agenda_db_pool_capacity_connections gauge" in text
    assert "# TYPE fhir_agenda_db_connections_opened_total counter" in text


def test_outbox_depth_age_and_worker_heartbeat_are_read_at_scrape_time(
        client: FlaskClient, engine: Engine) -> None:
    text = scrape(client)
    for status in ("pending", "delivering", "parked"):
        assert f'fhir_agenda_outbox_messages{{status="{status}"}} 0.0' in text
    assert "fhir_agenda_outbox_oldest_pending_age_seconds 0.0" in text
    assert "fhir_agenda_worker_heartbeat_age_seconds" not in text  # no worker ever
    Heartbeat(engine, name="host-a:1")()
    age = re.search(r"^fhir_agenda_worker_heartbeat_age_seconds (\S+)$", scrape(client), re.M)
    assert age and 0 <= float(age.group(1)) < 60


def test_logins_are_counted_by_outcome(client: FlaskClient) -> None:
    before = value("fhir_agenda_logins_total", method="password", outcome="refused")
    login(client, "nobody@centre.fr", "wrong password!")
    assert value("fhir_agenda_logins_total", method="password", outcome="refused") == before + 1
    assert "# TYPE fhir_agenda_logins_total counter" in scrape(client)


@pytest.fixture
def hook_app(engine: Engine, database_url: str) -> Callable[..., Flask]:
    truncate_all(engine)
    flask_app = create_app(Settings.from_env(
        database_url=database_url, fhir_base_url="http://localhost/fhir", sas_base_url=None,
        subscription_error_threshold=1, outbox_base_delay_seconds=0.0), engine=engine)
    flask_app.config["TESTING"] = True
    return flask_app


def test_deliveries_carry_the_request_id_and_count_per_channel(hook_app: Flask,
                                                              engine: Engine) -> None:
    receiver = Receiver().start()  # the rest-hook endpoint of the Subscription tests
    try:
        _deliver_twice(hook_app, engine, receiver)
    finally:
        receiver.stop()


def _deliver_twice(hook_app: Flask, engine: Engine, receiver: Receiver) -> None:
    client = hook_app.test_client()
    created = create(client, subscription("Patient?family=durand", f"{receiver.url}/hook",
                                          payload=None))
    answer = client.post("/fhir/Patient", json={"resourceType": "Patient",
                                                "name": [{"family": "Durand"}]},
                         headers={"X-Request-ID": "agenda-trace-42",
                                  "Content-Type": "application/fhir+json"})
    assert answer.status_code == 201 and answer.headers["X-Request-ID"] == "agenda-trace-42"
    with engine.connect() as conn:
        stored = json.loads(conn.execute(select(outbox.c.headers)).scalar_one())
    assert stored["X-Request-ID"] == "agenda-trace-42"
    retry = value("fhir_agenda_deliveries_total", channel="rest-hook", outcome="retry")
    delivered = value("fhir_agenda_deliveries_total", channel="rest-hook", outcome="delivered")
    errors = value("fhir_agenda_subscription_errors_total", channel="rest-hook")
    receiver.status = 500
    worker = Worker(state_of(hook_app))
    try:
        assert worker.step()
        receiver.status = 200
        assert worker.step()
    finally:
        worker.delivery.close()
    seen = receiver.take()
    assert [r.headers["X-Request-ID"] for r in seen] == ["agenda-trace-42"] * 2
    assert value("fhir_agenda_deliveries_total", channel="rest-hook",
                 outcome="retry") == retry + 1
    assert value("fhir_agenda_deliveries_total", channel="rest-hook",
                 outcome="delivered") == delivered + 1
    assert value("fhir_agenda_subscription_errors_total", channel="rest-hook") == errors + 1
    assert body(read(client, "Subscription", created["id"]))["status"] == "active"
    assert 'fhir_agenda_delivery_duration_seconds_count{channel="rest-hook"}' in scrape(client)


def test_each_request_logs_one_json_line_without_personal_data(
        client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.requests"):
        answer = client.get("/fhir/Patient?name=Dupont&birthdate=1970-01-01",
                            headers={"X-Request-ID": "bad id <script>"})
    assert answer.status_code == 200
    request_id = answer.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # an unusable id is replaced
    records = [r for r in caplog.records if r.name == "app.requests"]
    assert len(records) == 1
    line: dict[str, Any] = json.loads(JsonFormatter().format(records[0]))
    assert line["request_id"] == request_id
    assert {k: line[k] for k in ("event", "method", "route", "resource_type", "interaction",
                                 "variant", "status", "level")} == {
        "event": "request", "method": "GET", "route": "/fhir/<resource_type>",
        "resource_type": "Patient", "interaction": "search-type", "variant": "none",
        "status": 200, "level": "INFO"}
    assert isinstance(line["duration_ms"], float)
    serialised = json.dumps(line)
    assert "Dupont" not in serialised and "1970" not in serialised


def test_a_proxy_request_id_is_kept(client: FlaskClient) -> None:
    answer = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:42"})
    assert answer.headers["X-Request-ID"] == "lb-7f3a:42"


def test_gunicorn_logs_json_lines_and_no_query_string(live_server: str,
                                                      live_server_process: Any) -> None:
    with urllib.request.urlopen(f"{live_server}/Patient?name=Dupont") as answer:
        request_id = answer.headers["X-Request-ID"]
    log = live_server_process.log_path.read_text()
    assert "Dupont" not in log  # neither the application's line nor gunicorn's access log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert [(line["event"], line["route"], line["status"]) for line in mine] == [
        ("request", "/fhir/<resource_type>", 200)]
    assert any(line["logger"] == "gunicorn.error" for line in lines)  # gunicorn's own, too
