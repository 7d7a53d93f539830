"""End to end through gunicorn (two workers) and real HTTP, with `requests`."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.factories import (
    FHIR_JSON,
    RPPS,
    RPPS_SYSTEM,
    bundle,
    entry,
    practitioner,
    schedule,
    slot,
    urn,
)

HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
TIMEOUT = 10


def test_create_read_search_round_trip(live_server):
    created = requests.post(f"{live_server}/Practitioner", json=practitioner(family="Lefèvre"),
                            headers=HEADERS, timeout=TIMEOUT)
    assert created.status_code == 201
    resource = created.json()
    location = created.headers["Location"]
    assert location == f"{live_server}/Practitioner/{resource['id']}/_history/1"
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Content-Type"].startswith(FHIR_JSON)

    read = requests.get(f"{live_server}/Practitioner/{resource['id']}", headers=HEADERS,
                        timeout=TIMEOUT)
    assert read.status_code == 200
    assert read.json() == resource
    assert read.json()["name"][0]["family"] == "Lefèvre"

    found = requests.get(f"{live_server}/Practitioner",
                         params={"identifier": f"{RPPS_SYSTEM}|{RPPS}"}, headers=HEADERS,
                         timeout=TIMEOUT)
    assert found.status_code == 200
    result = found.json()
    assert result["type"] == "searchset"
    assert result["total"] == 1
    assert result["entry"][0]["fullUrl"] == f"{live_server}/Practitioner/{resource['id']}"
    assert result["entry"][0]["resource"] == resource

    assert requests.get(location, timeout=TIMEOUT).json() == resource


def test_sas_media_type_end_to_end(live_server):
    sas = {"Content-Type": "application/json+fhir", "Accept": "application/json+fhir"}
    created = requests.post(f"{live_server}/Practitioner", json=practitioner(), headers=sas,
                            timeout=TIMEOUT)
    assert created.status_code == 201
    assert created.headers["Content-Type"].split(";")[0] == "application/json+fhir"
    metadata = requests.get(f"{live_server}/metadata", headers=sas, timeout=TIMEOUT)
    assert metadata.status_code == 200
    assert metadata.json()["fhirVersion"] == "4.0.1"
    missing = requests.get(f"{live_server}/Practitioner/unknown", headers=sas, timeout=TIMEOUT)
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_transaction_then_follow_references(live_server):
    content = bundle(
        "transaction",
        entry("POST", "Practitioner", practitioner(), full_url=urn(1)),
        entry("POST", "Schedule", schedule(urn(1)), full_url=urn(2)),
        entry("POST", "Slot", slot(urn(2)), full_url=urn(3)),
    )
    response = requests.post(live_server, json=content, headers=HEADERS, timeout=TIMEOUT)
    assert response.status_code == 200
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert [s.split()[0] for s in statuses] == ["201", "201", "201"]

    slots = requests.get(f"{live_server}/Slot", params={"status": "free"}, headers=HEADERS,
                         timeout=TIMEOUT).json()
    assert slots["total"] == 1
    schedule_ref = slots["entry"][0]["resource"]["schedule"]["reference"]
    assert schedule_ref.startswith("Schedule/")
    sched = requests.get(f"{live_server}/{schedule_ref}", timeout=TIMEOUT).json()
    doctor = requests.get(f"{live_server}/{sched['actor'][0]['reference']}",
                          timeout=TIMEOUT).json()
    assert doctor["identifier"][0]["value"] == RPPS


def test_concurrent_updates_with_the_same_if_match_let_exactly_one_win(live_server):
    created = requests.post(f"{live_server}/Practitioner", json=practitioner(),
                            headers=HEADERS, timeout=TIMEOUT).json()
    url = f"{live_server}/Practitioner/{created['id']}"
    start = threading.Barrier(6)

    def update(n: int) -> int:
        changed = {**created, "name": [{"family": f"Writer{n}"}]}
        start.wait(timeout=TIMEOUT)
        return requests.put(url, json=changed, headers={**HEADERS, "If-Match": 'W/"1"'},
                            timeout=TIMEOUT).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(update, range(6)))

    assert statuses.count(200) == 1, statuses
    assert all(s in (409, 412) for s in statuses if s != 200), statuses
    current = requests.get(url, timeout=TIMEOUT).json()
    assert current["meta"]["versionId"] == "2"
    history = requests.get(f"{url}/_history", timeout=TIMEOUT).json()
    assert history["total"] == 2
