"""Audit trail: who did what, when, to which version — in the same transaction as the change."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.factories import body, create, patient, practitioner

AGENT = {"User-Agent": "agenda-editeur/2.1"}


def audits(client: Any, query: str = "") -> list[dict[str, Any]]:
    bundle = body(client.get(f"/fhir/AuditEvent?_count=100&{query}"))
    return [e["resource"] for e in bundle.get("entry", [])]


def test_each_change_is_audited_with_agent_entity_and_version(client: Any) -> None:
    created = body(client.post("/fhir/Practitioner", json=practitioner(), headers=AGENT))
    changed = {**created, "active": False}
    client.put(f"/fhir/Practitioner/{created['id']}", json=changed, headers=AGENT)
    client.delete(f"/fhir/Practitioner/{created['id']}", headers=AGENT)
    events = audits(client, f"entity=Practitioner/{created['id']}&_sort=date")
    assert [(e["subtype"][0]["code"], e["action"]) for e in events] == [
        ("create", "C"), ("update", "U"), ("delete", "D")]
    assert [e["entity"][0]["what"]["reference"] for e in events] == [
        f"Practitioner/{created['id']}/_history/{v}" for v in (1, 2, 3)]
    for event in events:
        assert event["outcome"] == "0"
        assert "agenda-editeur/2.1" in event["agent"][0]["name"]
        assert event["agent"][0]["requestor"] is True
        assert event["agent"][0]["network"]["address"] == "127.0.0.1"
        assert event["recorded"].endswith("Z")


def test_a_refused_write_leaves_no_audit_of_success(client: Any) -> None:
    before = len(audits(client))
    response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                          "entry": [
        {"resource": practitioner(), "request": {"method": "POST", "url": "Practitioner"}},
        {"resource": {"resourceType": "Slot", "status": "free"},
         "request": {"method": "POST", "url": "Slot"}}]})
    assert response.status_code == 422
    assert len(audits(client)) == before
    assert body(client.get("/fhir/Practitioner?_summary=count"))["total"] == 0


def test_reads_of_patient_data_are_audited(client: Any) -> None:
    person = create(client, patient())
    client.get(f"/fhir/Patient/{person['id']}", headers=AGENT)
    client.get("/fhir/Patient?family=Durand", headers=AGENT)
    reads = audits(client, "action=R,E&entity=" + quote(f"Patient/{person['id']}"))
    assert sorted(e["subtype"][0]["code"] for e in reads) == ["read", "search-type"]
    # Reading other data (a practitioner) is not patient data.
    doctor = create(client, practitioner())
    client.get(f"/fhir/Practitioner/{doctor['id']}")
    assert audits(client, "action=R&entity=" + quote(f"Practitioner/{doctor['id']}")) == []


def test_audit_events_are_searchable_by_date_and_agent(client: Any) -> None:
    client.post("/fhir/Patient", json=patient(), headers={"User-Agent": "logiciel-a"})
    client.post("/fhir/Patient", json=patient(), headers={"User-Agent": "logiciel-b"})
    by_agent = audits(client, "agent-name:contains=logiciel-b")
    assert len(by_agent) == 1
    assert len(audits(client, "date=ge2020-01-01&subtype=create")) == 2
    assert audits(client, "date=lt2020-01-01") == []


def test_the_audit_log_stays_out_of_the_system_history(client: Any) -> None:
    create(client, patient())
    history = body(client.get("/fhir/_history"))
    assert {e["resource"]["resourceType"] for e in history["entry"]} == {"Patient"}
