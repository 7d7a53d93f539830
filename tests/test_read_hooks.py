"""The read hooks (app/storage/hooks.py) treat every way of reading alike: a REST read or
search, a batch entry and a transaction entry leave the same disclosure AuditEvent and meet
the same access checks. Both databases."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.factories import body
from tests.test_authorization import call, secured  # noqa: F401  (fixture)

Resource = dict[str, Any]


def _disclosures(client: Any) -> list[Resource]:
    bundle = body(client.get("/fhir/AuditEvent?_count=100&subtype=read,search-type"))
    return [e["resource"] for e in bundle.get("entry", [])]


def _bundle(kind: str, *urls: str) -> Resource:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"request": {"method": "GET", "url": url}} for url in urls]}


@pytest.fixture
def patient(client: Any) -> str:
    created = body(client.post("/fhir/Patient", json={
        "resourceType": "Patient", "name": [{"family": "Durand", "given": ["Paul"]}]}))
    return str(created["id"])


@pytest.mark.parametrize("how", ["rest", "batch", "transaction"])
def test_a_patient_read_leaves_one_audit_event_however_it_is_asked(
        client: Any, patient: str, how: str) -> None:
    if how == "rest":
        assert client.get(f"/fhir/Patient/{patient}").status_code == 200
    else:
        answer = client.post("/fhir", json=_bundle(how, f"Patient/{patient}"))
        assert answer.status_code == 200
        assert body(answer)["entry"][0]["response"]["status"].startswith("200")
    (event,) = _disclosures(client)
    assert event["subtype"][0]["code"] == "read"
    assert event["entity"][0]["what"]["reference"] == f"Patient/{patient}/_history/1"


@pytest.mark.parametrize("how", ["rest", "batch", "transaction"])
def test_a_patient_search_leaves_one_audit_event_however_it_is_asked(
        client: Any, patient: str, how: str) -> None:
    if how == "rest":
        assert client.get("/fhir/Patient?family=durand").status_code == 200
    else:
        answer = client.post("/fhir", json=_bundle(how, "Patient?family=durand"))
        assert body(answer)["entry"][0]["resource"]["total"] == 1
    (event,) = _disclosures(client)
    assert event["subtype"][0]["code"] == "search-type"
    assert event["entity"][0]["what"]["reference"] == f"Patient/{patient}/_history/1"


def test_reads_without_patient_data_leave_no_audit_event(client: Any, patient: str) -> None:
    client.post("/fhir", json=_bundle("batch", "Practitioner?name=x", "Slot?status=free"))
    assert _disclosures(client) == []


def test_batch_reads_meet_the_same_access_checks_as_rest_reads(
        secured: Flask) -> None:  # noqa: F811
    # martin-only manages Dr Martin's agenda: Blanc's patient is outside it.
    rest = call(secured, "martin-only", "GET", "/fhir/Patient/p-blanc")
    assert rest.status_code == 403
    answer = call(secured, "martin-only", "POST", "/fhir",
                  _bundle("batch", "Patient/p-blanc", "Patient/p-martin",
                          "Appointment?status=booked"))
    entries = body(answer)["entry"]
    assert entries[0]["response"]["status"].startswith("403")
    assert entries[0]["response"]["outcome"]["issue"][0]["code"] == "forbidden"
    assert entries[1]["response"]["status"].startswith("200")
    # The search is narrowed to the compartment, as over REST.
    found = {e["resource"]["id"] for e in entries[2]["resource"].get("entry", [])}
    rest_found = {e["resource"]["id"] for e in body(call(
        secured, "martin-only", "GET", "/fhir/Appointment?status=booked")).get("entry", [])}
    assert found == rest_found == {"a-martin"}


def test_a_transaction_read_outside_the_compartment_refuses_the_whole_transaction(
        secured: Flask) -> None:  # noqa: F811
    answer = call(secured, "martin-only", "POST", "/fhir",
                  _bundle("transaction", "Patient/p-martin", "Patient/p-blanc"))
    assert answer.status_code == 403
    assert body(answer)["resourceType"] == "OperationOutcome"
