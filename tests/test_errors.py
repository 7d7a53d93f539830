"""Errors through HTTP: every failure is an OperationOutcome with the right status and code.

Spec: http://hl7.org/fhir/R4/http.html (status codes), operationoutcome.html (issue codes).
"""

from __future__ import annotations

import pytest

from tests.factories import (
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
    search,
    search_ids,
    send,
    slot,
)

# -- malformed requests: 400 ------------------------------------------------------------------

@pytest.mark.parametrize("raw", ['{"resourceType": "Practitioner",', "{'a': 1}", "not json",
                                 '{"resourceType": "Practitioner"} trailing'])
def test_malformed_json_is_400_structure(client, raw):
    response = send(client, "POST", "Practitioner", raw)
    outcome = assert_outcome(response, 400, "structure")
    assert outcome["issue"][0]["severity"] in {"error", "fatal"}
    assert search_ids(client, "Practitioner") == []


@pytest.mark.parametrize("raw", ["[]", '"Practitioner"', "42", "null",
                                 '[{"resourceType": "Practitioner"}]'])
def test_body_not_a_json_object_is_400(client, raw):
    assert_outcome(send(client, "POST", "Practitioner", raw), 400, "structure", "invalid")
    assert search_ids(client, "Practitioner") == []


def test_empty_body_is_400(client):
    assert_outcome(send(client, "POST", "Practitioner", b""), 400)


def test_body_without_resource_type_is_400(client):
    resource = practitioner()
    del resource["resourceType"]
    outcome = assert_outcome(send(client, "POST", "Practitioner", resource), 400)
    assert "resourceType" in str(outcome)


@pytest.mark.parametrize("method,path", [("POST", "Practitioner"), ("PUT", "Practitioner/p1")])
def test_resource_type_other_than_the_url_is_400(client, method, path):
    resource = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Durand"}]}
    outcome = assert_outcome(send(client, method, path, resource), 400, "invalid")
    assert "Patient" in outcome["issue"][0]["diagnostics"]
    assert search_ids(client, "Patient") == []
    assert search_ids(client, "Practitioner") == []


def test_id_mismatch_in_put_is_400_and_stores_nothing(client):
    response = send(client, "PUT", "Practitioner/url-id", practitioner(resource_id="body-id"))
    outcome = assert_outcome(response, 400, "invalid")
    assert "url-id" in outcome["issue"][0]["diagnostics"]
    assert read(client, "Practitioner", "url-id").status_code == 404
    assert read(client, "Practitioner", "body-id").status_code == 404


def test_id_mismatch_in_put_leaves_the_existing_resource(client):
    created = create(client, practitioner())
    response = send(client, "PUT", f"Practitioner/{created['id']}",
                    {**created, "id": "another", "active": False})
    assert_outcome(response, 400)
    assert body(read(client, "Practitioner", created["id"])) == created


def test_missing_id_in_put_is_400(client):
    outcome = assert_outcome(send(client, "PUT", "Practitioner/p1", practitioner()), 400)
    assert "id" in expressions(outcome) or "id" in outcome["issue"][0]["diagnostics"]
    assert read(client, "Practitioner", "p1").status_code == 404


def test_malformed_if_match_is_400(client):
    created = create(client, practitioner())
    response = send(client, "PUT", f"Practitioner/{created['id']}", created,
                    headers={"If-Match": "not-a-version"})
    assert_outcome(response, 400)


def test_conditional_update_with_unknown_parameter_is_rejected(client):
    create(client, practitioner())
    response = send(client, "PUT", "Practitioner?no-such-param=1", practitioner(family="X"))
    assert_outcome(response, 400)
    assert [e["resource"]["name"][0]["family"]
            for e in search(client, "Practitioner")["entry"]] == ["Martin"]


# -- unknown resource type: 404 ---------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("GET", "Foo"), ("GET", "Foo/1"), ("POST", "Foo"), ("PUT", "Foo/1"), ("DELETE", "Foo/1"),
    ("GET", "Foo/1/_history"), ("GET", "Foo/_history"), ("GET", "Foo/1/_history/1"),
    ("GET", "Observation/1"),
])
def test_unknown_resource_type_is_404(client, method, path):
    resource = {"resourceType": path.split("/")[0], "id": "1"}
    response = send(client, method, path, resource if method in {"POST", "PUT"} else None)
    assert_outcome(response, 404, "not-supported", "not-found")


# -- invalid FHIR: 422 ------------------------------------------------------------------------

def test_unknown_element_is_422_naming_it(client):
    response = send(client, "POST", "Practitioner", practitioner(nickname="Doc"))
    outcome = assert_outcome(response, 422, "structure", "invalid")
    assert "Practitioner.nickname" in expressions(outcome)
    assert search_ids(client, "Practitioner") == []


