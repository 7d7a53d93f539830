"""The agenda side of the SAS notification tests: an app wired to a `SasReceiver`, builders of
doctors, regulators and appointments written through the FHIR API, worker passes, the outbox
as rows, and the checks every FrAppointmentSAS body must pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from flask import Flask
from sqlalchemy import Engine, select

from app import create_app
from app.config import Settings
from app.sas.appointments import technical_id
from app.state import state_of
from app.storage.maintenance import truncate_all
from app.storage.schema import outbox
from app.subscriptions.worker import Worker
from app.validation.profiles import default_profiles
from tests.support.live_server import _die_with_parent
from tests.support.pki import Pki
from tests.support.receiver import SasReceiver

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_URL = "http://localhost/fhir"
FHIR_JSON = "application/fhir+json"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
SAS_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
TYPES = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
REGUL_PROFILE = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
OPERATOR = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
SAS_PROFILE = "http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS"
APPOINTMENT_SYSTEM = "https://fhir-agenda.org/identifiers/appointment"
DOCTOR_RPPS = "10001234567"  # stored unprefixed: SAS must get 810001234567
OTHER_RPPS = "10009876543"
REGULATOR_TECH_ID = "b6e39355-8a61-4556-b340-36f7b95fec6a"
REGULATOR_RPPS = "10002673899"
FIRST_START = datetime.fromisoformat("2026-11-02T09:00:00+01:00")
# requests prefers these variables to a Session's own `verify` (see the report of
# test_sas_ca_bundle_wins_over_requests_ca_bundle): the tests unset them around the app.
CA_OVERRIDES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

Resource = dict[str, Any]


def prefixed(rpps: str) -> str:
    return "8" + rpps


# -- the app ------------------------------------------------------------------------------------

def sas_settings(database_url: str, receiver: SasReceiver, pki: Pki, **overrides: Any
                 ) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "fhir_base_url": BASE_URL, "secret_key": "tests",
        "sas_base_url": receiver.base_url, "sas_client_cert": str(pki.client_cert),
        "sas_client_key": str(pki.client_key), "sas_ca_bundle": str(pki.ca_cert),
        "outbound_timeout_seconds": 2.0, "outbox_base_delay_seconds": 0.05,
        "outbox_max_delay_seconds": 0.2, "worker_poll_seconds": 0.05,
        "admin_token": "admin-secret"}
    values.update(overrides)
    return Settings.from_env(**values)


def sas_app(engine: Engine, database_url: str, receiver: SasReceiver, pki: Pki,
            **overrides: Any) -> Flask:
    """The app on the test database, emptied first, notifying `receiver` as SAS."""
    truncate_all(engine)
    app = create_app(sas_settings(database_url, receiver, pki, **overrides), engine=engine)
    app.config["TESTING"] = True
    return app


def worker_env(database_url: str, receiver: SasReceiver, pki: Pki, **extra: str
               ) -> dict[str, str]:
    """Environment of a `fhir-agenda worker` subprocess aimed at `receiver`."""
    env = {k: v for k, v in os.environ.items() if k not in CA_OVERRIDES}
    env.update({
        "DATABASE_URL": database_url, "FHIR_BASE_URL": BASE_URL, "SECRET_KEY": "tests",
        "SAS_BASE_URL": receiver.base_url, "SAS_CLIENT_CERT": str(pki.client_cert),
        "SAS_CLIENT_KEY": str(pki.client_key), "SAS_CA_BUNDLE": str(pki.ca_cert),
        "OUTBOUND_TIMEOUT_SECONDS": "2", "OUTBOX_BASE_DELAY_SECONDS": "0.05",
        "OUTBOX_MAX_DELAY_SECONDS": "0.2", "WORKER_POLL_SECONDS": "0.05"})
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "fhir-agenda"), "worker", *args]
    with open(log, "ab") as out:
        # Dies with the test process, even killed: no worker outlives a crashed run (Linux).
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def stop_worker(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        return process.wait()


# -- writing through the FHIR API ---------------------------------------------------------------

def at(minutes: int) -> str:
    return (FIRST_START + timedelta(minutes=minutes)).isoformat()


class Agenda:
    """The FHIR API of the app, as an agenda (or SAS, for regulators) would use it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()

    def send(self, method: str, path: str, resource: Resource | None = None) -> Any:
        return self.client.open(f"/fhir/{path}", method=method,
                                data=json.dumps(resource) if resource is not None else None,
                                headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})

    def write(self, method: str, path: str, resource: Resource | None = None) -> Resource:
        response = self.send(method, path, resource)
        assert response.status_code in (200, 201), response.get_data(as_text=True)
        return json.loads(response.data) if response.data else {}

    def doctor(self, rpps: str = DOCTOR_RPPS, family: str = "Martin") -> str:
        return self.write("POST", "Practitioner", {
            "resourceType": "Practitioner", "active": True,
            "identifier": [{"system": IDNPS, "value": rpps}],
            "name": [{"family": family, "given": ["Claire"], "prefix": ["Dr"]}]})["id"]

    def regulator(self, tech_id: str = REGULATOR_TECH_ID, *, active: bool = True,
                  email: str = "sebastien.loridon@test.com") -> str:
        return self.write("PUT", regulator_url(SAS_SYSTEM, tech_id),
                          regulator(technical(tech_id), email, active=active))["id"]

    def book(self, doctors: list[str], operator: str | None, *, minutes: int = 0,
             status: str = "booked", role: bool = False) -> Resource:
        kind = "PractitionerRole" if role else "Practitioner"
        appointment: Resource = {
            "resourceType": "Appointment", "status": status, "start": at(minutes),
            "end": at(minutes + 20), "created": "2026-10-30T10:00:00+01:00",
            "participant": [{"actor": {"reference": f"{kind}/{d}"}, "status": "accepted"}
                            for d in doctors]}
        if operator is not None:
            appointment["extension"] = [{
                "url": OPERATOR, "valueReference": {"reference": f"Practitioner/{operator}"}}]
        return self.write("POST", "Appointment", appointment)

    def change(self, appointment: Resource, **changes: Any) -> Resource:
        updated = {k: v for k, v in appointment.items() if k != "meta"}
        if "minutes" in changes:
            minutes = changes.pop("minutes")
            updated.update(start=at(minutes), end=at(minutes + 20))
        if "doctors" in changes:
            updated["participant"] = [{"actor": {"reference": f"Practitioner/{d}"},
                                       "status": "accepted"} for d in changes.pop("doctors")]
        updated.update(changes)
        return self.write("PUT", f"Appointment/{appointment['id']}", updated)

    def role(self, doctor: str) -> str:
        return self.write("POST", "PractitionerRole", {
            "resourceType": "PractitionerRole", "active": True,
            "practitioner": {"reference": f"Practitioner/{doctor}"}})["id"]


