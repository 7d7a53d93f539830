"""FHIR R4 rest-hook Subscriptions, through the FHIR API, the delivery worker and the admin tools.

Each test builds its own app (settings overridden, database emptied), talks to it with the
Flask test client, and lets `Worker.run(once=True)` deliver to a small threaded HTTP receiver
standing in for the subscriber. Runs on SQLite and PostgreSQL like every database test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from app import create_app
from app.cli import main
from app.config import Settings
from app.state import state_of
from app.storage.maintenance import truncate_all
from app.storage.schema import outbox
from app.subscriptions.worker import WORKER_AUTHOR, Worker
from tests.factories import (
    BASE_URL,
    FHIR_JSON,
    RPPS,
    RPPS_SYSTEM,
    assert_outcome,
    body,
    bundle,
    create,
    entry,
    expressions,
    practitioner,
    put,
    read,
    schedule,
    search_ids,
    send,
    slot,
)

Resource = dict[str, Any]
ADMIN_TOKEN = "s3cret-admin-token"


# -- the subscriber: a small threaded HTTP receiver -------------------------------------------

@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Resource:
        return json.loads(self.body)


class Receiver:
    """Records every request and answers `status` (or the status set for a path prefix)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.by_path: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.requests.append(Received(self.command, self.path,
                                                      dict(self.headers.items()), data))
                    status = next((code for prefix, code in receiver.by_path.items()
                                   if self.path.startswith(prefix)), receiver.status)
                answer = b"" if status < 300 else b'{"resourceType":"OperationOutcome"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_DELETE = do_GET = _record

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take(self) -> list[Received]:
        """The requests received since the last call."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def make_app(engine: Engine, database_url: str) -> Callable[..., Flask]:
    """`make_app(**settings)`: a fresh app on an emptied database, with these settings."""

    def build(**overrides: Any) -> Flask:
        truncate_all(engine)
        values: dict[str, Any] = {
            "database_url": database_url, "fhir_base_url": BASE_URL,
            "sas_base_url": None, "admin_token": None, "outbound_timeout_seconds": 5.0,
            # A failed delivery waits a minute: `run(once=True)` then stops after one try.
            "outbox_base_delay_seconds": 60.0, **overrides}
        flask_app = create_app(Settings.from_env(**values), engine=engine)
        flask_app.config["TESTING"] = True
        return flask_app

    return build


@pytest.fixture
def hook_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def hooks(hook_app: Flask) -> FlaskClient:
    return hook_app.test_client()


def deliver(flask_app: Flask) -> int:
    """What one worker pass delivers (everything due, then it stops)."""
    return Worker(state_of(flask_app)).run(once=True)


def outbox_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.pk)))


# -- resources --------------------------------------------------------------------------------

def subscription(criteria: str, endpoint: str, *, payload: str | None = FHIR_JSON,
                 headers: list[str] | None = None, status: str = "requested",
                 channel_type: str = "rest-hook", **extra: Any) -> Resource:
    channel: Resource = {"type": channel_type, "endpoint": endpoint}
    if payload is not None:
        channel["payload"] = payload
    if headers:
        channel["header"] = headers
    return {"resourceType": "Subscription", "status": status, "reason": "Agenda tiers",
            "criteria": criteria, "channel": channel, **extra}


LATER = {"start": "2026-11-02T10:00:00+01:00", "end": "2026-11-02T10:15:00+01:00"}


def appointment(*actors: str, status: str = "booked", start: str = "2026-11-02T09:00:00+01:00",
                end: str = "2026-11-02T09:15:00+01:00", **extra: Any) -> Resource:
    return {"resourceType": "Appointment", "status": status, "start": start, "end": end,
            "participant": [{"actor": {"reference": actor}, "status": "accepted"}
                            for actor in actors], **extra}


@pytest.fixture
def doctors(hooks: FlaskClient) -> dict[str, str]:
    """Practitioner/123 (RPPS 810001234567), another practitioner, and a patient."""
    put(hooks, practitioner(resource_id="123"))
    other = create(hooks, practitioner("810009999999", family="Bernard"))
    patient = create(hooks, {"resourceType": "Patient", "name": [{"family": "Durand"}]})
    return {"doctor": "Practitioner/123", "other": f"Practitioner/{other['id']}",
            "patient": f"Patient/{patient['id']}"}


def change(client: FlaskClient, resource: Resource, **changes: Any) -> Resource:
    """PUT the resource back with some elements changed; returns the stored version."""
    return put(client, {**resource, **changes})


# -- creating Subscriptions -------------------------------------------------------------------

@pytest.mark.parametrize("payload", [FHIR_JSON, None, "application/fhir+json; fhirVersion=4.0"])
def test_a_requested_subscription_is_stored_active(hooks: FlaskClient, payload: str | None
                                                   ) -> None:
    response = send(hooks, "POST", "Subscription", subscription(
        "Appointment?actor=Practitioner/123", "https://agenda.example/fhir-hook",
        payload=payload, headers=["Authorization: Bearer abc", "X-Agenda: 42"]))
    assert response.status_code == 201, body(response)
    created = body(response)
    assert created["status"] == "active"
    assert response.headers["Location"].startswith(
        f"{BASE_URL}/Subscription/{created['id']}/_history/1")
    stored = body(read(hooks, "Subscription", created["id"]))
    assert stored["status"] == "active"
    assert stored["criteria"] == "Appointment?actor=Practitioner/123"
    assert stored["channel"]["type"] == "rest-hook"
    assert stored["channel"]["endpoint"] == "https://agenda.example/fhir-hook"
    assert stored["channel"].get("payload") == payload
    assert stored["channel"]["header"] == ["Authorization: Bearer abc", "X-Agenda: 42"]
    assert search_ids(hooks, "Subscription", "status=active") == [created["id"]]
    assert search_ids(hooks, "Subscription", "status=requested") == []
    assert search_ids(hooks, "Subscription", "type=rest-hook") == [created["id"]]


def test_a_subscription_created_off_stays_off(hooks: FlaskClient) -> None:
    created = create(hooks, subscription("Patient?family=durand", "https://agenda.example/h",
                                         status="off"))
    assert created["status"] == "off"
    assert search_ids(hooks, "Subscription", "status=active") == []


INVALID = {
    "websocket channel": (lambda s: s["channel"].update(type="websocket"),
                          "Subscription.channel.type"),
    "email channel": (lambda s: s["channel"].update(type="email", endpoint="mailto:a@b.fr"),
                      "Subscription.channel.type"),
    "missing endpoint": (lambda s: s["channel"].pop("endpoint"),
                         "Subscription.channel.endpoint"),
    "ftp endpoint": (lambda s: s["channel"].update(endpoint="ftp://agenda.example/h"),
                     "Subscription.channel.endpoint"),
    "unknown criteria type": (lambda s: s.update(criteria="Rendezvous?actor=Practitioner/1"),
                              "Subscription.criteria"),
    "criteria on Subscription": (lambda s: s.update(criteria="Subscription?status=active"),
                                 "Subscription.criteria"),
    "unknown criteria parameter": (lambda s: s.update(criteria="Appointment?colour=blue"),
                                   "Subscription.criteria"),
    "unknown chained parameter": (
        lambda s: s.update(criteria="Appointment?actor:Practitioner.shoe-size=42"),
        "Subscription.criteria"),
    "unsupported modifier": (lambda s: s.update(criteria="Appointment?status:fuzzy=booked"),
                             "Subscription.criteria"),
    "xml payload": (lambda s: s["channel"].update(payload="application/fhir+xml"),
                    "Subscription.channel.payload"),
    "text payload": (lambda s: s["channel"].update(payload="text/plain"),
                     "Subscription.channel.payload"),
    "header without a colon": (lambda s: s["channel"].update(header=["Bearer abc"]),
                               "Subscription.channel.header[0]"),
    "header without a name": (lambda s: s["channel"].update(header=[": abc"]),
                              "Subscription.channel.header[0]"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_unservable_subscription_is_refused_naming_the_element(hooks: FlaskClient,
                                                                  case: str) -> None:
    resource = subscription("Appointment?actor=Practitioner/123", "https://agenda.example/h")
    spoil, element = INVALID[case]
    spoil(resource)
    outcome = assert_outcome(send(hooks, "POST", "Subscription", resource), 422)
    assert element in expressions(outcome), outcome
    assert any(element in issue["diagnostics"] for issue in outcome["issue"]), outcome
    assert search_ids(hooks, "Subscription") == []


def test_an_update_to_an_unservable_channel_is_refused(hooks: FlaskClient) -> None:
    created = create(hooks, subscription("Patient?family=durand", "https://agenda.example/h"))
    spoiled = {**created, "channel": {"type": "websocket", "endpoint": "wss://agenda.example"}}
    response = send(hooks, "PUT", f"Subscription/{created['id']}", spoiled)
    outcome = assert_outcome(response, 422, "not-supported")
    assert "Subscription.channel.type" in expressions(outcome)
    stored = body(read(hooks, "Subscription", created["id"]))
    assert stored["meta"]["versionId"] == "1"
    assert stored["channel"]["type"] == "rest-hook"


# -- criteria are matched with the search engine ----------------------------------------------

def test_reference_criteria_notify_matching_appointments_only(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    create(hooks, subscription("Appointment?actor=Practitioner/123", f"{receiver.url}/hook"))

    mine = create(hooks, appointment(doctors["doctor"], doctors["patient"]))
    assert deliver(hook_app) == 1
    (notified,) = receiver.take()
    assert notified.path == f"/hook/Appointment/{mine['id']}"

    create(hooks, appointment(doctors["other"], doctors["patient"], **LATER))
    assert deliver(hook_app) == 0
    assert receiver.take() == []

    change(hooks, mine, status="arrived")
    assert deliver(hook_app) == 1
    (notified,) = receiver.take()
    assert notified.json()["status"] == "arrived"

    # Handed over to the other practitioner: no longer matches, nothing is sent.
    change(hooks, mine, participant=[{"actor": {"reference": doctors["other"]},
                                      "status": "accepted"}])
    assert deliver(hook_app) == 0
    assert receiver.take() == []


def test_criteria_with_two_parameters_need_both(hook_app: Flask, hooks: FlaskClient,
                                                receiver: Receiver) -> None:
    put(hooks, practitioner(resource_id="123"))
    put(hooks, {**schedule("Practitioner/123"), "id": "9"})
    other = create(hooks, schedule("Practitioner/123", value="agenda-2"))
    create(hooks, subscription("Slot?schedule=Schedule/9&status=free", f"{receiver.url}/slots"))

    free = create(hooks, slot("Schedule/9"))
    assert deliver(hook_app) == 1
    assert [r.path for r in receiver.take()] == [f"/slots/Slot/{free['id']}"]

    create(hooks, slot("Schedule/9", status="busy", start="2026-11-02T10:00:00+01:00",
                       end="2026-11-02T10:15:00+01:00"))
    create(hooks, slot(f"Schedule/{other['id']}"))
    assert deliver(hook_app) == 0

    booked = change(hooks, free, status="busy")
    assert deliver(hook_app) == 0
    change(hooks, booked, status="free")
    assert deliver(hook_app) == 1
    (notified,) = receiver.take()
    assert notified.json()["meta"]["versionId"] == "3"


def test_token_criteria_with_a_system(hook_app: Flask, hooks: FlaskClient,
                                      receiver: Receiver) -> None:
    create(hooks, subscription(f"Practitioner?identifier={RPPS_SYSTEM}|{RPPS}",
                               f"{receiver.url}/hook"))
    same_value_other_system = practitioner()
    same_value_other_system["identifier"][0]["system"] = "urn:example:local-ids"
    create(hooks, same_value_other_system)
    create(hooks, practitioner("810009999999"))
    assert deliver(hook_app) == 0

    doctor = create(hooks, practitioner())
    assert deliver(hook_app) == 1
    (notified,) = receiver.take()
    assert notified.path == f"/hook/Practitioner/{doctor['id']}"
    assert receiver.take() == []


@pytest.mark.parametrize("criteria", [
    "Appointment?date=ge2026-11-03",
    "Appointment?date=gt2026-11-02T23:59:59Z",
    # An unencoded '+' of an offset, as clients write it: read as the offset it is.
    "Appointment?date=ge2026-11-03T00:00:00+01:00",
    "Appointment?date=ge2026-11-03T00:00:00%2B01:00&date=lt2026-12",
])
def test_date_criteria_with_a_prefix(hook_app: Flask, hooks: FlaskClient, receiver: Receiver,
                                     doctors: dict[str, str], criteria: str) -> None:
    create(hooks, subscription(criteria, f"{receiver.url}/hook"))
    create(hooks, appointment(doctors["doctor"]))  # 2 November
    assert deliver(hook_app) == 0
    later = create(hooks, appointment(doctors["doctor"], start="2026-11-04T09:00:00+01:00",
                                      end="2026-11-04T09:15:00+01:00"))
    assert deliver(hook_app) == 1
    assert [r.path for r in receiver.take()] == [f"/hook/Appointment/{later['id']}"]


def test_chained_criteria(hook_app: Flask, hooks: FlaskClient, receiver: Receiver) -> None:
    doctor = create(hooks, practitioner())
    other = create(hooks, practitioner("810009999999"))
    mine = create(hooks, schedule(f"Practitioner/{doctor['id']}"))
    theirs = create(hooks, schedule(f"Practitioner/{other['id']}", value="agenda-2"))
    create(hooks, subscription(
        f"Slot?schedule.actor:Practitioner.identifier={RPPS_SYSTEM}|{RPPS}&status=free",
        f"{receiver.url}/hook", payload=None))
    create(hooks, subscription(f"Appointment?actor:Practitioner.identifier={RPPS}",
                               f"{receiver.url}/appointments", payload=None))

    create(hooks, slot(f"Schedule/{theirs['id']}"))
    create(hooks, appointment(f"Practitioner/{other['id']}"))
    assert deliver(hook_app) == 0

    create(hooks, slot(f"Schedule/{mine['id']}"))
    assert deliver(hook_app) == 1
    assert [(r.method, r.path) for r in receiver.take()] == [("POST", "/hook")]
    create(hooks, appointment(f"Practitioner/{doctor['id']}"))
    assert deliver(hook_app) == 1
    assert [(r.method, r.path) for r in receiver.take()] == [("POST", "/appointments")]


def test_or_values_and_negation(hook_app: Flask, hooks: FlaskClient, receiver: Receiver,
                                doctors: dict[str, str]) -> None:
    create(hooks, subscription("Appointment?status=arrived,fulfilled&part-status:not=declined",
                               f"{receiver.url}/hook", payload=None))
    booked = create(hooks, appointment(doctors["doctor"]))
    assert deliver(hook_app) == 0
    arrived = change(hooks, booked, status="arrived")
    assert deliver(hook_app) == 1
    change(hooks, arrived, status="fulfilled")
    assert deliver(hook_app) == 1
    assert len(receiver.take()) == 2


def test_every_matching_subscription_is_notified_once(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    create(hooks, subscription("Appointment?actor=Practitioner/123", f"{receiver.url}/a"))
    create(hooks, subscription("Appointment?status=booked", f"{receiver.url}/b", payload=None))
    create(hooks, subscription("Appointment?status=cancelled", f"{receiver.url}/c"))
    booked = create(hooks, appointment(doctors["doctor"]))
    assert deliver(hook_app) == 2
    assert sorted((r.method, r.path) for r in receiver.take()) == [
        ("POST", "/b"), ("PUT", f"/a/Appointment/{booked['id']}")]


def test_notifications_follow_the_transaction(hook_app: Flask, hooks: FlaskClient,
                                              receiver: Receiver,
                                              doctors: dict[str, str]) -> None:
    create(hooks, subscription("Appointment?actor=Practitioner/123", f"{receiver.url}/hook"))
    valid = appointment(doctors["doctor"])
    invalid = appointment(doctors["doctor"], participant=[
        {"actor": {"reference": "Practitioner/does-not-exist"}, "status": "accepted"}])
    failed = send(hooks, "POST", "", bundle("transaction", entry("POST", "Appointment", valid),
                                            entry("POST", "Appointment", invalid)))
    assert failed.status_code >= 400
    assert outbox_rows(state_of(hook_app).engine) == []
    assert deliver(hook_app) == 0

    done = send(hooks, "POST", "", bundle("transaction", entry("POST", "Appointment", valid),
                                          entry("POST", "Appointment", {**valid, **LATER})))
    assert done.status_code == 200, body(done)
    assert deliver(hook_app) == 2
    assert len({r.path for r in receiver.take()}) == 2


# -- what is sent -----------------------------------------------------------------------------

def test_with_payload_the_resource_is_put_at_endpoint_type_id(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    create(hooks, subscription("Appointment?actor=Practitioner/123", f"{receiver.url}/fhir/",
                               headers=["Authorization: Bearer agenda-token",
                                        "X-Correlation:  rdv-42 "]))
    booked = create(hooks, appointment(doctors["doctor"], doctors["patient"]))
    assert deliver(hook_app) == 1
    (notified,) = receiver.take()
    assert notified.method == "PUT"
    assert notified.path == f"/fhir/Appointment/{booked['id']}"
    assert notified.headers["Authorization"] == "Bearer agenda-token"
    assert notified.headers["X-Correlation"] == "rdv-42"
    assert notified.headers["Content-Type"] == FHIR_JSON
    assert notified.json() == body(read(hooks, "Appointment", booked["id"]))
    assert notified.json()["meta"]["versionId"] == "1"

    updated = change(hooks, booked, status="arrived")
    assert deliver(hook_app) == 1
    (notified,) = receiver.take()
    assert notified.json() == updated
    assert notified.json()["meta"]["versionId"] == "2"


def test_without_payload_an_empty_post_goes_to_the_endpoint(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    create(hooks, subscription("Appointment?actor=Practitioner/123", f"{receiver.url}/ping",
                               payload=None, headers=["Authorization: Bearer agenda-token"]))
    create(hooks, appointment(doctors["doctor"]))
    assert deliver(hook_app) == 1
    (notified,) = receiver.take()
    assert (notified.method, notified.path, notified.body) == ("POST", "/ping", b"")
    assert notified.headers["Authorization"] == "Bearer agenda-token"
    assert int(notified.headers.get("Content-Length", "0")) == 0


def test_a_newer_version_supersedes_an_undelivered_payload(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    """With payload the full resource is sent: only its latest state is worth sending.
    Without payload every change is announced."""
    create(hooks, subscription("Appointment?actor=Practitioner/123", f"{receiver.url}/full"))
    create(hooks, subscription("Appointment?actor=Practitioner/123", f"{receiver.url}/ping",
                               payload=None))
    booked = create(hooks, appointment(doctors["doctor"]))
    assert deliver(hook_app) == 2
    receiver.take()
    arrived = change(hooks, booked, status="arrived")
    change(hooks, arrived, status="fulfilled")
    assert deliver(hook_app) == 3
    requests = receiver.take()
    (full,) = [r for r in requests if r.method == "PUT"]
    assert full.json()["status"] == "fulfilled"
    assert full.json()["meta"]["versionId"] == "3"
    assert [r.path for r in requests if r.method == "POST"] == ["/ping", "/ping"]


# -- status: error, off, deleted --------------------------------------------------------------

def test_repeated_failures_set_error_then_a_success_sets_active(
        make_app: Callable[..., Flask], receiver: Receiver) -> None:
    hook_app = make_app(subscription_error_threshold=3, outbox_base_delay_seconds=0.0)
    client = hook_app.test_client()
    created = create(client, subscription("Patient?family=durand", f"{receiver.url}/hook",
                                          payload=None))
    create(client, {"resourceType": "Patient", "name": [{"family": "Durand"}]})
    receiver.status = 500
    worker = Worker(state_of(hook_app))
    try:
        for attempt in (1, 2):
            assert worker.step()
            assert body(read(client, "Subscription", created["id"]))["status"] == "active", \
                attempt
        assert worker.step()
    finally:
        worker.delivery.close()
    assert len(receiver.take()) == 3
    failed = body(read(client, "Subscription", created["id"]))
    assert failed["status"] == "error"
    assert f"{receiver.url}/hook" in failed["error"]
    assert "3 times" in failed["error"]
    assert "HTTP 500" in failed["error"]

    receiver.status = 200
    assert deliver(hook_app) == 1
    assert len(receiver.take()) == 1
    recovered = body(read(client, "Subscription", created["id"]))
    assert recovered["status"] == "active"
    assert "error" not in recovered
    history = body(client.get(f"/fhir/Subscription/{created['id']}/_history"))
    assert [e["resource"]["status"] for e in history["entry"]] == ["active", "error", "active"]
    authors = [ext["valueString"] for e in history["entry"][:2]
               for ext in e["request"].get("extension", [])]
    assert authors == [WORKER_AUTHOR, WORKER_AUTHOR]


def test_status_off_stops_notifications_and_active_resumes_them(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    created = create(hooks, subscription("Appointment?actor=Practitioner/123",
                                         f"{receiver.url}/hook"))
    booked = create(hooks, appointment(doctors["doctor"]))
    assert deliver(hook_app) == 1
    receiver.take()

    off = change(hooks, created, status="off")
    assert off["status"] == "off"
    booked = change(hooks, booked, status="arrived")
    create(hooks, appointment(doctors["doctor"], **LATER))
    assert deliver(hook_app) == 0
    assert receiver.take() == []

    assert change(hooks, off, status="requested")["status"] == "active"
    change(hooks, booked, status="fulfilled")
    assert deliver(hook_app) == 1
    assert receiver.take()[0].json()["status"] == "fulfilled"


def test_deleting_the_subscription_stops_notifications(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    created = create(hooks, subscription("Appointment?actor=Practitioner/123",
                                         f"{receiver.url}/hook"))
    booked = create(hooks, appointment(doctors["doctor"]))
    assert deliver(hook_app) == 1
    receiver.take()
    assert send(hooks, "DELETE", f"Subscription/{created['id']}").status_code in (200, 204)
    change(hooks, booked, status="arrived")
    create(hooks, appointment(doctors["doctor"], **LATER))
    assert deliver(hook_app) == 0
    assert receiver.take() == []
    assert search_ids(hooks, "Subscription") == []


# -- the admin view ---------------------------------------------------------------------------

def _pending_retrying_parked(flask_app: Flask, receiver: Receiver) -> dict[str, str]:
    """Three Subscriptions whose messages end up parked (400), retrying (503) and pending."""
    client = flask_app.test_client()
    receiver.by_path = {"/retry": 503, "/park": 400}
    ids = {}
    for name in ("retry", "park"):
        ids[name] = create(client, subscription("Patient?family=durand",
                                                f"{receiver.url}/{name}", payload=None))["id"]
    patient = create(client, {"resourceType": "Patient", "name": [{"family": "Durand"}]})
    assert deliver(flask_app) == 2  # one try each; the 503 waits a minute before the next
    ids["later"] = create(client, subscription("Patient?family=durand",
                                               f"{receiver.url}/later", payload=None))["id"]
    # A second version: queued for all three, behind the first one of its key for two.
    change(client, patient, gender="male")
    receiver.take()
    return ids


def test_admin_outbox_is_disabled_without_a_token(hook_app: Flask) -> None:
    response = hook_app.test_client().get("/admin/outbox",
                                          headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403
    assert "ADMIN_TOKEN" in response.get_json()["error"]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {ADMIN_TOKEN}x",
                                           "Bearer ", f"Bearer {ADMIN_TOKEN}extra"])
def test_admin_outbox_refuses_a_missing_or_wrong_token(make_app: Callable[..., Flask],
                                                       authorization: str | None) -> None:
    client = make_app(admin_token=ADMIN_TOKEN).test_client()
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/admin/outbox", headers=headers)
    assert response.status_code == 401
    assert "messages" not in response.get_json()


def test_admin_outbox_lists_pending_retrying_and_parked_messages(
        make_app: Callable[..., Flask], receiver: Receiver) -> None:
    flask_app = make_app(admin_token=ADMIN_TOKEN)
    ids = _pending_retrying_parked(flask_app, receiver)
    client = flask_app.test_client()
    response = client.get("/admin/outbox", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    listing = response.get_json()
    by_subscriber: dict[str, list[dict[str, Any]]] = {}
    for message in listing["messages"]:
        by_subscriber.setdefault(message["subscriber"], []).append(message)
    retry = by_subscriber[f"Subscription/{ids['retry']}"][0]
    assert retry["status"] == "pending" and retry["retrying"] is True
    assert retry["attempts"] == 1 and retry["last_status"] == 503
    assert retry["last_error"].startswith("HTTP 503")
    assert retry["url"] == f"{receiver.url}/retry"
    assert retry["next_attempt_at"] > retry["created_at"]
    parked = by_subscriber[f"Subscription/{ids['park']}"][0]
    assert parked["status"] == "parked" and parked["last_status"] == 400
    assert parked["last_error"].startswith("HTTP 400")
    behind = [by_subscriber[f"Subscription/{ids[name]}"][1] for name in ("retry", "park")]
    assert [(m["status"], m["attempts"], m["retrying"]) for m in behind] == [
        ("pending", 0, False)] * 2
    (later,) = by_subscriber[f"Subscription/{ids['later']}"]
    assert later["status"] == "pending" and later["retrying"] is False
    assert later["attempts"] == 0 and later["last_error"] is None
    assert listing["counts"]["parked"] == 1
    assert listing["counts"]["pending"] == len(listing["messages"]) - 1

    only_parked = client.get("/admin/outbox?status=parked",
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).get_json()
    assert [m["pk"] for m in only_parked["messages"]] == [parked["pk"]]


# -- the command line -------------------------------------------------------------------------

def test_cli_outbox_list_and_replay(make_app: Callable[..., Flask], receiver: Receiver) -> None:
    flask_app = make_app()
    ids = _pending_retrying_parked(flask_app, receiver)
    runner = flask_app.test_cli_runner()

    listed = runner.invoke(main, ["outbox", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "parked=1 pending=4"
    parked = [line for line in lines if " parked " in line]
    assert len(parked) == 1 and f"{receiver.url}/park" in parked[0]
    assert "last=400 HTTP 400" in parked[0]
    retrying = [line for line in lines if "(retrying)" in line]
    assert len(retrying) == 1 and f"{receiver.url}/retry" in retrying[0]
    assert "attempts=1" in retrying[0] and "last=503" in retrying[0]
    pk = int(parked[0].split()[0].lstrip("#"))

    only_parked = runner.invoke(main, ["outbox", "list", "--status", "parked"])
    assert [line.split()[0] for line in only_parked.output.splitlines()[1:]] == [f"#{pk}"]

    refused = runner.invoke(main, ["outbox", "replay"])
    assert refused.exit_code != 0 and "--all" in refused.output

    receiver.by_path = {}
    replayed = runner.invoke(main, ["outbox", "replay", str(pk)])
    assert replayed.exit_code == 0 and "1 parked messages queued again" in replayed.output
    assert runner.invoke(main, ["outbox", "replay", "--all"]).output.startswith("0 parked")

    handled = runner.invoke(main, ["worker", "--once"])
    assert handled.exit_code == 0, handled.output
    delivered = receiver.take()
    # The replayed message, then the one it was holding back; the 503 one still waits a
    # minute, and the version behind it waits too.
    assert sorted(r.path for r in delivered) == ["/later", "/park", "/park"]
    assert body(read(flask_app.test_client(), "Subscription", ids["park"]))["status"] == "active"
    after = runner.invoke(main, ["outbox", "list", "--status", "parked"])
    assert after.output.splitlines()[1:] == []


# -- defects found while writing these tests (fixed: regression tests) -----------------------

def test_a_criteria_value_the_search_refuses_is_refused_on_create(
        hooks: FlaskClient, doctors: dict[str, str]) -> None:
    response = send(hooks, "POST", "Subscription", subscription(
        "Appointment?date=ge2026-13-45", "https://agenda.example/h"))
    if response.status_code == 201:
        # What happens today: appointments can no longer be written at all.
        written = send(hooks, "POST", "Appointment", appointment(doctors["doctor"]))
        assert written.status_code == 201, body(written)
    outcome = assert_outcome(response, 422)
    assert "Subscription.criteria" in expressions(outcome)


def test_no_notification_after_the_subscription_end(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    create(hooks, subscription("Appointment?actor=Practitioner/123", f"{receiver.url}/hook",
                               end="2020-01-01T00:00:00Z"))
    create(hooks, appointment(doctors["doctor"]))
    deliver(hook_app)
    assert receiver.take() == []


def test_an_endpoint_with_a_query_string_keeps_it(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    create(hooks, subscription("Appointment?actor=Practitioner/123",
                               f"{receiver.url}/fhir?tenant=7"))
    booked = create(hooks, appointment(doctors["doctor"]))
    deliver(hook_app)
    assert [r.path for r in receiver.take()] == [f"/fhir/Appointment/{booked['id']}?tenant=7"]


def test_a_header_that_cannot_be_sent_is_refused(hooks: FlaskClient) -> None:
    response = send(hooks, "POST", "Subscription", subscription(
        "Patient?family=durand", "https://agenda.example/h",
        headers=["X-Agenda: a\r\nX-Injected: b"]))
    assert_outcome(response, 422)


def test_nothing_is_sent_for_a_subscription_deleted_before_delivery(
        hook_app: Flask, hooks: FlaskClient, receiver: Receiver, doctors: dict[str, str]) -> None:
    created = create(hooks, subscription("Appointment?actor=Practitioner/123",
                                         f"{receiver.url}/hook"))
    create(hooks, appointment(doctors["doctor"]))
    send(hooks, "DELETE", f"Subscription/{created['id']}")
    deliver(hook_app)
    assert receiver.take() == []


def test_admin_outbox_with_a_bad_limit_is_a_client_error(make_app: Callable[..., Flask]) -> None:
    client = make_app(admin_token=ADMIN_TOKEN).test_client()
    response = client.get("/admin/outbox?limit=many",
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 400


# -- defects found after the first version (each was a strict xfail until fixed) ---------------

@pytest.mark.parametrize("endpoint", ["http://", "https:///hook"])
def test_an_endpoint_without_a_host_is_refused(hooks: FlaskClient, endpoint: str) -> None:
    response = send(hooks, "POST", "Subscription",
                    subscription("Patient?family=durand", endpoint))
    outcome = assert_outcome(response, 422)
    assert "Subscription.channel.endpoint" in expressions(outcome)


def test_changes_made_while_in_error_are_notified_after_recovery(
        make_app: Callable[..., Flask], receiver: Receiver) -> None:
    hook_app = make_app(subscription_error_threshold=1, outbox_base_delay_seconds=0.0)
    client = hook_app.test_client()
    created = create(client, subscription("Patient?family=durand", f"{receiver.url}/hook"))
    first = create(client, {"resourceType": "Patient", "name": [{"family": "Durand"}]})
    receiver.status = 500
    worker = Worker(state_of(hook_app))
    try:
        assert worker.step()
    finally:
        worker.delivery.close()
    assert body(read(client, "Subscription", created["id"]))["status"] == "error"
    second = create(client, {"resourceType": "Patient", "name": [{"family": "Durand"}]})
    receiver.status = 200
    receiver.take()
    deliver(hook_app)
    assert body(read(client, "Subscription", created["id"]))["status"] == "active"
    assert sorted(r.path for r in receiver.take()) == sorted(
        f"/hook/Patient/{p['id']}" for p in (first, second))


def test_a_refused_notification_parks_and_puts_the_subscription_in_error_at_once(
        make_app: Callable[..., Flask], receiver: Receiver) -> None:
    hook_app = make_app(subscription_error_threshold=5)
    client = hook_app.test_client()
    created = create(client, subscription("Patient?family=durand", f"{receiver.url}/hook"))
    create(client, {"resourceType": "Patient", "name": [{"family": "Durand"}]})
    receiver.status = 403
    assert deliver(hook_app) == 1
    assert [row.status for row in outbox_rows(hook_app.extensions["agenda"].engine)] == [
        "parked"]
    stored = body(read(client, "Subscription", created["id"]))
    assert stored["status"] == "error"
    assert "HTTP 403" in stored["error"] and receiver.url in stored["error"]


def test_a_request_that_cannot_be_sent_is_parked_not_retried() -> None:
    from datetime import datetime

    from app.subscriptions.channels.rest_hook import RestHookChannel
    from app.subscriptions.delivery import Delivery
    from app.subscriptions.outbox import Message

    delivery = Delivery(Settings.from_env(), [RestHookChannel])
    try:
        for url, headers in (("http://", {}), ("http://agenda.example/h", {"": "x"}),
                             ("http://agenda.example/h", {"X-Token": " leading space"})):
            message = Message(1, "Subscription/1", "k", "Patient", "1", 1, "POST", url,
                              headers, None, None, None, 1, datetime(2026, 1, 1))
            result = delivery.send(message)
            assert (result.ok, result.retryable) == (False, False), (url, headers, result)
    finally:
        delivery.close()


def test_claiming_reads_only_open_outbox_rows(engine: Engine, hook_app: Flask) -> None:
    """With thousands of delivered rows and a few open ones, the claim query reaches the
    open rows through indexes (their number used to set the cost of every claim)."""
    from sqlalchemy import insert, text

    from app.clock import utc_now
    from app.subscriptions.outbox import _due

    now = utc_now()
    rows = [{"subscriber": "sas", "ordering_key": f"Appointment/{n % 500}",
             "resource_type": "Appointment", "resource_id": str(n % 500), "version": n,
             "method": "PUT", "url": "https://sas.example/fhir/Appointment", "headers": "{}",
             "status": "delivered" if n < 5000 else "pending", "attempts": 1,
             "next_attempt_at": now, "created_at": now} for n in range(5010)]
    with engine.begin() as conn:
        conn.execute(insert(outbox), rows)
        conn.execute(text("ANALYZE"))
    literal_now = now.replace(microsecond=0).isoformat(sep=" ")
    query = _due(literal_now).limit(1)  # type: ignore[arg-type]
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        plan = "\n".join(str(row[-1]) for row in conn.execute(text(explain + sql)))
    full_scans = [line for line in plan.splitlines()
                  if line.strip() == "SCAN outbox" or "Seq Scan on outbox" in line]
    assert not full_scans, plan
    assert "ix_outbox_open_key" in plan, plan


def test_receiver_sanity(receiver: Receiver) -> None:
    """The receiver itself answers and records, so that an empty list means nothing came."""
    import urllib.request

    started = time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(f"{receiver.url}/x", data=b"{}",
                                                       method="PUT"), timeout=5) as answer:
        assert answer.status == 200
    assert time.monotonic() - started < 5
    (got,) = receiver.take()
    assert (got.method, got.path, got.body) == ("PUT", "/x", b"{}")
