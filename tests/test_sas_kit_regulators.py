"""INT_R02 as the official ANS test kit sends it (ansforge/interop-outil-fhir-sas-test-kit,
flux V1): every POST and conditional PUT body carries an id of the kit's own (a random UUID
in the newest version, the fixed `example-regulator-1` in older ones), PUT URLs are fully
form-encoded, POSTs say `Content-Type: application/json` and `Accept: application/json+fhir`,
PUTs `Accept: application/fhir+json`. The sixteen steps run in the kit's order with the
statuses the kit expects; nothing the kit never checks is asserted blindly: the accounts are
read back. Both databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.factories import body

IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
SAS = "urn:oid:1.2.250.1.213.3.6"
TYPES = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
REGUL = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
REGULATOR_ID, REGULATOR_ID_MODIF = "3456780581/11242343", "3456780581/11242344"
MAIL, GIVEN, FAMILY = "sebastien.loridon@test.com", "Sébastien", "Loridon"
POST_HEADERS = {"Content-Type": "application/json", "Accept": "application/json+fhir"}
PUT_HEADERS = {"Content-Type": "application/json", "Accept": "application/fhir+json"}

Resource = dict[str, Any]


def kit_body(value: str, mail: str, resource_id: str, given: str = GIVEN,
             family: str = FAMILY, system: str = IDNPS, active: bool = True) -> Resource:
    """The kit's FrPractitionerRegul body (HelperFLuxv1.build_regulateur_body)."""
    return {"resourceType": "Practitioner", "id": resource_id,
            "meta": {"source": SAS, "profile": [REGUL]},
            "identifier": [{"type": {"coding": [{"system": TYPES,
                                                  "code": "IDNPS" if system == IDNPS
                                                  else "INTRN"}]},
                            "system": system, "value": value}],
            "active": active, "name": [{"family": family, "given": [given]}],
            "telecom": [{"system": "email", "value": mail}]}


def invalid_bodies() -> dict[str, Resource]:
    """The kit's invalid fixtures (missing fields, invalid values)."""
    base = kit_body(str(uuid.uuid4()), f"{uuid.uuid4()}{MAIL}", "invalid")
    bodies = {name: {**base, "id": f"invalid-{name}"} for name in (
        "no-identifier", "no-name", "no-telecom", "no-active", "empty-name", "empty-mail",
        "wrong-telecom-system", "wrong-code-for-idnps", "wrong-code-for-intrn")}
    del bodies["no-identifier"]["identifier"]
    del bodies["no-name"]["name"]
    del bodies["no-telecom"]["telecom"]
    del bodies["no-active"]["active"]
    bodies["empty-name"]["name"] = [{"family": "", "given": ["Claire"]}]
    bodies["empty-mail"]["telecom"] = [{"system": "email", "value": ""}]
    bodies["wrong-telecom-system"]["telecom"] = [{"system": "phone", "value": MAIL}]
    bodies["wrong-code-for-idnps"]["identifier"] = [{
        "type": {"coding": [{"system": TYPES, "code": "INTRN"}]}, "system": IDNPS,
        "value": "1223432432"}]
    bodies["wrong-code-for-intrn"]["identifier"] = [{
        "type": {"coding": [{"system": TYPES, "code": "IDNPS"}]}, "system": SAS,
        "value": str(uuid.uuid4())}]
    return bodies