def technical(value: str = REGULATOR_TECH_ID) -> Resource:
    return {"type": {"coding": [{"system": TYPES, "code": "INTRN"}]}, "system": SAS_SYSTEM,
            "value": value}


def national(value: str = REGULATOR_RPPS) -> Resource:
    return {"type": {"coding": [{"system": TYPES, "code": "IDNPS"}]}, "system": IDNPS,
            "value": value}


def regulator(identifier: Resource, email: str = "sebastien.loridon@test.com", *,
              active: bool = True) -> Resource:
    return {"resourceType": "Practitioner", "meta": {"source": SAS_SYSTEM,
                                                     "profile": [REGUL_PROFILE]},
            "identifier": [identifier], "active": active,
            "name": [{"family": "Loridon", "given": ["Sébastien"]}],
            "telecom": [{"system": "email", "value": email}]}


def regulator_url(system: str, value: str) -> str:
    return f"Practitioner?identifier={quote(f'{system}|{value}')}"


def sas_id(appointment: Resource) -> str:
    """The technical identifier SAS knows the appointment by."""
    return technical_id(appointment["id"], BASE_URL)


def sas_url_query(appointment: Resource) -> str:
    return f"{APPOINTMENT_SYSTEM}|{sas_id(appointment)}"


# -- the worker and the outbox ------------------------------------------------------------------

def outbox_rows(engine: Engine) -> list[Resource]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox).order_by(outbox.c.pk)).all()
    return [dict(row._mapping) for row in rows]


def unsettled(engine: Engine) -> list[Resource]:
    """Messages a worker could still deliver: open and not stuck behind a parked one."""
    rows = outbox_rows(engine)
    parked = {r["ordering_key"] for r in rows if r["status"] == "parked"}
    return [r for r in rows if r["status"] in ("pending", "delivering")
            and r["ordering_key"] not in parked]


def drain(app: Flask, timeout: float = 20.0, *,
          until: Callable[[], bool] | None = None) -> int:
    """Worker passes (`run(once=True)`) until nothing more can be delivered; the count sent."""
    state = state_of(app)
    done = until or (lambda: not unsettled(state.engine))
    deadline = time.monotonic() + timeout
    handled = 0
    while True:
        handled += Worker(state, rng=random.Random(7)).run(once=True)
        if done():
            return handled
        if time.monotonic() > deadline:
            raise AssertionError(f"the outbox did not settle within {timeout}s: "
                                 f"{unsettled(state.engine)}")
        time.sleep(0.02)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# -- checks -------------------------------------------------------------------------------------

def assert_sas_body(body: Resource, appointment: Resource, *, status: str,
                    doctors: list[str], operator: tuple[str, str, str] | None = None,
                    minutes: int | None = None) -> None:
    """A valid FrAppointmentSAS telling SAS about `appointment`."""
    assert default_profiles().errors(body) == [], default_profiles().errors(body)
    assert body["resourceType"] == "Appointment"
    assert body["meta"]["profile"] == [SAS_PROFILE]
    assert body["identifier"] == [{"system": APPOINTMENT_SYSTEM, "value": sas_id(appointment)}]
    assert body["status"] == status
    code, system, value = operator or ("INTRN", SAS_SYSTEM, REGULATOR_TECH_ID)
    (extension,) = body["extension"]
    assert extension["url"] == OPERATOR
    assert extension["valueReference"] == {"identifier": {
        "type": {"coding": [{"system": TYPES, "code": code}]}, "system": system, "value": value}}
    assert body["participant"] == [{"actor": {"identifier": {
        "type": {"coding": [{"system": TYPES, "code": "IDNPS"}]}, "system": IDNPS,
        "value": prefixed(rpps)}}, "status": "accepted"} for rpps in doctors]
    if minutes is not None:
        assert (body["start"], body["end"]) == (at(minutes), at(minutes + 20))


def stored_body(row: Resource) -> Resource:
    return orjson.loads(row["body"])
