"""End to end through gunicorn (two workers) and real HTTP, with `requests`."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

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


# -- request lines: what gunicorn accepts, and how it refuses ----------------------------------

def _encoded(text: str) -> str:
    return quote(text, safe="")


def _sas_search_url(base: str) -> str:
    """INT_R01 for 25 practitioners, every reserved character percent-encoded, `, ` between
    the ids: the longest request line SAS sends (about 1,520 bytes with GET and HTTP/1.1)."""
    ids = ", ".join(f"{RPPS_SYSTEM}|8{n:011d}" for n in range(25))
    now = datetime.now(ZoneInfo("Europe/Paris")).replace(microsecond=0)
    window = [now.isoformat(timespec="milliseconds"),
              (now + timedelta(hours=71)).isoformat(timespec="milliseconds")]
    query = "&".join([
        f"_include={_encoded('Slot:schedule')}",
        f"_include{_encoded(':iterate')}={_encoded('Schedule:actor')}",
        f"start={_encoded('ge' + window[0])}", f"start={_encoded('le' + window[1])}",
        f"{_encoded('schedule.actor:Practitioner.identifier')}={_encoded(ids)}",
        "status=free", "_count=1000"])
    return f"{base}/Slot?{query}"


def test_the_longest_sas_search_is_answered(live_server):
    url = _sas_search_url(live_server)
    assert 1400 < len(f"GET {urlsplit(url).path}?{urlsplit(url).query} HTTP/1.1") < 4094
    response = requests.get(url, headers={"Accept": "application/json+fhir"}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "searchset"


def test_a_request_line_over_gunicorns_default_limit_is_served(live_server):
    # 100 RPPS numbers (FHIR_MAX_OR_VALUES), percent-encoded: over gunicorn's default 4,094.
    doctor = requests.post(f"{live_server}/Practitioner", json=practitioner(),
                           headers=HEADERS, timeout=TIMEOUT).json()
    ids = ",".join([*(f"{RPPS_SYSTEM}|8{n:011d}" for n in range(99)), f"{RPPS_SYSTEM}|{RPPS}"])
    url = f"{live_server}/Practitioner?identifier={_encoded(ids)}"
    assert 4094 < len(urlsplit(url).path + urlsplit(url).query) < 8190
    response = requests.get(url, headers=HEADERS, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert [e["resource"]["id"] for e in response.json()["entry"]] == [doctor["id"]]


def test_an_over_long_request_line_is_414_with_an_operation_outcome(live_server):
    response = requests.get(f"{live_server}/Practitioner?name={'a' * 9000}", headers=HEADERS,
                            timeout=TIMEOUT)
    assert response.status_code == 414
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("error", "too-long")
    assert "8190" in issue["diagnostics"] and "_search" in issue["diagnostics"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
