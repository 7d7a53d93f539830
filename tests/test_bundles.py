"""`transaction` and `batch` Bundles posted to the base URL.

Spec: http://hl7.org/fhir/R4/http.html#transaction
"""

from __future__ import annotations

import re

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
    search,
    search_ids,
    send,
    slot,
    urn,
)

IDENTIFIER = f"identifier={RPPS_SYSTEM}|{RPPS}"
LOCATION = re.compile(rf"^(?:{re.escape(BASE_URL)}/)?(?P<type>\w+)/(?P<id>[A-Za-z0-9\-.]{{1,64}})"
                      r"/_history/(?P<version>\d+)$")


def post_bundle(client, content, prefer: str | None = None):
    headers = {"Prefer": f"return={prefer}"} if prefer else None
    return send(client, "POST", "", content, headers=headers)


def _location(response_entry: dict) -> tuple[str, str, str]:
    match = LOCATION.match(response_entry["response"]["location"])
    assert match, response_entry
    return match["type"], match["id"], match["version"]


def _status(response_entry: dict) -> int:
    return int(response_entry["response"]["status"].split()[0])


def _agenda_transaction(slot_status: str | None = "free") -> dict:
    return bundle(
        "transaction",
        entry("POST", "Practitioner", practitioner(), full_url=urn(1)),
        entry("POST", "Schedule", schedule(urn(1)), full_url=urn(2)),
        entry("POST", "Slot", slot(urn(2), status=slot_status), full_url=urn(3)),
    )


def _nothing_stored(client) -> None:
    for resource_type in ("Practitioner", "Schedule", "Slot"):
        assert search(client, resource_type)["total"] == 0, resource_type
    assert body(client.get("/fhir/_history"))["total"] == 0


# -- transaction ------------------------------------------------------------------------------

def test_transaction_creates_all_and_rewrites_urn_uuid_references(client):
    response = post_bundle(client, _agenda_transaction())

    assert response.status_code == 200
    result = body(response)
    assert result["resourceType"] == "Bundle"
    assert result["type"] == "transaction-response"
    assert len(result["entry"]) == 3
    locations = [_location(e) for e in result["entry"]]
    assert [loc[0] for loc in locations] == ["Practitioner", "Schedule", "Slot"]
    assert all(loc[2] == "1" for loc in locations)
    for response_entry in result["entry"]:
        assert _status(response_entry) == 201
        assert response_entry["response"]["etag"] == 'W/"1"'
        assert response_entry["response"]["lastModified"]
    (_, doctor_id, _), (_, schedule_id, _), (_, slot_id, _) = locations

    stored_schedule = body(read(client, "Schedule", schedule_id))
    assert stored_schedule["actor"] == [{"reference": f"Practitioner/{doctor_id}"}]
    stored_slot = body(read(client, "Slot", slot_id))
    assert stored_slot["schedule"] == {"reference": f"Schedule/{schedule_id}"}
    assert "urn:uuid" not in str(stored_schedule) + str(stored_slot)
    assert search_ids(client, "Slot", f"schedule=Schedule/{schedule_id}") == [slot_id]
    assert search_ids(client, "Schedule", f"actor=Practitioner/{doctor_id}") == [schedule_id]


def test_transaction_prefer_representation_returns_the_resources(client):
    result = body(post_bundle(client, _agenda_transaction(), prefer="representation"))
    resources = [e["resource"] for e in result["entry"]]
    assert [r["resourceType"] for r in resources] == ["Practitioner", "Schedule", "Slot"]
    assert resources[1]["actor"] == [{"reference": f"Practitioner/{resources[0]['id']}"}]
    assert resources[2]["schedule"] == {"reference": f"Schedule/{resources[1]['id']}"}
    assert all(r["meta"]["versionId"] == "1" for r in resources)


def test_transaction_if_none_exist_reuses_the_match(client):
    existing = create(client, practitioner())
    content = bundle(
        "transaction",
        entry("POST", "Practitioner", practitioner(family="Doublon"), full_url=urn(1),
              if_none_exist=IDENTIFIER),
        entry("POST", "Schedule", schedule(urn(1)), full_url=urn(2)),
    )
    result = body(post_bundle(client, content))

    doctor_entry, schedule_entry = result["entry"]
    assert _status(doctor_entry) == 200
    assert _location(doctor_entry)[1] == existing["id"]
    assert _status(schedule_entry) == 201
    schedule_id = _location(schedule_entry)[1]
    assert body(read(client, "Schedule", schedule_id))["actor"] == [
        {"reference": f"Practitioner/{existing['id']}"}]
    assert search_ids(client, "Practitioner") == [existing["id"]]
    assert body(read(client, "Practitioner", existing["id"]))["name"][0]["family"] == "Martin"