@pytest.mark.parametrize("birth_date", ["1980-02-30", "17/05/1980", "1980-13-01"])
def test_bad_date_is_422_naming_the_element(client, birth_date):
    response = send(client, "POST", "Practitioner", practitioner(birthDate=birth_date))
    outcome = assert_outcome(response, 422, "value", "invalid")
    assert "Practitioner.birthDate" in expressions(outcome)
    assert search_ids(client, "Practitioner") == []


def test_wrong_primitive_type_is_422(client):
    response = send(client, "POST", "Practitioner", practitioner(active="yes"))
    outcome = assert_outcome(response, 422)
    assert "Practitioner.active" in expressions(outcome)


def _schedule_id(client) -> str:
    doctor = create(client, practitioner())
    return create(client, schedule(f"Practitioner/{doctor['id']}"))["id"]


def test_missing_required_slot_status_is_422_naming_slot_status(client):
    schedule_id = _schedule_id(client)
    response = send(client, "POST", "Slot", slot(f"Schedule/{schedule_id}", status=None))
    outcome = assert_outcome(response, 422, "required")
    assert "Slot.status" in expressions(outcome)
    assert search_ids(client, "Slot") == []


def test_invalid_code_is_422(client):
    schedule_id = _schedule_id(client)
    response = send(client, "POST", "Slot", slot(f"Schedule/{schedule_id}", status="open"))
    outcome = assert_outcome(response, 422)
    assert "Slot.status" in expressions(outcome)
    assert search_ids(client, "Slot") == []


def test_instant_without_offset_is_422(client):
    schedule_id = _schedule_id(client)
    response = send(client, "POST", "Slot",
                    slot(f"Schedule/{schedule_id}", start="2026-11-02T09:00:00"))
    outcome = assert_outcome(response, 422)
    assert "Slot.start" in expressions(outcome)
    assert search_ids(client, "Slot") == []


def test_invalid_update_is_422_and_keeps_the_previous_version(client):
    created = create(client, practitioner())
    response = send(client, "PUT", f"Practitioner/{created['id']}",
                    {**created, "birthDate": "not-a-date"})
    assert_outcome(response, 422)
    assert body(read(client, "Practitioner", created["id"])) == created


def test_reference_to_missing_resource_is_422_and_stores_nothing(client):
    response = send(client, "POST", "Schedule", schedule("Practitioner/does-not-exist"))
    outcome = assert_outcome(response, 422, "not-found", "processing")
    assert "Schedule.actor[0].reference" in expressions(outcome)
    assert "Practitioner/does-not-exist" in str(outcome)
    assert search(client, "Schedule")["total"] == 0
    assert body(client.get("/fhir/_history"))["total"] == 0


def test_unresolvable_urn_uuid_reference_outside_a_bundle_is_422(client):
    # referencePolicy "enforced" is advertised: a urn:uuid only means something inside a
    # Bundle, so a resource posted on its own with one can never have it resolved.
    response = send(client, "POST", "Schedule",
                    schedule("urn:uuid:11111111-1111-1111-1111-111111111111"))
    outcome = assert_outcome(response, 422)
    assert "Schedule.actor[0].reference" in expressions(outcome)
    assert search(client, "Schedule")["total"] == 0


@pytest.mark.parametrize("reference", [
    "Schedule/../../x", "Schedule/a b", "Schedule/" + "x" * 65, "Schedule/", "/Schedule/s1",
    "Schedule/s1?x=1", "schedule/s1", "s1", "http://localhost/fhir/Schedule/../x",
    "ftp://example.org/Schedule/1", "urn:uuid:not-a-uuid", "#a/b",
])
def test_malformed_reference_is_422_naming_the_element(client, reference):
    response = send(client, "POST", "Slot", slot(reference))
    outcome = assert_outcome(response, 422, "value")
    assert expressions(outcome) == ["Slot.schedule.reference"]
    assert reference in outcome["issue"][0]["diagnostics"]
    assert search(client, "Slot")["total"] == 0


def test_malformed_reference_in_a_transaction_is_refused_whole(client):
    schedule_id = _schedule_id(client)
    response = send(client, "POST", "", bundle(
        "transaction", entry("POST", "Slot", slot(f"Schedule/{schedule_id}")),
        entry("POST", "Slot", slot("Schedule/../../x"))))
    outcome = assert_outcome(response, 422, "value")
    assert "Slot.schedule.reference" in expressions(outcome)
    assert search(client, "Slot")["total"] == 0


@pytest.mark.parametrize("reference", [
    "Schedule/{id}", "Schedule/{id}/_history/1", "http://localhost/fhir/Schedule/{id}",
])
def test_well_formed_references_are_accepted(client, reference):
    reference = reference.format(id=_schedule_id(client))
    assert create(client, slot(reference))["schedule"] == {"reference": reference}