class Kit:
    """The kit's two clients: FHIR POSTs and form-encoded conditional PUTs."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def post(self, resource: Resource) -> int:
        response = self.client.post("/fhir/Practitioner", json=resource, headers=POST_HEADERS)
        return int(response.status_code)

    def put(self, system: str, value: str, resource: Resource) -> int:
        url = "/fhir/Practitioner?" + urlencode({"identifier": f"{system}|{value}"})
        return int(self.client.put(url, json=resource, headers=PUT_HEADERS).status_code)

    def accounts(self, system: str, value: str) -> list[Resource]:
        bundle = body(self.client.get("/fhir/Practitioner?" + urlencode(
            {"identifier": f"{system}|{value}"})))
        return [e["resource"] for e in bundle.get("entry", [])]


def rejected(status: int) -> bool:
    # The kit accepts any 4xx/5xx; a refusal is a client error, never an outage.
    return status in (400, 409, 412, 422)


def modified(status: int) -> bool:
    return 200 <= status < 300


def new_id() -> str:
    return str(uuid.uuid4())


def test_the_kits_regulator_flow_in_order(client: Any) -> None:
    kit = Kit(client)
    # 1. POST a national id account: exactly 201, with an id of the server's choosing.
    assert kit.post(kit_body(REGULATOR_ID, MAIL, new_id())) == 201
    (first,) = kit.accounts(IDNPS, REGULATOR_ID)
    # 2. POST a SAS technical id account.
    s = new_id()
    assert kit.post(kit_body(s, s + MAIL, s, system=SAS)) == 201
    # 3. The same POST twice: the second is refused.
    d = new_id()
    assert kit.post(kit_body(d, d + MAIL, d, system=SAS)) == 201
    assert rejected(kit.post(kit_body(d, d + MAIL, d, system=SAS)))
    assert len(kit.accounts(SAS, d)) == 1
    # 4–5. Missing fields and invalid values: refused, nothing stored.
    for name, resource in invalid_bodies().items():
        assert rejected(kit.post(resource)), name
    # 6. Deactivation.
    a = new_id()
    assert kit.post(kit_body(a, a + MAIL, a, system=SAS)) == 201
    assert modified(kit.put(SAS, a, kit_body(a, a + MAIL, a, system=SAS, active=False)))
    assert kit.accounts(SAS, a)[0]["active"] is False
    # 7. An account created inactive, then activated.
    b = new_id()
    assert kit.post(kit_body(b, b + MAIL, b, system=SAS, active=False)) == 201
    assert modified(kit.put(SAS, b, kit_body(b, b + MAIL, b, system=SAS)))
    assert kit.accounts(SAS, b)[0]["active"] is True
    # 8. New email.
    c = new_id()
    assert kit.post(kit_body(c, c + MAIL, c, system=SAS)) == 201
    assert modified(kit.put(SAS, c, kit_body(c, f"{c}_modified{MAIL}", c, system=SAS)))
    assert kit.accounts(SAS, c)[0]["telecom"][0]["value"] == f"{c}_modified{MAIL}"
    # 9. The national id changes, the body's id being one the server never gave.
    assert modified(kit.put(IDNPS, REGULATOR_ID, kit_body(REGULATOR_ID_MODIF, MAIL, new_id())))
    (moved,) = kit.accounts(IDNPS, REGULATOR_ID_MODIF)
    assert moved["id"] == first["id"] and kit.accounts(IDNPS, REGULATOR_ID) == []
    # 10. The kit's "UUID → IDNPS" step has its systems swapped: nothing matches, so it
    # creates an account whose SAS technical id is REGULATOR_ID, sharing s's email.
    assert modified(kit.put(IDNPS, s, kit_body(REGULATOR_ID, s + MAIL, s, system=SAS)))
    assert len(kit.accounts(SAS, REGULATOR_ID)) == 1
    # 11–12. Names.
    e, f = new_id(), new_id()
    assert kit.post(kit_body(e, e + MAIL, e, system=SAS)) == 201
    assert modified(kit.put(SAS, e, kit_body(e, e + MAIL, e, system=SAS, family=FAMILY + e)))
    assert kit.accounts(SAS, e)[0]["name"][0]["family"] == FAMILY + e
    assert kit.post(kit_body(f, f + MAIL, f, system=SAS)) == 201
    assert modified(kit.put(SAS, f, kit_body(f, f + MAIL, f, system=SAS, given=GIVEN + f)))
    assert kit.accounts(SAS, f)[0]["name"][0]["given"] == [GIVEN + f]
    # 13. Invalid updates of an existing account are refused and change nothing.
    g = new_id()
    assert kit.post(kit_body(g, g + MAIL, g, system=SAS)) == 201
    for name, resource in invalid_bodies().items():
        assert rejected(kit.put(SAS, g, resource)), name
    assert kit.accounts(SAS, g)[0]["meta"]["versionId"] == "1"
    # 14. Invalid creations through PUT are refused.
    for name, resource in invalid_bodies().items():
        assert rejected(kit.put(SAS, new_id(), resource)), name
    # 15. PUT as create: 200 or 201.
    n2 = new_id()
    assert kit.put(SAS, n2, kit_body(n2, n2 + MAIL, n2, n2 + GIVEN, n2 + FAMILY,
                                     system=SAS)) in (200, 201)
    assert len(kit.accounts(SAS, n2)) == 1
    # 16. Reattribution of a national id freed by a deactivated account, the POST reusing
    # the id the kit had just put in the PUT body.
    w = new_id()
    assert modified(kit.put(IDNPS, REGULATOR_ID, kit_body(REGULATOR_ID, MAIL, w,
                                                          active=False)))
    assert kit.post(kit_body(w, f"{w}.{MAIL}", w, w + GIVEN, w + FAMILY, system=SAS)) == 201
    assert modified(kit.put(SAS, w, kit_body(REGULATOR_ID, f"{w}.{MAIL}", w, w + GIVEN,
                                             w + FAMILY)))
    holders = kit.accounts(IDNPS, REGULATOR_ID)
    assert sorted(h["active"] for h in holders) == [False, True]
    active = next(h for h in holders if h["active"])
    assert active["telecom"][0]["value"] == f"{w}.{MAIL}"
    assert active["id"] != w  # the server's id, not the kit's


LEGACY_ID = "example-regulator-1"


@pytest.mark.parametrize("step", ["create", "modify", "deactivate", "reactivate", "switch"])
def test_the_legacy_fixed_id_never_collides(client: Any, step: str) -> None:
    """Older kit versions put `example-regulator-1` in every body: the first account
    does not take that id, and later accounts never collide with it."""
    kit = Kit(client)
    t1, t2 = new_id(), new_id()
    assert kit.put(SAS, t1, kit_body(t1, t1 + MAIL, LEGACY_ID, system=SAS)) == 201
    assert kit.put(SAS, t2, kit_body(t2, t2 + MAIL, LEGACY_ID, system=SAS)) == 201
    assert kit.post(kit_body(REGULATOR_ID, MAIL, LEGACY_ID)) == 201
    changes: dict[str, Callable[[], int]] = {
        "create": lambda: kit.post(kit_body(new_id(), MAIL, LEGACY_ID, system=SAS)),
        "modify": lambda: kit.put(IDNPS, REGULATOR_ID, kit_body(
            REGULATOR_ID, "autre@test.com", LEGACY_ID)),
        "deactivate": lambda: kit.put(IDNPS, REGULATOR_ID, kit_body(
            REGULATOR_ID, MAIL, LEGACY_ID, active=False)),
        "reactivate": lambda: kit.put(SAS, t1, kit_body(t1, t1 + MAIL, LEGACY_ID,
                                                        system=SAS, active=True)),
        "switch": lambda: kit.put(SAS, t2, kit_body(REGULATOR_ID_MODIF, t2 + MAIL,
                                                    LEGACY_ID)),
    }
    assert changes[step]() in (200, 201)
    ids = [e["resource"]["id"] for e in body(client.get("/fhir/Practitioner"))["entry"]]
    assert LEGACY_ID not in ids
    assert len(ids) == len(set(ids)) == (4 if step == "create" else 3)


def test_the_ignored_id_is_said_in_the_outcome(client: Any) -> None:
    t = new_id()
    url = "/fhir/Practitioner?" + urlencode({"identifier": f"{SAS}|{t}"})
    response = client.put(url, json=kit_body(t, t + MAIL, LEGACY_ID, system=SAS),
                          headers={**PUT_HEADERS, "Prefer": "return=OperationOutcome"})
    assert response.status_code == 201
    issues = body(response)["issue"]
    assert all(i["severity"] == "information" for i in issues)
    assert any(LEGACY_ID in i["diagnostics"] and "ignored" in i["diagnostics"]
               for i in issues)
    # In a Bundle, the entry's response carries the same outcome.
    t2 = new_id()
    answer = body(client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                             "entry": [{"resource": kit_body(
                                                 t2, t2 + MAIL, LEGACY_ID, system=SAS),
                                                 "request": {"method": "PUT", "url":
                                                 "Practitioner?" + urlencode(
                                                     {"identifier": f"{SAS}|{t2}"})}}]}))
    response_entry = answer["entry"][0]["response"]
    assert response_entry["status"].startswith("201")
    assert LEGACY_ID in response_entry["outcome"]["issue"][0]["diagnostics"]
    assert LEGACY_ID not in response_entry["location"]


# -- the rest of the API keeps the R4 rules -----------------------------------------------------

def _agenda_practitioner(rpps: str, resource_id: str | None = None) -> Resource:
    resource: Resource = {"resourceType": "Practitioner", "active": True,
                          "identifier": [{"system": IDNPS, "value": rpps}],
                          "name": [{"family": "Martin", "given": ["Claire"]}]}
    if resource_id:
        resource["id"] = resource_id
    return resource


def test_r4_conditional_update_with_a_foreign_id_is_400(client: Any) -> None:
    client.put("/fhir/Practitioner/doc-1", json=_agenda_practitioner("810001234567", "doc-1"))
    url = "/fhir/Practitioner?identifier=" + IDNPS + "|810001234567"
    response = client.put(url, json=_agenda_practitioner("810001234567", "doc-2"))
    assert response.status_code == 400
    assert "doc-2" in body(response)["issue"][0]["diagnostics"]


def test_r4_update_as_create_onto_an_existing_id_names_the_real_cause(client: Any) -> None:
    client.put("/fhir/Practitioner/doc-1", json=_agenda_practitioner("810001234567", "doc-1"))
    url = "/fhir/Practitioner?identifier=" + IDNPS + "|810009999999"
    response = client.put(url, json=_agenda_practitioner("810009999999", "doc-1"))
    assert response.status_code == 409
    diagnostics = body(response)["issue"][0]["diagnostics"]
    assert "Practitioner/doc-1" in diagnostics and "does not match" in diagnostics
    assert "concurrent" not in diagnostics
    assert body(client.get("/fhir/Practitioner/doc-1"))["meta"]["versionId"] == "1"
    # The same in a transaction: nothing written, the same cause.
    answer = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                        "entry": [{"resource": _agenda_practitioner(
                                            "810009999999", "doc-1"), "request": {
                                            "method": "PUT", "url": url[6:]}}]})
    assert answer.status_code == 409
    assert "does not match" in body(answer)["issue"][0]["diagnostics"]
    assert body(client.get("/fhir/Practitioner/doc-1"))["meta"]["versionId"] == "1"


def test_r4_update_as_create_with_a_new_client_id_keeps_it(client: Any) -> None:
    url = "/fhir/Practitioner?identifier=" + IDNPS + "|810009999999"
    response = client.put(url, json=_agenda_practitioner("810009999999", "chosen-id"))
    assert response.status_code == 201
    assert body(response)["id"] == "chosen-id"