def test_transaction_if_none_exist_without_match_creates(client):
    content = bundle("transaction", entry("POST", "Practitioner", practitioner(),
                                          if_none_exist=IDENTIFIER))
    result = body(post_bundle(client, content))
    assert _status(result["entry"][0]) == 201
    assert search_ids(client, "Practitioner", IDENTIFIER) == [_location(result["entry"][0])[1]]


def test_transaction_if_none_exist_several_matches_fails_whole_bundle(client):
    create(client, practitioner())
    create(client, practitioner())
    content = bundle(
        "transaction",
        entry("POST", "Patient", {"resourceType": "Patient", "name": [{"family": "A"}]}),
        entry("POST", "Practitioner", practitioner(), if_none_exist=IDENTIFIER),
    )
    assert_outcome(post_bundle(client, content), 412)
    assert search(client, "Patient")["total"] == 0
    assert search(client, "Practitioner")["total"] == 2


def test_transaction_with_invalid_last_entry_stores_nothing(client):
    outcome = assert_outcome(post_bundle(client, _agenda_transaction(slot_status=None)), 422)
    assert "Slot.status" in str(outcome)
    _nothing_stored(client)


def test_transaction_with_dangling_reference_in_last_entry_stores_nothing(client):
    content = _agenda_transaction()
    content["entry"][2]["resource"]["schedule"] = {"reference": "Schedule/not-here"}
    outcome = assert_outcome(post_bundle(client, content), 422)
    assert "Schedule/not-here" in str(outcome)
    _nothing_stored(client)


def test_transaction_with_failing_update_rolls_back_earlier_deletes(client):
    doctor = create(client, practitioner())
    other = create(client, practitioner("810009999999"))
    content = bundle(
        "transaction",
        entry("DELETE", f"Practitioner/{doctor['id']}"),
        entry("PUT", f"Practitioner/{other['id']}", {**other, "active": False},
              if_match='W/"7"'),
    )
    assert_outcome(post_bundle(client, content), 412)
    assert body(read(client, "Practitioner", doctor["id"])) == doctor
    assert body(read(client, "Practitioner", other["id"])) == other


def test_transaction_with_unresolved_urn_uuid_reference_stores_nothing(client):
    # The server advertises referencePolicy "enforced": a reference to a urn:uuid that no
    # entry of the Bundle carries can never be resolved.
    content = bundle(
        "transaction",
        entry("POST", "Practitioner", practitioner(), full_url=urn(1)),
        entry("POST", "Schedule", schedule(urn(99)), full_url=urn(2)),
    )
    response = post_bundle(client, content)
    assert 400 <= response.status_code < 500, body(response)
    assert_outcome(response, response.status_code)
    assert search(client, "Practitioner")["total"] == 0
    assert search(client, "Schedule")["total"] == 0


def test_transaction_with_overlapping_identities_fails(client):
    # R4 http.html#trules: if resource identities overlap in the DELETE, POST and PUT steps,
    # the transaction SHALL fail.
    doctor = put(client, practitioner(resource_id="p1"))
    content = bundle(
        "transaction",
        entry("DELETE", "Practitioner/p1"),
        entry("PUT", "Practitioner/p1", practitioner(resource_id="p1", family="Autre")),
    )
    response = post_bundle(client, content)
    assert_outcome(response, 400)
    assert body(read(client, "Practitioner", "p1")) == doctor
    assert body(client.get("/fhir/Practitioner/p1/_history"))["total"] == 1


