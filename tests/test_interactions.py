"""FHIR R4 RESTful interactions through HTTP: read, vread, create, update, delete, history.

Spec: http://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from tests.factories import (
    BASE_URL,
    RPPS,
    RPPS_SYSTEM,
    assert_outcome,
    body,
    bundle,
    create,
    entry,
    practitioner,
    put,
    read,
    schedule,
    search_ids,
    send,
    tick,
)

IDENTIFIER = f"identifier={RPPS_SYSTEM}|{RPPS}"


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _versions(history: dict) -> list[str]:
    return [e["response"]["etag"] for e in history.get("entry", [])]


# -- create -----------------------------------------------------------------------------------

def test_create_assigns_id_and_returns_location_etag_last_modified(client):
    before = datetime.now(UTC) - timedelta(seconds=2)
    response = send(client, "POST", "Practitioner", practitioner(resource_id="client-id"))

    assert response.status_code == 201
    created = body(response)
    assert created["resourceType"] == "Practitioner"
    assert created["id"] and created["id"] != "client-id"  # a create ignores a client id
    assert created["identifier"] == [{"system": RPPS_SYSTEM, "value": RPPS}]
    assert created["name"][0]["family"] == "Martin"
    assert created["meta"]["versionId"] == "1"
    assert response.headers["Location"] == (
        f"{BASE_URL}/Practitioner/{created['id']}/_history/1")
    assert response.headers["ETag"] == 'W/"1"'
    last_updated = _instant(created["meta"]["lastUpdated"])
    assert last_updated.tzinfo is not None
    assert before <= last_updated <= datetime.now(UTC) + timedelta(seconds=2)
    last_modified = parsedate_to_datetime(response.headers["Last-Modified"])
    assert last_modified == last_updated.replace(microsecond=0)
    assert read(client, "Practitioner", "client-id").status_code == 404


def test_create_ignores_client_version_id_and_last_updated_but_keeps_other_meta(client):
    tag = {"system": "urn:example:tags", "code": "demo"}
    resource = practitioner(meta={"versionId": "42", "lastUpdated": "2001-01-01T00:00:00Z",
                                  "tag": [tag]})
    created = create(client, resource)

    assert created["meta"]["versionId"] == "1"
    assert _instant(created["meta"]["lastUpdated"]).year >= 2024
    assert created["meta"]["tag"] == [tag]
    stored = body(read(client, "Practitioner", created["id"]))
    assert stored["meta"]["versionId"] == "1"
    assert stored["meta"]["tag"] == [tag]


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_prefer_return_minimal_has_no_body(client, method):
    path = "Practitioner" if method == "POST" else "Practitioner/p-minimal"
    resource = practitioner(resource_id=None if method == "POST" else "p-minimal")
    response = send(client, method, path, resource, headers={"Prefer": "return=minimal"})

    assert response.status_code == 201
    assert response.data == b""
    location = response.headers["Location"]
    assert location.startswith(f"{BASE_URL}/Practitioner/") and location.endswith("/_history/1")
    assert response.headers["ETag"] == 'W/"1"'
    resource_id = location.split("/")[-3]
    assert body(read(client, "Practitioner", resource_id))["identifier"][0]["value"] == RPPS


def test_prefer_return_representation_is_the_stored_resource(client):
    response = send(client, "POST", "Practitioner", practitioner(),
                    headers={"Prefer": "return=representation"})
    assert response.status_code == 201
    created = body(response)
    assert created == body(read(client, "Practitioner", created["id"]))


def test_prefer_return_operation_outcome(client):
    response = send(client, "POST", "Practitioner", practitioner(),
                    headers={"Prefer": "return=OperationOutcome"})
    assert response.status_code == 201
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"
    assert "Location" in response.headers
    assert search_ids(client, "Practitioner") == [response.headers["Location"].split("/")[-3]]


# -- read / vread -----------------------------------------------------------------------------

def test_read_returns_current_version_with_etag_and_last_modified(client):
    created = create(client, practitioner())
    updated = put(client, {**created, "active": False})

    response = read(client, "Practitioner", created["id"])
    assert response.status_code == 200
    current = body(response)
    assert current == updated
    assert current["active"] is False
    assert current["meta"]["versionId"] == "2"
    assert response.headers["ETag"] == 'W/"2"'
    assert parsedate_to_datetime(response.headers["Last-Modified"]) == _instant(
        current["meta"]["lastUpdated"]).replace(microsecond=0)


def test_read_unknown_is_404(client):
    outcome = assert_outcome(read(client, "Practitioner", "nope"), 404, "not-found")
    assert "nope" in outcome["issue"][0]["diagnostics"]


def test_vread_returns_each_version(client):
    created = create(client, practitioner(family="Un"))
    put(client, {**created, "name": [{"family": "Deux"}]})
    put(client, {**created, "name": [{"family": "Trois"}]})

    for version, family in ((1, "Un"), (2, "Deux"), (3, "Trois")):
        response = client.get(f"/fhir/Practitioner/{created['id']}/_history/{version}")
        assert response.status_code == 200
        resource = body(response)
        assert resource["id"] == created["id"]
        assert resource["meta"]["versionId"] == str(version)
        assert resource["name"][0]["family"] == family
        assert response.headers["ETag"] == f'W/"{version}"'


@pytest.mark.parametrize("version", ["2", "99", "abc"])
def test_vread_unknown_version_is_404(client, version):
    created = create(client, practitioner())
    response = client.get(f"/fhir/Practitioner/{created['id']}/_history/{version}")
    assert_outcome(response, 404, "not-found")


# -- update -----------------------------------------------------------------------------------

def test_update_by_id_creates_a_new_version(client):
    created = create(client, practitioner())
    changed = {**created, "name": [{"family": "Bernard", "given": ["Luc"]}]}
    response = send(client, "PUT", f"Practitioner/{created['id']}", changed)

    assert response.status_code == 200
    updated = body(response)
    assert updated["id"] == created["id"]
    assert updated["name"] == [{"family": "Bernard", "given": ["Luc"]}]
    assert updated["meta"]["versionId"] == "2"
    assert _instant(updated["meta"]["lastUpdated"]) >= _instant(created["meta"]["lastUpdated"])
    assert response.headers["ETag"] == 'W/"2"'
    assert response.headers["Location"] == (
        f"{BASE_URL}/Practitioner/{created['id']}/_history/2")
    assert body(read(client, "Practitioner", created["id"]))["name"][0]["family"] == "Bernard"


def test_update_as_create_keeps_the_client_id(client):
    response = send(client, "PUT", "Practitioner/rpps-810001234567",
                    practitioner(resource_id="rpps-810001234567"))

    assert response.status_code == 201
    created = body(response)
    assert created["id"] == "rpps-810001234567"
    assert created["meta"]["versionId"] == "1"
    assert response.headers["Location"] == (
        f"{BASE_URL}/Practitioner/rpps-810001234567/_history/1")
    assert search_ids(client, "Practitioner", IDENTIFIER) == ["rpps-810001234567"]


def test_update_ignores_client_version_id(client):
    created = create(client, practitioner())
    changed = {**created, "active": False, "meta": {"versionId": "17"}}
    updated = put(client, changed)
    assert updated["meta"]["versionId"] == "2"


def test_no_op_update_keeps_the_version(client):
    created = create(client, practitioner())
    response = send(client, "PUT", f"Practitioner/{created['id']}", created)

    assert response.status_code == 200
    same = body(response)
    assert same["meta"]["versionId"] == "1"
    assert same["meta"]["lastUpdated"] == created["meta"]["lastUpdated"]
    assert response.headers["ETag"] == 'W/"1"'
    history = body(client.get(f"/fhir/Practitioner/{created['id']}/_history"))
    assert history["total"] == 1


def test_update_with_matching_if_match(client):
    created = create(client, practitioner())
    response = send(client, "PUT", f"Practitioner/{created['id']}", {**created, "active": False},
                    headers={"If-Match": 'W/"1"'})
    assert response.status_code == 200
    assert body(response)["meta"]["versionId"] == "2"
    assert response.headers["ETag"] == 'W/"2"'


def test_update_with_stale_if_match_is_412_and_changes_nothing(client):
    created = create(client, practitioner())
    put(client, {**created, "active": False})

    response = send(client, "PUT", f"Practitioner/{created['id']}",
                    {**created, "name": [{"family": "Perdu"}]}, headers={"If-Match": 'W/"1"'})
    assert_outcome(response, 412)
    current = body(read(client, "Practitioner", created["id"]))
    assert current["meta"]["versionId"] == "2"
    assert current["name"][0]["family"] == "Martin"


# -- conditional create / update / delete ------------------------------------------------------

def test_conditional_create_no_match_creates(client):
    response = send(client, "POST", "Practitioner", practitioner(),
                    headers={"If-None-Exist": IDENTIFIER})
    assert response.status_code == 201
    assert search_ids(client, "Practitioner", IDENTIFIER) == [body(response)["id"]]


def test_conditional_create_one_match_returns_it_and_creates_nothing(client):
    existing = create(client, practitioner())
    response = send(client, "POST", "Practitioner", practitioner(family="Autre"),
                    headers={"If-None-Exist": IDENTIFIER})

    assert response.status_code == 200
    returned = body(response)
    assert returned["id"] == existing["id"]
    assert returned["name"][0]["family"] == "Martin"
    assert search_ids(client, "Practitioner") == [existing["id"]]


def test_conditional_create_several_matches_is_412(client):
    create(client, practitioner())
    create(client, practitioner())
    response = send(client, "POST", "Practitioner", practitioner(),
                    headers={"If-None-Exist": IDENTIFIER})
    assert_outcome(response, 412)
    assert len(search_ids(client, "Practitioner")) == 2


def test_conditional_update_no_match_creates(client):
    response = send(client, "PUT", f"Practitioner?{IDENTIFIER}", practitioner())
    assert response.status_code == 201
    created = body(response)
    assert created["meta"]["versionId"] == "1"
    assert response.headers["Location"] == (
        f"{BASE_URL}/Practitioner/{created['id']}/_history/1")
    assert search_ids(client, "Practitioner", IDENTIFIER) == [created["id"]]


def test_conditional_update_one_match_updates_it(client):
    existing = create(client, practitioner())
    create(client, practitioner("810009999999"))
    response = send(client, "PUT", f"Practitioner?{IDENTIFIER}", practitioner(family="Nouveau"))

    assert response.status_code == 200
    updated = body(response)
    assert updated["id"] == existing["id"]
    assert updated["meta"]["versionId"] == "2"
    assert updated["name"][0]["family"] == "Nouveau"
    assert len(search_ids(client, "Practitioner")) == 2


def test_conditional_update_several_matches_is_412(client):
    first = create(client, practitioner())
    second = create(client, practitioner())
    response = send(client, "PUT", f"Practitioner?{IDENTIFIER}", practitioner(family="X"))
    assert_outcome(response, 412)
    for resource in (first, second):
        current = body(read(client, "Practitioner", resource["id"]))
        assert current["meta"]["versionId"] == "1"
        assert current["name"][0]["family"] == "Martin"


def test_conditional_delete_one_match(client):
    target = create(client, practitioner())
    other = create(client, practitioner("810009999999"))
    response = client.delete(f"/fhir/Practitioner?{IDENTIFIER}")

    assert response.status_code in (200, 204)
    assert read(client, "Practitioner", target["id"]).status_code == 410
    assert search_ids(client, "Practitioner") == [other["id"]]


def test_conditional_delete_several_matches_is_412(client):
    create(client, practitioner())
    create(client, practitioner())
    assert_outcome(client.delete(f"/fhir/Practitioner?{IDENTIFIER}"), 412)
    assert len(search_ids(client, "Practitioner")) == 2


def test_conditional_delete_no_match_deletes_nothing(client):
    other = create(client, practitioner("810009999999"))
    response = client.delete(f"/fhir/Practitioner?{IDENTIFIER}")
    assert response.status_code in (200, 204, 404)
    assert search_ids(client, "Practitioner") == [other["id"]]


# -- delete -----------------------------------------------------------------------------------

def test_delete_then_read_is_410(client):
    created = create(client, practitioner())
    response = client.delete(f"/fhir/Practitioner/{created['id']}")
    assert response.status_code in (200, 204)

    assert_outcome(read(client, "Practitioner", created["id"]), 410)
    assert search_ids(client, "Practitioner") == []
    # The versions before the deletion stay readable; the deletion itself is gone.
    assert body(client.get(f"/fhir/Practitioner/{created['id']}/_history/1"))["id"] == (
        created["id"])
    assert client.get(f"/fhir/Practitioner/{created['id']}/_history/2").status_code == 410


def test_delete_twice_is_idempotent(client):
    created = create(client, practitioner())
    assert client.delete(f"/fhir/Practitioner/{created['id']}").status_code in (200, 204)
    assert client.delete(f"/fhir/Practitioner/{created['id']}").status_code in (200, 204)
    history = body(client.get(f"/fhir/Practitioner/{created['id']}/_history"))
    assert history["total"] == 2


@pytest.mark.parametrize("how", ["rest", "transaction", "batch"])
def test_history_records_a_delete_with_the_status_it_answered(client, how):
    created = create(client, practitioner())
    url = f"Practitioner/{created['id']}"
    if how == "rest":
        response = client.delete(f"/fhir/{url}")
        answered = str(response.status_code)
        assert body(response)["resourceType"] == "OperationOutcome"
    else:
        response = send(client, "POST", "", bundle(how, entry("DELETE", url)))
        answered = body(response)["entry"][0]["response"]["status"].split()[0]
    assert answered == "200"
    deletion, creation = body(client.get(f"/fhir/{url}/_history"))["entry"]
    assert (deletion["request"]["method"], deletion["request"]["url"]) == ("DELETE", url)
    assert deletion["response"]["status"] == answered
    assert creation["response"]["status"] == "201"


def test_delete_unknown_is_404(client):
    assert_outcome(client.delete("/fhir/Practitioner/never-existed"), 404, "not-found")


def test_recreate_after_delete_continues_the_version_number(client):
    created = put(client, practitioner(resource_id="p1"))
    put(client, {**created, "active": False})
    assert client.delete("/fhir/Practitioner/p1").status_code in (200, 204)

    response = send(client, "PUT", "Practitioner/p1", practitioner(resource_id="p1",
                                                                   family="Revenu"))
    assert response.status_code == 201
    recreated = body(response)
    assert recreated["meta"]["versionId"] == "4"
    assert response.headers["ETag"] == 'W/"4"'
    current = body(read(client, "Practitioner", "p1"))
    assert current["meta"]["versionId"] == "4"
    assert current["name"][0]["family"] == "Revenu"
    history = body(client.get("/fhir/Practitioner/p1/_history"))
    assert _versions(history) == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']


# -- history ----------------------------------------------------------------------------------

def test_instance_history_lists_every_version_newest_first(client):
    created = create(client, practitioner(family="Un"))
    tick()
    put(client, {**created, "name": [{"family": "Deux"}]})
    tick()
    client.delete(f"/fhir/Practitioner/{created['id']}")
    other = create(client, practitioner("810009999999"))

    response = client.get(f"/fhir/Practitioner/{created['id']}/_history")
    assert response.status_code == 200
    history = body(response)
    assert history["resourceType"] == "Bundle"
    assert history["type"] == "history"
    assert history["total"] == 3
    entries = history["entry"]
    assert _versions(history) == ['W/"3"', 'W/"2"', 'W/"1"']
    assert all(e["fullUrl"] == f"{BASE_URL}/Practitioner/{created['id']}" for e in entries)
    assert other["id"] not in str(history)

    deletion, update, creation = entries
    assert "resource" not in deletion
    assert _method_url(deletion) == ("DELETE", f"Practitioner/{created['id']}")
    assert update["resource"]["name"][0]["family"] == "Deux"
    assert update["resource"]["meta"]["versionId"] == "2"
    assert _method_url(update) == ("PUT", f"Practitioner/{created['id']}")
    assert creation["resource"]["name"][0]["family"] == "Un"
    assert creation["request"]["method"] == "POST"
    assert creation["request"]["url"] == "Practitioner"
    modified = [_instant(e["response"]["lastModified"]) for e in entries]
    assert modified == sorted(modified, reverse=True)


def test_history_of_update_as_create_records_a_put(client):
    put(client, practitioner(resource_id="p-put"))
    history = body(client.get("/fhir/Practitioner/p-put/_history"))
    # Bundle.entry.request: "For history, it shows how the entry was processed to create the
    # version contained in the entry" — this version was made by PUT Practitioner/p-put.
    assert _method_url(history["entry"][0]) == ("PUT", "Practitioner/p-put")


def _method_url(entry):
    """The interaction of a history entry (its request also names who made the version)."""
    return entry["request"]["method"], entry["request"]["url"]


def test_type_history_holds_only_that_type_newest_first(client):
    first = create(client, practitioner())
    tick()
    sched = create(client, schedule(f"Practitioner/{first['id']}"))
    tick()
    second = create(client, practitioner("810009999999"))
    tick()
    put(client, {**first, "active": False})

    history = body(client.get("/fhir/Practitioner/_history"))
    assert history["type"] == "history"
    assert history["total"] == 3
    assert [(e["resource"]["id"], e["resource"]["meta"]["versionId"])
            for e in history["entry"]] == [(first["id"], "2"), (second["id"], "1"),
                                           (first["id"], "1")]
    assert sched["id"] not in str(history)


def test_system_history_holds_every_type_newest_first(client):
    first = create(client, practitioner())
    tick()
    sched = create(client, schedule(f"Practitioner/{first['id']}"))
    tick()
    put(client, {**first, "active": False})

    response = client.get("/fhir/_history")
    assert response.status_code == 200
    history = body(response)
    assert history["type"] == "history"
    assert history["total"] == 3
    assert [(e["resource"]["resourceType"], e["resource"]["id"],
             e["resource"]["meta"]["versionId"]) for e in history["entry"]] == [
        ("Practitioner", first["id"], "2"), ("Schedule", sched["id"], "1"),
        ("Practitioner", first["id"], "1")]
    assert history["entry"][1]["fullUrl"] == f"{BASE_URL}/Schedule/{sched['id']}"


def test_history_count_and_since(client):
    created = create(client, practitioner())
    for family in ("A", "B", "C"):
        tick()
        put(client, {**created, "name": [{"family": family}]})

    page = body(client.get(f"/fhir/Practitioner/{created['id']}/_history?_count=2"))
    assert page["total"] == 4
    assert _versions(page) == ['W/"4"', 'W/"3"']

    third = body(client.get(f"/fhir/Practitioner/{created['id']}/_history/3"))
    since = third["meta"]["lastUpdated"]
    recent = body(client.get(f"/fhir/Practitioner/{created['id']}/_history",
                             query_string={"_since": since}))
    assert _versions(recent) == ['W/"4"', 'W/"3"']


def test_history_of_unknown_resource_is_404(client):
    assert_outcome(client.get("/fhir/Practitioner/nope/_history"), 404, "not-found")
