"""INT_R02: SAS manages its regulator accounts as FrPractitionerRegul Practitioners."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
import requests

from app.validation.profiles import default_profiles
from tests.factories import body

SAS = "urn:oid:1.2.250.1.213.3.6"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
TYPES = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
REGUL = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
TECH_ID = "b6e39355-8a61-4556-b340-36f7b95fec6a"
NATIONAL_ID = "810002673899"
SAS_HEADERS = {"Accept": "application/json+fhir", "Content-Type": "application/json+fhir"}

Resource = dict[str, Any]


def technical(value: str = TECH_ID) -> Resource:
    return {"type": {"coding": [{"system": TYPES, "code": "INTRN"}]}, "system": SAS,
            "value": value}


def national(value: str = NATIONAL_ID) -> Resource:
    return {"type": {"coding": [{"system": TYPES, "code": "IDNPS"}]}, "system": IDNPS,
            "value": value}


def regulator(identifier: Resource, email: str = "sebastien.loridon@test.com", *,
              active: bool = True, family: str = "Loridon") -> Resource:
    return {"resourceType": "Practitioner", "meta": {"source": SAS, "profile": [REGUL]},
            "identifier": [identifier], "active": active,
            "name": [{"family": family, "given": ["Sébastien"]}],
            "telecom": [{"system": "email", "value": email}]}


def by_identifier(system: str, value: str) -> str:
    return f"/fhir/Practitioner?identifier={quote(f'{system}|{value}')}"


def send(client: Any, method: str, url: str, resource: Resource) -> Any:
    return client.open(url, method=method, json=resource, headers=SAS_HEADERS)


def found(client: Any, system: str, value: str) -> list[Resource]:
    bundle = body(client.get(by_identifier(system, value)))
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_create_then_read_back(client: Any) -> None:
    response = send(client, "POST", "/fhir/Practitioner", regulator(technical()))
    assert response.status_code == 201
    assert response.headers["Location"].startswith("http://localhost/fhir/Practitioner/")
    (stored,) = found(client, SAS, TECH_ID)
    assert stored["meta"]["source"] == SAS
    assert stored["name"][0]["family"] == "Loridon"
    assert default_profiles().errors(stored) == []


def test_identity_of_an_active_account_cannot_be_reused(client: Any) -> None:
    send(client, "POST", "/fhir/Practitioner", regulator(technical()))
    response = send(client, "POST", "/fhir/Practitioner",
                    regulator(technical(), "autre@test.com"))
    assert response.status_code == 409
    outcome = body(response)
    assert outcome["issue"][0]["code"] == "duplicate"
    assert outcome["issue"][0]["expression"][0].startswith("Practitioner.identifier")
    assert TECH_ID in outcome["issue"][0]["diagnostics"]
    assert body(client.get("/fhir/Practitioner?_summary=count"))["total"] == 1


def test_an_email_may_be_shared_by_several_accounts(client: Any) -> None:
    # INT_R02 does not make emails unique, and the ANS kit sends accounts sharing one.
    send(client, "POST", "/fhir/Practitioner", regulator(technical()))
    other = regulator(technical("c6e39355-8a61-4556-b340-36f7b95fec6a"),
                      "Sebastien.Loridon@TEST.com")
    assert send(client, "POST", "/fhir/Practitioner", other).status_code == 201
    assert body(client.get("/fhir/Practitioner?_summary=count"))["total"] == 2


def test_conditional_put_creates_then_is_idempotent(client: Any) -> None:
    url = by_identifier(SAS, TECH_ID)
    first = send(client, "PUT", url, regulator(technical()))
    assert first.status_code == 201
    again = send(client, "PUT", url, regulator(technical()))
    assert again.status_code == 200
    assert body(again)["id"] == body(first)["id"]
    assert body(again)["meta"]["versionId"] == "1"  # nothing changed


def test_update_names_email_and_switch_to_the_national_id(client: Any) -> None:
    created = body(send(client, "PUT", by_identifier(SAS, TECH_ID), regulator(technical())))
    changed = regulator(national(), "s.loridon@sas.fr", family="Loridon-Martin")
    response = send(client, "PUT", by_identifier(SAS, TECH_ID), changed)
    assert response.status_code == 200
    assert body(response)["id"] == created["id"]
    # The same account answers to the new id, none to the old one.
    (stored,) = found(client, IDNPS, NATIONAL_ID)
    assert stored["id"] == created["id"]
    assert stored["name"][0]["family"] == "Loridon-Martin"
    assert stored["telecom"][0]["value"] == "s.loridon@sas.fr"
    assert found(client, SAS, TECH_ID) == []
    history = body(client.get(f"/fhir/Practitioner/{created['id']}/_history"))
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert history["entry"][1]["resource"]["identifier"][0]["system"] == SAS


def test_deactivation_and_reattachment_of_a_freed_national_id(client: Any) -> None:
    url = by_identifier(IDNPS, NATIONAL_ID)
    first = body(send(client, "PUT", url, regulator(national())))
    off = send(client, "PUT", url, regulator(national(), active=False))
    assert off.status_code == 200
    assert found(client, IDNPS, NATIONAL_ID)[0]["active"] is False
    # The freed national id (and email) may go to another account.
    other = send(client, "POST", "/fhir/Practitioner", regulator(national(), family="Autre"))
    assert other.status_code == 201
    assert body(other)["id"] != first["id"]
    # Reactivating the first account now clashes with the active one.
    assert send(client, "PUT", f"/fhir/Practitioner/{first['id']}",
                {**regulator(national()), "id": first["id"]}).status_code == 409


def test_regulator_writes_never_touch_a_doctor_with_the_same_rpps(client: Any) -> None:
    doctor = {"resourceType": "Practitioner", "id": "doc",
              "identifier": [{"system": IDNPS, "value": NATIONAL_ID}],
              "name": [{"family": "Médecin"}]}
    assert client.put("/fhir/Practitioner/doc", json=doctor).status_code == 201
    response = send(client, "PUT", by_identifier(IDNPS, NATIONAL_ID), regulator(national()))
    assert response.status_code == 201  # a new regulator account, not an update of the doctor
    assert body(client.get("/fhir/Practitioner/doc"))["meta"]["versionId"] == "1"
    assert len(found(client, IDNPS, NATIONAL_ID)) == 2


@pytest.mark.parametrize(("change", "where"), [
    (lambda r: r.pop("identifier"), "Practitioner.identifier"),
    (lambda r: r.pop("active"), "Practitioner.active"),
    (lambda r: r["name"][0].pop("family"), "Practitioner.name"),
    (lambda r: r["name"][0].pop("given"), "Practitioner.name"),
    (lambda r: r.pop("telecom"), "Practitioner.telecom"),
    (lambda r: r["telecom"][0].update(value="pas-un-email"), "Practitioner.telecom[0].value"),
    (lambda r: r["identifier"][0].update(system="urn:oid:1.2.3"),
     "Practitioner.identifier[0].system"),
    (lambda r: r["identifier"][0]["type"]["coding"][0].update(code="IDNPS"),
     "Practitioner.identifier[0].type"),
    (lambda r: r["identifier"][0].update(value="  "), "Practitioner.identifier[0].value"),
])
def test_invalid_accounts_are_refused_and_nothing_is_stored(client: Any, change: Any,
                                                             where: str) -> None:
    resource = regulator(technical())
    change(resource)
    response = send(client, "PUT", by_identifier(SAS, TECH_ID), resource)
    assert response.status_code in (400, 422)
    outcome = body(response)
    assert where in [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert body(client.get("/fhir/Practitioner?_summary=count"))["total"] == 0


def test_history_records_who_made_each_version(client: Any) -> None:
    created = body(client.open(by_identifier(SAS, TECH_ID), method="PUT",
                               json=regulator(technical()),
                               headers={**SAS_HEADERS, "User-Agent": "sas-platform/1.0"}))
    history = body(client.get(f"/fhir/Practitioner/{created['id']}/_history"))
    (extension,) = history["entry"][0]["request"]["extension"]
    assert "sas-platform/1.0" in extension["valueString"]


def test_twenty_parallel_identical_creates_leave_one_account(live_server: str) -> None:
    url = f"{live_server}/Practitioner?identifier={quote(f'{SAS}|{TECH_ID}')}"
    resource = regulator(technical())

    def put(_: int) -> int:
        with requests.Session() as session:
            return session.put(url, json=resource, headers=SAS_HEADERS, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(put, range(20)))
    assert sorted(set(statuses)) == [200, 201]
    assert statuses.count(201) == 1
    bundle = requests.get(url, headers=SAS_HEADERS, timeout=30).json()
    assert bundle["total"] == 1


def test_each_regulator_has_a_user_account_kept_in_step(client: Any, engine: Any) -> None:
    from app.accounts.service import authenticate, session_account, start_session
    from app.db import write_transaction
    from tests.support.accounts import account_row, set_password

    created = body(send(client, "PUT", by_identifier(SAS, TECH_ID), regulator(technical())))
    account = account_row(engine, created["id"])
    assert (account.role, account.email, account.active) == (
        "regulator", "sebastien.loridon@test.com", True)
    assert account.terms_accepted_at is None  # accepted at first login
    assert account.password_hash  # generated; the regulator sets his own through a reset
    set_password(engine, created["id"])
    with write_transaction(engine) as conn:
        logged_in = authenticate(conn, "sebastien.loridon@test.com", "correct horse battery")
        assert logged_in is not None
        token = start_session(conn, logged_in, from_sas=True)
    # SAS withdraws the habilitation: no login, the open session dies at once.
    send(client, "PUT", by_identifier(SAS, TECH_ID), regulator(technical(), active=False))
    with write_transaction(engine) as conn:
        assert session_account(conn, token) is None
        assert authenticate(conn, "sebastien.loridon@test.com", "correct horse battery") is None
    assert account_row(engine, created["id"]).active is False
    # Restored: login works again (old sessions stay dead).
    send(client, "PUT", by_identifier(SAS, TECH_ID), regulator(technical()))
    with write_transaction(engine) as conn:
        assert authenticate(conn, "sebastien.loridon@test.com", "correct horse battery")
        assert session_account(conn, token) is None


def test_a_refused_write_leaves_the_account_untouched(client: Any, engine: Any) -> None:
    from tests.support.accounts import account_row

    created = body(send(client, "PUT", by_identifier(SAS, TECH_ID), regulator(technical())))
    broken = regulator(technical(), email="pas-un-email")
    assert send(client, "PUT", by_identifier(SAS, TECH_ID), broken).status_code == 422
    assert account_row(engine, created["id"]).email == "sebastien.loridon@test.com"