def test_transaction_runs_delete_post_put_get_in_that_order(client):
    doomed = create(client, practitioner("810000000001", family="Supprime"))
    kept = create(client, practitioner("810000000002", family="Garde"))
    content = bundle(
        "transaction",
        # Listed in the reverse of the processing order the specification requires.
        entry("GET", "Practitioner?active=true"),
        entry("PUT", f"Practitioner/{kept['id']}", {**kept, "name": [{"family": "Modifie"}]}),
        entry("POST", "Practitioner", practitioner("810000000003", family="Nouveau")),
        entry("DELETE", f"Practitioner/{doomed['id']}"),
    )
    response = post_bundle(client, content)
    assert response.status_code == 200
    get_entry, put_entry, post_entry, delete_entry = body(response)["entry"]

    assert _status(delete_entry) in (200, 204)
    assert _status(post_entry) == 201
    assert _status(put_entry) == 200
    assert put_entry["response"]["etag"] == 'W/"2"'
    assert _status(get_entry) == 200
    searchset = get_entry["resource"]
    assert searchset["type"] == "searchset"
    # The GET ran last: it sees the POST and the PUT, not the deleted resource.
    assert sorted(e["resource"]["name"][0]["family"] for e in searchset["entry"]) == [
        "Modifie", "Nouveau"]
    assert read(client, "Practitioner", doomed["id"]).status_code == 410


def test_transaction_conditional_update_entry(client):
    existing = create(client, practitioner())
    content = bundle(
        "transaction",
        entry("PUT", f"Practitioner?{IDENTIFIER}", practitioner(family="Mis-a-jour")),
        entry("PUT", f"Practitioner?identifier={RPPS_SYSTEM}|810009999999",
              practitioner("810009999999", family="Cree"), full_url=urn(9)),
        entry("POST", "Schedule", schedule(urn(9))),
    )
    result = body(post_bundle(client, content))
    updated, created, sched = result["entry"]

    assert _status(updated) == 200
    assert _location(updated)[1:] == (existing["id"], "2")
    assert body(read(client, "Practitioner", existing["id"]))["name"][0]["family"] == (
        "Mis-a-jour")
    assert _status(created) == 201
    created_id = _location(created)[1]
    assert search_ids(client, "Practitioner", f"identifier={RPPS_SYSTEM}|810009999999") == [
        created_id]
    assert body(read(client, "Schedule", _location(sched)[1]))["actor"] == [
        {"reference": f"Practitioner/{created_id}"}]


def test_transaction_conditional_update_several_matches_is_412(client):
    create(client, practitioner())
    create(client, practitioner())
    content = bundle("transaction",
                     entry("PUT", f"Practitioner?{IDENTIFIER}", practitioner(family="X")))
    assert_outcome(post_bundle(client, content), 412)
    families = {e["resource"]["name"][0]["family"]
                for e in search(client, "Practitioner")["entry"]}
    assert families == {"Martin"}


def test_transaction_entry_urls_may_be_absolute(client):
    content = bundle("transaction",
                     entry("PUT", f"{BASE_URL}/Practitioner/abs-1",
                           practitioner(resource_id="abs-1")))
    result = body(post_bundle(client, content))
    assert _status(result["entry"][0]) == 201
    assert body(read(client, "Practitioner", "abs-1"))["id"] == "abs-1"


def test_empty_transaction_answers_empty_response(client):
    response = post_bundle(client, {"resourceType": "Bundle", "type": "transaction"})
    assert response.status_code == 200
    result = body(response)
    assert result["type"] == "transaction-response"
    assert result.get("entry", []) == []


# -- batch ------------------------------------------------------------------------------------

