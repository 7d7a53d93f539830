"""Authorisation (app/auth): who may call what once callers are authenticated.

Authentication itself (certificates, tokens) has its own tests (test_mtls, test_oauth);
here principals are given to the gate directly so that every rule of the policy can be
exercised: scopes, the SAS-only interactions, restricted clients' compartments, refusals
audited, and the development profile.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from app import create_app
from app.auth.principal import CLIENT, Principal, sas_principal
from app.auth.scopes import Scopes
from app.config import Settings
from tests.factories import FHIR_JSON, body, bundle, entry
from tests.sas_data import MARTIN, agenda, load, sas_url
from tests.support.principals import production_app
from tests.test_regulators import national, regulator

Resource = dict[str, Any]

PRINCIPALS = {
    "sas": sas_principal("CN=sas.sante.fr,OU=SAS"),
    "reader": Principal(CLIENT, "reader", Scopes.parse("system/Slot.read system/Schedule.rs")),
    "everything": Principal(CLIENT, "everything", Scopes.parse("system/*.*")),
    "schedules": Principal(CLIENT, "schedules", Scopes.parse("system/Schedule.*")),
    "slot-updater": Principal(CLIENT, "slot-updater", Scopes.parse("system/Slot.ru")),
    # An agenda software managing Dr Martin's agenda only.
    "martin-only": Principal(CLIENT, "martin-only", Scopes.parse("system/*.*"),
                             practitioners=frozenset({"martin"})),
    # … and one managing every practitioner of the SIRET organisation (Blanc, Noël).
    "org-siret": Principal(CLIENT, "org-siret", Scopes.parse("system/*.*"),
                           organizations=frozenset({"org-siret"})),
}


@pytest.fixture
def secured(app: Flask, engine: Engine, database_url: str,
            monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The production profile on the `app` database, loaded with the SAS agenda and two
    appointments (Dr Martin with patient p-martin, Dr Blanc with patient p-blanc)."""
    setup = app.test_client()
    load(setup, agenda() + [
        {"resourceType": "Patient", "id": "p-martin", "name": [{"family": "Durand"}]},
        {"resourceType": "Patient", "id": "p-blanc", "name": [{"family": "Lemoine"}]},
        _appointment("a-martin", "Practitioner/martin", "p-martin", "m-a-busy"),
        _appointment("a-blanc", "PractitionerRole/role-blanc", "p-blanc", "blanc-1"),
    ])
    return production_app(engine, database_url, monkeypatch, PRINCIPALS)


def _appointment(appointment_id: str, actor: str, patient_id: str, slot_id: str) -> Resource:
    # At its slot's time: a practitioner is in one appointment at a time.
    (start, end), = [(r["start"], r["end"]) for r in agenda() if r["id"] == slot_id]
    return {"resourceType": "Appointment", "id": appointment_id, "status": "booked",
            "start": start, "end": end,
            "slot": [{"reference": f"Slot/{slot_id}"}],
            "participant": [{"actor": {"reference": actor}, "status": "accepted"},
                            {"actor": {"reference": f"Patient/{patient_id}"},
                             "status": "accepted"}]}


def call(app: Flask, who: str | None, method: str, path: str,
         resource: Any = None) -> Any:
    headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON}
    if who is not None:
        headers["Authorization"] = f"Bearer {who}"
    return app.test_client().open(path, method=method, json=resource, headers=headers)


def refused(response: Any, status: int) -> Resource:
    outcome = body(response)
    assert response.status_code == status, outcome
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == {401: "login", 403: "forbidden"}[status]
    return outcome


def ids(response: Any, mode: str = "match") -> set[str]:
    result = body(response)
    assert response.status_code == 200, result
    return {e["resource"]["id"] for e in result.get("entry", []) if e["search"]["mode"] == mode}


