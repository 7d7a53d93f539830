"""Concurrent writers of the same Slot through gunicorn (4 processes × 8 threads): with the
same If-Match exactly one wins and the others get 412 (or 409), whether they send a REST PUT
or a Bundle entry; writers that retry on 412 never lose an update — the history holds every
write that was acknowledged, in order, with consecutive versions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from sqlalchemy import Engine

from tests.factories import FHIR_JSON, bundle, entry, practitioner, schedule, slot
from tests.support.live_server import LiveServer

HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
WRITERS = 24
TIMEOUT = 60


def _fresh_slot(server: LiveServer, engine: Engine) -> tuple[str, dict[str, Any]]:
    from app.storage.maintenance import truncate_all

    truncate_all(engine)
    base = server.base_url
    resources = [practitioner(resource_id="race-pr"),
                 schedule("Practitioner/race-pr", id="race-sch"),
                 slot("Schedule/race-sch", id="race-slot", comment="v0")]
    loaded = requests.post(base, json=bundle("transaction", *(
        entry("PUT", f"{r['resourceType']}/{r['id']}", r) for r in resources)),
        headers=HEADERS, timeout=TIMEOUT)
    assert loaded.status_code == 200, loaded.text
    current = requests.get(f"{base}/Slot/race-slot", headers=HEADERS, timeout=TIMEOUT).json()
    return base, current


def test_one_if_match_one_winner_rest_and_bundles(threaded_server: LiveServer,
                                                  engine: Engine) -> None:
    base, current = _fresh_slot(threaded_server, engine)
    start = threading.Barrier(WRITERS, timeout=TIMEOUT)

    def write(n: int) -> tuple[int, str]:
        changed = {**current, "comment": f"writer {n}"}
        with requests.Session() as session:
            start.wait()
            if n % 2:
                response = session.put(f"{base}/Slot/race-slot", json=changed,
                                       headers={**HEADERS, "If-Match": 'W/"1"'},
                                       timeout=TIMEOUT)
                return response.status_code, changed["comment"]
            kind = "transaction" if n % 4 == 0 else "batch"
            response = session.post(base, json=bundle(kind, entry(
                "PUT", "Slot/race-slot", changed, if_match='W/"1"')), headers=HEADERS,
                timeout=TIMEOUT)
            if response.status_code != 200:
                return response.status_code, changed["comment"]
            status = response.json()["entry"][0]["response"]["status"]
            return int(status.split()[0]), changed["comment"]

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))

    winners = [comment for status, comment in results if status == 200]
    assert len(winners) == 1, results
    assert all(status in (409, 412) for status, _ in results if status != 200), results
    final = requests.get(f"{base}/Slot/race-slot", headers=HEADERS, timeout=TIMEOUT).json()
    assert final["meta"]["versionId"] == "2" and final["comment"] == winners[0]


def test_writers_that_retry_never_lose_an_update(threaded_server: LiveServer,
                                                 engine: Engine) -> None:
    base, _ = _fresh_slot(threaded_server, engine)
    start = threading.Barrier(8, timeout=TIMEOUT)
    acknowledged: list[tuple[int, str]] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        with requests.Session() as session:
            start.wait()
            for round_ in range(5):
                while True:  # read, change, write with If-Match; again on 409/412
                    current = session.get(f"{base}/Slot/race-slot", headers=HEADERS,
                                          timeout=TIMEOUT).json()
                    version = current["meta"]["versionId"]
                    mark = f"w{n}r{round_}"
                    changed = {**current, "comment": f"{current['comment']} {mark}"}
                    response = session.put(f"{base}/Slot/race-slot", json=changed,
                                           headers={**HEADERS, "If-Match": f'W/"{version}"'},
                                           timeout=TIMEOUT)
                    if response.status_code in (409, 412):
                        continue
                    assert response.status_code == 200, response.text
                    with lock:
                        acknowledged.append((int(response.json()["meta"]["versionId"]),
                                             mark))
                    break

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(writer, range(8)))

    final = requests.get(f"{base}/Slot/race-slot", headers=HEADERS, timeout=TIMEOUT).json()
    assert int(final["meta"]["versionId"]) == 1 + 8 * 5
    # Every acknowledged write is in the final comment, in the order of its version.
    marks = final["comment"].split()[1:]
    assert marks == [mark for _, mark in sorted(acknowledged)]
    assert sorted(v for v, _ in acknowledged) == list(range(2, 2 + 8 * 5))
    history = requests.get(f"{base}/Slot/race-slot/_history", params={"_count": 100},
                           headers=HEADERS, timeout=TIMEOUT).json()
    assert history["total"] == 1 + 8 * 5


@pytest.mark.parametrize("slots", [1, 12], ids=["few rows", "rows by COPY"])
def test_racing_creates_of_the_same_resources_conflict_never_fail(
        threaded_server: LiveServer, engine: Engine, slots: int) -> None:
    """Transaction Bundles creating the same new Slots at once (PUT to ids nobody has yet):
    each Bundle is kept whole or answered 409, never 500, and every Slot ends with the same
    writer's content. (On PostgreSQL a few rows go in one pipeline, many by COPY.)"""
    base, _ = _fresh_slot(threaded_server, engine)
    writers = 8
    start = threading.Barrier(writers, timeout=TIMEOUT)

    def write(n: int) -> int:
        resources = [slot("Schedule/race-sch", id=f"race-new-{i}", comment=f"writer {n}")
                     for i in range(slots)]
        with requests.Session() as session:
            start.wait()
            response = session.post(base, json=bundle("transaction", *(
                entry("PUT", f"Slot/{r['id']}", r) for r in resources)), headers=HEADERS,
                timeout=TIMEOUT)
        assert response.status_code in (200, 409), response.text
        if response.status_code == 409:
            assert response.json()["issue"][0]["code"] == "conflict"
        return response.status_code

    with ThreadPoolExecutor(max_workers=writers) as pool:
        statuses = list(pool.map(write, range(writers)))

    kept = statuses.count(200)
    assert kept >= 1, statuses
    finals = [requests.get(f"{base}/Slot/race-new-{i}", headers=HEADERS, timeout=TIMEOUT).json()
              for i in range(slots)]
    assert len({final["comment"] for final in finals}) == 1, finals
    assert {final["meta"]["versionId"] for final in finals} == {str(kept)}