def test_batch_reports_each_entry_and_keeps_the_successes(client):
    existing = create(client, practitioner())
    content = bundle(
        "batch",
        entry("POST", "Practitioner", practitioner("810009999999", family="Nouveau")),
        entry("POST", "Slot", slot("Schedule/not-here", status=None)),
        entry("GET", f"Practitioner/{existing['id']}"),
        entry("PUT", "Practitioner/b-1", practitioner(resource_id="b-1")),
    )
    response = post_bundle(client, content)

    assert response.status_code == 200
    result = body(response)
    assert result["type"] == "batch-response"
    created, failed, fetched, put_entry = result["entry"]

    assert _status(created) == 201
    created_type, created_id, _ = _location(created)
    assert created_type == "Practitioner"
    assert body(read(client, "Practitioner", created_id))["name"][0]["family"] == "Nouveau"

    assert _status(failed) in (400, 422)
    outcome = failed["response"]["outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert "Slot.status" in str(outcome)
    assert "location" not in failed["response"]
    assert search(client, "Slot")["total"] == 0

    assert _status(fetched) == 200
    assert fetched["resource"] == existing
    assert fetched["response"]["etag"] == 'W/"1"'

    assert _status(put_entry) == 201
    assert _location(put_entry)[1:] == ("b-1", "1")


def test_batch_get_entries(client):
    existing = create(client, practitioner())
    content = bundle(
        "batch",
        entry("GET", f"Practitioner?{IDENTIFIER}"),
        entry("GET", "Practitioner/unknown"),
        entry("GET", f"Practitioner/{existing['id']}/_history/1"),
    )
    searched, missing, versioned = body(post_bundle(client, content))["entry"]

    assert _status(searched) == 200
    assert searched["resource"]["type"] == "searchset"
    assert searched["resource"]["total"] == 1
    assert searched["resource"]["entry"][0]["resource"]["id"] == existing["id"]

    assert _status(missing) == 404
    assert missing["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert "resource" not in missing

    assert _status(versioned) == 200
    assert versioned["resource"]["meta"]["versionId"] == "1"


def test_batch_get_search_with_sort(client):
    # `_sort` is advertised in the CapabilityStatement (rest.searchParam).
    for value, family in (("810000000001", "Charlier"), ("810000000002", "Abadie"),
                          ("810000000003", "Bonnet")):
        create(client, practitioner(value, family=family))
    content = bundle("batch", entry("GET", "Practitioner?_sort=family"),
                     entry("GET", "Practitioner?_sort=-family"))
    response = post_bundle(client, content)
    assert response.status_code == 200, body(response)
    ascending, descending = body(response)["entry"]
    assert [e["resource"]["name"][0]["family"] for e in ascending["resource"]["entry"]] == [
        "Abadie", "Bonnet", "Charlier"]
    assert [e["resource"]["name"][0]["family"] for e in descending["resource"]["entry"]] == [
        "Charlier", "Bonnet", "Abadie"]


def test_batch_if_none_exist_and_delete(client):
    existing = create(client, practitioner())
    content = bundle(
        "batch",
        entry("POST", "Practitioner", practitioner(), if_none_exist=IDENTIFIER),
        entry("DELETE", "Practitioner/never-existed"),
    )
    matched, deleted = body(post_bundle(client, content))["entry"]
    assert _status(matched) == 200
    assert _location(matched)[1] == existing["id"]
    assert _status(deleted) == 404
    assert search_ids(client, "Practitioner") == [existing["id"]]


def test_batch_malformed_entry_is_reported_alone(client):
    content = bundle("batch", {"resource": practitioner()},
                     entry("POST", "Practitioner", practitioner()))
    malformed, created = body(post_bundle(client, content))["entry"]
    assert _status(malformed) == 400
    assert malformed["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert _status(created) == 201
    assert search_ids(client, "Practitioner") == [_location(created)[1]]


# -- malformed bundles ------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    {"resourceType": "Practitioner"},
    {"resourceType": "Bundle", "type": "collection"},
    {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {}}]},
    {"resourceType": "Bundle", "type": "transaction", "entry": {"not": "a list"}},
])
def test_malformed_bundle_is_400(client, content):
    assert_outcome(post_bundle(client, content), 400)


def test_transaction_entry_of_unknown_type_fails_the_transaction(client):
    content = bundle(
        "transaction",
        entry("POST", "Practitioner", practitioner()),
        entry("POST", "Observation", {"resourceType": "Observation", "status": "final",
                                      "code": {"text": "x"}}),
    )
    response = post_bundle(client, content)
    assert 400 <= response.status_code < 500
    assert body(response)["resourceType"] == "OperationOutcome"
    assert search(client, "Practitioner")["total"] == 0


def test_references_checked_together_find_each_type_of_a_shared_id(client):
    """References of several types are checked in one query: the same id under two types
    resolves only where a resource of that type has it."""
    put(client, {**practitioner(), "id": "shared-1"})
    put(client, {"resourceType": "Location", "id": "shared-2", "name": "Cabinet"})
    both = schedule("Practitioner/shared-1")
    both["actor"].append({"reference": "Location/shared-2"})
    assert send(client, "POST", "Schedule", both).status_code == 201
    wrong = schedule("Practitioner/shared-1")
    wrong["actor"] += [{"reference": "Location/shared-1"}, {"reference": "Practitioner/shared-2"}]
    outcome = assert_outcome(send(client, "POST", "Schedule", wrong), 422)
    diagnostics = sorted(issue["diagnostics"] for issue in outcome["issue"])
    assert diagnostics == [
        "Schedule.actor[1].reference: Location/shared-1 does not exist on this server",
        "Schedule.actor[2].reference: Practitioner/shared-2 does not exist on this server"]