def test_references_to_other_servers_and_contained_resources_are_accepted(client):
    role = {"resourceType": "PractitionerRole", "practitioner": {
        "reference": "https://annuaire.example.fr/fhir/Practitioner/810001234567"},
        "organization": {"reference": "http://[::1]:8080/fhir/Organization/o1"},
        "contained": [{"resourceType": "Location", "id": "loc1", "name": "Cabinet"}],
        "location": [{"reference": "#loc1"}]}
    created = create(client, role)
    assert created["location"] == [{"reference": "#loc1"}]


def test_reference_to_deleted_resource_is_422(client):
    doctor = create(client, practitioner())
    client.delete(f"/fhir/Practitioner/{doctor['id']}")
    response = send(client, "POST", "Schedule", schedule(f"Practitioner/{doctor['id']}"))
    assert_outcome(response, 422)
    assert search(client, "Schedule")["total"] == 0


def test_update_adding_a_missing_reference_is_422(client):
    schedule_id = _schedule_id(client)
    current = body(read(client, "Schedule", schedule_id))
    changed = {**current, "actor": [*current["actor"], {"reference": "Location/nowhere"}]}
    outcome = assert_outcome(send(client, "PUT", f"Schedule/{schedule_id}", changed), 422)
    assert "Schedule.actor[1].reference" in expressions(outcome)
    assert body(read(client, "Schedule", schedule_id))["meta"]["versionId"] == "1"


def test_reference_to_existing_resource_is_accepted(client):
    doctor = create(client, practitioner())
    created = put(client, {**schedule(f"Practitioner/{doctor['id']}"), "id": "s1"})
    assert created["actor"] == [{"reference": f"Practitioner/{doctor['id']}"}]


# -- media types and methods ------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["application/fhir+xml", "application/xml",
                                          "text/xml", "application/x-www-form-urlencoded"])
def test_xml_or_form_body_is_415(client, content_type):
    xml = ('<Practitioner xmlns="http://hl7.org/fhir"><active value="true"/></Practitioner>')
    response = send(client, "POST", "Practitioner", xml, headers={"Content-Type": content_type})
    assert_outcome(response, 415, "not-supported")
    assert search_ids(client, "Practitioner") == []


@pytest.mark.parametrize("method,path", [("POST", "Practitioner"), ("PUT", "Practitioner/p1")])
@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream",
                                          "multipart/form-data; boundary=x"])
def test_a_json_body_of_another_type_is_415_naming_the_accepted_types(client, method, path,
                                                                      content_type):
    response = send(client, method, path, practitioner(resource_id="p1"),
                    headers={"Content-Type": content_type})
    diagnostics = assert_outcome(response, 415, "not-supported")["issue"][0]["diagnostics"]
    for accepted in ("application/fhir+json", "application/json", "application/json+fhir",
                     "application/x-www-form-urlencoded only for POST [type]/_search"):
        assert accepted in diagnostics
    assert search_ids(client, "Practitioner") == []


def test_search_by_post_takes_a_form_body_only(client):
    created = create(client, practitioner())
    found = client.post("/fhir/Practitioner/_search", data={"_id": created["id"]})
    assert [e["resource"]["id"] for e in body(found)["entry"]] == [created["id"]]
    response = send(client, "POST", "Practitioner/_search", {"_id": created["id"]})
    diagnostics = assert_outcome(response, 415, "not-supported")["issue"][0]["diagnostics"]
    assert "application/x-www-form-urlencoded" in diagnostics


@pytest.mark.parametrize("accept", ["application/fhir+xml", "application/xml"])
def test_accept_xml_is_406_in_json(client, accept):
    created = create(client, practitioner())
    response = client.get(f"/fhir/Practitioner/{created['id']}", headers={"Accept": accept})
    assert_outcome(response, 406, "not-supported")
    assert response.mimetype == "application/fhir+json"


def test_unsupported_method_on_instance_is_405(client):
    created = create(client, practitioner())
    response = send(client, "POST", f"Practitioner/{created['id']}", created)
    assert_outcome(response, 405, "not-supported")
    assert body(read(client, "Practitioner", created["id"])) == created


def test_patch_is_405_with_allow_header(client):
    created = create(client, practitioner())
    response = send(client, "PATCH", f"Practitioner/{created['id']}",
                    [{"op": "replace", "path": "/active", "value": False}])
    assert_outcome(response, 405, "not-supported")
    # RFC 9110 §15.5.6: a 405 response MUST carry an Allow header listing the methods.
    assert {m.strip() for m in response.headers.get("Allow", "").split(",")} >= {
        "GET", "PUT", "DELETE"}
    assert body(read(client, "Practitioner", created["id"]))["active"] is True


def test_unknown_path_is_404_operation_outcome(client):
    assert_outcome(client.get("/fhir/Practitioner/1/extra/segments"), 404)