def audited_refusals(app: Flask) -> list[Resource]:
    result = body(call(app, "everything", "GET", "/fhir/AuditEvent?outcome=4&_count=100"))
    return [e["resource"] for e in result.get("entry", [])]


# -- authentication required --------------------------------------------------------------------

def test_no_credentials_is_401_with_a_bearer_challenge_but_metadata_stays_public(
        secured: Flask) -> None:
    response = call(secured, None, "GET", "/fhir/Slot")
    refused(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert call(secured, None, "GET", "/fhir/metadata").status_code == 200
    unknown = call(secured, "nobody", "GET", "/fhir/Slot")
    refused(unknown, 401)


def test_refusals_are_audited_with_the_caller_and_what_was_attempted(secured: Flask) -> None:
    call(secured, None, "GET", "/fhir/Appointment/a-martin")
    call(secured, "reader", "DELETE", "/fhir/Slot/blanc-1")
    events = audited_refusals(secured)
    assert len(events) == 2
    by_action = {e["action"]: e for e in events}
    anonymous, reader = by_action["R"], by_action["D"]
    assert anonymous["agent"][0]["name"].startswith("unauthenticated ")
    assert anonymous["entity"][0]["what"]["reference"] == "Appointment/a-martin"
    assert "401" in anonymous["outcomeDesc"]
    assert reader["agent"][0]["name"] == "oauth-client reader"
    assert reader["entity"][0]["what"]["reference"] == "Slot/blanc-1"
    assert "403" in reader["outcomeDesc"]


def test_audit_events_name_the_authenticated_caller(secured: Flask) -> None:
    created = body(call(secured, "sas", "POST", "/fhir/Practitioner", regulator(national())))
    call(secured, "martin-only", "GET", "/fhir/Appointment/a-martin")
    events = body(call(secured, "everything", "GET",
                       "/fhir/AuditEvent?outcome=0&agent-name=sas-certificate"))["entry"]
    assert [e["resource"]["entity"][0]["what"]["reference"] for e in events] == [
        f"Practitioner/{created['id']}/_history/1"]
    (read,) = body(call(secured, "everything", "GET",
                        "/fhir/AuditEvent?agent-name=oauth-client%20martin-only"))["entry"]
    assert read["resource"]["action"] == "R" and read["resource"]["outcome"] == "0"
    assert read["resource"]["entity"][0]["what"]["reference"].startswith(
        "Appointment/a-martin/_history/")


# -- scopes -------------------------------------------------------------------------------------

def test_scopes_limit_types_and_actions(secured: Flask) -> None:
    assert "m-a-public" in ids(call(secured, "reader", "GET", "/fhir/Slot?schedule=sch-martin-a"))
    assert body(call(secured, "reader", "GET", "/fhir/Slot/blanc-1"))["id"] == "blanc-1"
    refused(call(secured, "reader", "GET", "/fhir/Patient/p-martin"), 403)
    refused(call(secured, "reader", "GET", "/fhir/Appointment"), 403)
    refused(call(secured, "reader", "GET", "/fhir/_history"), 403)
    response = call(secured, "reader", "POST", "/fhir/Slot",
                    {"resourceType": "Slot", "schedule": {"reference": "Schedule/sch-blanc"},
                     "status": "free", "start": "2030-03-10T10:00:00+01:00",
                     "end": "2030-03-10T10:15:00+01:00"})
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    refused(response, 403)
    assert ids(call(secured, "everything", "GET", "/fhir/Slot?start=ge2030-03-10T10:00:00%2B01:00"
                    "&start=le2030-03-10T10:00:00%2B01:00")) == set()


def test_an_update_that_creates_needs_the_create_scope(secured: Flask) -> None:
    existing = body(call(secured, "slot-updater", "GET", "/fhir/Slot/blanc-1"))
    changed = call(secured, "slot-updater", "PUT", "/fhir/Slot/blanc-1",
                   {**existing, "comment": "Rappeler avant"})
    assert changed.status_code == 200 and body(changed)["comment"] == "Rappeler avant"
    new = {**existing, "id": "slot-new"}
    refused(call(secured, "slot-updater", "PUT", "/fhir/Slot/slot-new", new), 403)
    assert call(secured, "everything", "GET", "/fhir/Slot/slot-new").status_code == 404


def test_includes_the_scopes_do_not_cover_are_left_out(secured: Flask) -> None:
    response = call(secured, "reader", "GET",
                    "/fhir/Slot?_id=blanc-1&_include=Slot:schedule"
                    "&_include:iterate=Schedule:actor")
    assert ids(response, "include") == {"sch-blanc"}  # no Practitioner/PractitionerRole


def test_a_transaction_with_one_forbidden_entry_writes_nothing(secured: Flask) -> None:
    transaction = bundle("transaction",
                         entry("PUT", "Schedule/sch-new", {"resourceType": "Schedule",
                                                           "id": "sch-new", "active": True,
                                                           "actor": [{"reference":
                                                                      "Practitioner/martin"}]}),
                         entry("DELETE", "Patient/p-martin"))
    refused(call(secured, "schedules", "POST", "/fhir", transaction), 403)
    assert call(secured, "everything", "GET", "/fhir/Schedule/sch-new").status_code == 404
    assert call(secured, "everything", "GET", "/fhir/Patient/p-martin").status_code == 200


# -- the SAS-only interactions ------------------------------------------------------------------

def test_the_sas_slot_search_is_reserved_to_sas(secured: Flask) -> None:
    url = sas_url(MARTIN)
    answer = body(call(secured, "sas", "GET", url))
    assert answer["total"] == 4 and answer["meta"]["profile"]
    outcome = refused(call(secured, "everything", "GET", url), 403)
    assert "SAS" in outcome["issue"][0]["diagnostics"]
    refused(call(secured, None, "GET", url), 401)


def test_regulator_accounts_are_written_by_sas_only_and_sas_writes_nothing_else(
        secured: Flask) -> None:
    account = regulator(national())
    refused(call(secured, "everything", "POST", "/fhir/Practitioner", account), 403)
    created = call(secured, "sas", "POST", "/fhir/Practitioner", account)
    assert created.status_code == 201, body(created)
    assert body(created)["meta"]["source"] == account["meta"]["source"]
    # SAS's certificate subject is the author of the version.
    history = body(call(secured, "everything", "GET",
                        f"/fhir/Practitioner/{body(created)['id']}/_history"))
    assert "sas-certificate CN=sas.sante.fr,OU=SAS" in str(history["entry"][0])
    doctor = {"resourceType": "Practitioner", "active": True, "name": [{"family": "Vidal"}]}
    refused(call(secured, "sas", "POST", "/fhir/Practitioner", doctor), 403)
    refused(call(secured, "sas", "DELETE", "/fhir/Practitioner/martin"), 403)
    refused(call(secured, "sas", "GET", "/fhir/Appointment"), 403)


# -- restricted clients -------------------------------------------------------------------------

def test_a_client_restricted_to_one_practitioner_sees_only_that_agenda(secured: Flask) -> None:
    assert body(call(secured, "martin-only", "GET", "/fhir/Appointment/a-martin"))["id"] == (
        "a-martin")
    refused(call(secured, "martin-only", "GET", "/fhir/Appointment/a-blanc"), 403)
    assert ids(call(secured, "martin-only", "GET", "/fhir/Appointment")) == {"a-martin"}
    assert ids(call(secured, "martin-only", "GET", "/fhir/Patient")) == {"p-martin"}
    refused(call(secured, "martin-only", "GET", "/fhir/Patient/p-blanc"), 403)
    assert ids(call(secured, "martin-only", "GET", "/fhir/Schedule")) == {"sch-martin-a",
                                                                          "sch-martin-b"}
    slots = ids(call(secured, "martin-only", "GET", "/fhir/Slot"))
    assert slots and all(s.startswith("m-") for s in slots)
    # Included resources outside the compartment are dropped too.
    response = call(secured, "martin-only", "GET",
                    "/fhir/Patient?_revinclude=Appointment:patient")
    assert ids(response, "include") == {"a-martin"}
    # Directory data stays readable.
    assert body(call(secured, "martin-only", "GET", "/fhir/Practitioner/blanc"))["id"] == "blanc"
    refused(call(secured, "martin-only", "GET", "/fhir/Appointment/_history"), 403)
    # The audit trail spans every agenda.
    refused(call(secured, "martin-only", "GET", "/fhir/AuditEvent"), 403)
    response = call(secured, "martin-only", "GET",
                    "/fhir/Appointment?_revinclude=AuditEvent:entity")
    assert ids(response) == {"a-martin"} and ids(response, "include") == set()


def test_a_restricted_client_writes_only_inside_its_agendas(secured: Flask) -> None:
    mine = _appointment("a-new", "Practitioner/martin", "p-martin", "m-a-pro-snp")
    assert call(secured, "martin-only", "PUT", "/fhir/Appointment/a-new", mine).status_code == 201
    theirs = _appointment("a-other", "PractitionerRole/role-blanc", "p-blanc", "blanc-1")
    refused(call(secured, "martin-only", "PUT", "/fhir/Appointment/a-other", theirs), 403)
    # Moving one of its appointments to another practitioner is taking it outside too.
    moved = _appointment("a-martin", "Practitioner/blanc", "p-martin", "m-a-busy")
    refused(call(secured, "martin-only", "PUT", "/fhir/Appointment/a-martin", moved), 403)
    refused(call(secured, "martin-only", "DELETE", "/fhir/Slot/blanc-1"), 403)
    # Even an update that changes nothing is refused outside the compartment.
    same = body(call(secured, "everything", "GET", "/fhir/Slot/blanc-1"))
    refused(call(secured, "martin-only", "PUT", "/fhir/Slot/blanc-1", same), 403)
    refused(call(secured, "reader", "PUT", "/fhir/Slot/blanc-1", same), 403)
    assert call(secured, "martin-only", "DELETE", "/fhir/Slot/m-a-busy").status_code == 200
    # A new patient belongs to nobody yet; an existing one only to its practitioners.
    new = {"resourceType": "Patient", "name": [{"family": "Nouveau"}]}
    assert call(secured, "martin-only", "POST", "/fhir/Patient", new).status_code == 201
    refused(call(secured, "martin-only", "PUT", "/fhir/Patient/p-blanc",
                 {"resourceType": "Patient", "id": "p-blanc", "name": [{"family": "X"}]}), 403)
    assert call(secured, "everything", "GET", "/fhir/Appointment/a-other").status_code == 404


def test_a_client_restricted_to_an_organisation_manages_its_practice_places(
        secured: Flask) -> None:
    # org-siret holds role-blanc and role-noel.
    assert ids(call(secured, "org-siret", "GET", "/fhir/Appointment")) == {"a-blanc"}
    assert ids(call(secured, "org-siret", "GET", "/fhir/Schedule")) == {"sch-blanc", "sch-noel"}
    refused(call(secured, "org-siret", "GET", "/fhir/Appointment/a-martin"), 403)


# -- development profile -----------------------------------------------------------------------

def test_the_development_profile_is_explicit_and_loud(engine: Engine, database_url: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.auth.gate"):
        development = create_app(Settings.from_env(database_url=database_url,
                                                   security_profile="development"),
                                 engine=engine)
    assert "SECURITY_PROFILE=development" in caplog.text
    assert development.test_client().get("/fhir/Slot").status_code == 200
    with pytest.raises(ValueError, match="SECURITY_PROFILE"):
        Settings.from_env(security_profile="off")
    assert Settings().security_profile == "production"
