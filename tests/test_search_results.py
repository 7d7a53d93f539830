"""Result controls through HTTP: paging links, _sort, _summary=count, _elements, total,
POST _search, and unknown parameters (lenient / strict). FHIR R4 search 3.1.1.2, 3.1.1.6."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.search_data import (
    BASE,
    RPPS,
    body,
    entries,
    get,
    ids,
    link,
    load,
    practitioner,
    schedule,
    search,
    slot,
)

# Seven slots whose start order differs from their id order and from their write order.
STARTS = {
    "s-e": "2026-03-02T11:00:00+01:00",
    "s-a": "2026-03-02T09:30:00+01:00",
    "s-g": "2026-03-02T08:00:00+01:00",
    "s-c": "2026-03-02T10:15:00+01:00",
    "s-b": "2026-03-02T09:00:00+01:00",
    "s-f": "2026-03-02T12:00:00+01:00",
    "s-d": "2026-03-02T08:45:00+01:00",
}
BY_START = sorted(STARTS, key=lambda rid: STARTS[rid])


@pytest.fixture
def slots(client: Any) -> Any:
    load(client, practitioner("p1", "810001"), schedule("agenda", "Practitioner/p1"))
    for rid, start in STARTS.items():  # one write each, so that lastUpdated follows this order
        load(client, slot(rid, "agenda", start, status="busy" if rid == "s-f" else "free",
                          identifier=[{"system": "urn:example:slot", "value": rid}],
                          comment=f"Créneau {rid}"))
        time.sleep(0.003)
    return client


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


# -- paging ----------------------------------------------------------------------------------

def test_pages_follow_next_links_without_gap_or_overlap(slots: Any) -> None:
    page = search(slots, "Slot?status=free&_sort=start&_count=2")
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        assert page["total"] == 6
        seen.extend(ids(page))
        assert len(ids(page)) <= 2
        self_url = link(page, "self")
        assert self_url is not None and self_url.startswith(f"{BASE}/Slot?")
        assert _query(self_url)["status"] == "free" and _query(self_url)["_sort"] == "start"
        next_url = link(page, "next")
        if next_url is None:
            break
        assert next_url.startswith(f"{BASE}/Slot?")
        page = search(slots, next_url)
    assert pages == 3
    assert seen == [rid for rid in BY_START if rid != "s-f"]


def test_previous_link_returns_the_previous_page(slots: Any) -> None:
    first = search(slots, "Slot?_sort=start&_count=3")
    assert link(first, "previous") is None
    second = search(slots, link(first, "next") or "")
    third = search(slots, link(second, "next") or "")
    assert ids(first) == BY_START[0:3]
    assert ids(second) == BY_START[3:6]
    assert ids(third) == BY_START[6:]
    assert link(third, "next") is None
    assert ids(search(slots, link(third, "previous") or "")) == BY_START[3:6]
    assert ids(search(slots, link(second, "previous") or "")) == BY_START[0:3]


def test_self_link_reproduces_the_page(slots: Any) -> None:
    second = search(slots, link(search(slots, "Slot?_sort=-start&_count=3"), "next") or "")
    again = search(slots, link(second, "self") or "")
    assert ids(again) == ids(second) == list(reversed(BY_START))[3:6]


def test_links_keep_chains_includes_and_encoded_values(slots: Any) -> None:
    query = (f"Slot?schedule.actor:Practitioner.identifier={RPPS}|810001"
             "&start=ge2026-03-02T08:30:00%2B01:00&_include=Slot:schedule&_sort=start&_count=2")
    first = search(slots, query)
    assert ids(first) == BY_START[1:3]
    assert ids(first, "include") == ["agenda"]
    second = search(slots, link(first, "next") or "")
    assert ids(second) == BY_START[3:5]
    assert ids(second, "include") == ["agenda"]
    assert second["total"] == first["total"] == 6


def test_pages_without_sort_are_stable_and_complete(slots: Any) -> None:
    seen: list[str] = []
    page = search(slots, "Slot?_count=3")
    while True:
        seen.extend(ids(page))
        url = link(page, "next")
        if url is None:
            break
        page = search(slots, url)
    assert sorted(seen) == sorted(STARTS)
    assert len(seen) == len(STARTS)


def test_count_larger_than_the_results_has_no_next(slots: Any) -> None:
    result = search(slots, "Slot?_count=100")
    assert len(ids(result)) == 7 and link(result, "next") is None


# -- sort ------------------------------------------------------------------------------------

def test_sort_by_start(slots: Any) -> None:
    assert ids(search(slots, "Slot?_sort=start")) == BY_START


def test_sort_by_start_descending(slots: Any) -> None:
    assert ids(search(slots, "Slot?_sort=-start")) == list(reversed(BY_START))


def test_sort_by_id(slots: Any) -> None:
    assert ids(search(slots, "Slot?_sort=_id")) == sorted(STARTS)
    assert ids(search(slots, "Slot?_sort=-_id")) == sorted(STARTS, reverse=True)


def test_sort_by_last_updated_descending(slots: Any) -> None:
    assert ids(search(slots, "Slot?_sort=-_lastUpdated")) == list(reversed(STARTS))
    assert ids(search(slots, "Slot?_sort=_lastUpdated")) == list(STARTS)


def test_sort_by_two_keys(slots: Any) -> None:
    # status first (busy < free), then start.
    expected = ["s-f"] + [rid for rid in BY_START if rid != "s-f"]
    assert ids(search(slots, "Slot?_sort=status,start")) == expected


def test_sort_by_string(client: Any) -> None:
    load(client, practitioner("z", "1", family="Zola"), practitioner("e", "2", family="Été"),
         practitioner("a", "3", family="Abel"))
    assert ids(search(client, "Practitioner?_sort=family")) == ["a", "e", "z"]
    assert ids(search(client, "Practitioner?_sort=-family")) == ["z", "e", "a"]


def test_unknown_sort_parameter_is_a_400(slots: Any) -> None:
    response = get(slots, "Slot?_sort=nope")
    assert response.status_code == 400
    assert body(response)["resourceType"] == "OperationOutcome"


# -- _summary, _elements, total --------------------------------------------------------------

def test_summary_count(slots: Any) -> None:
    result = search(slots, "Slot?status=free&_summary=count")
    assert result["total"] == 6
    assert "entry" not in result
    assert link(result, "next") is None


def test_total_is_present_without_results(slots: Any) -> None:
    result = search(slots, "Slot?status=entered-in-error")
    assert result["total"] == 0
    assert "entry" not in result


def test_total_counts_all_matches_not_the_page(slots: Any) -> None:
    result = search(slots, "Slot?_count=2&_include=Slot:schedule")
    assert result["total"] == 7
    assert len(ids(result)) == 2


def test_elements_subset_and_tag(client: Any) -> None:
    load(client, practitioner("p1", "810001", family="Martin", gender="female",
                              telecom=[{"system": "phone", "value": "+33465710111"}]))
    result = search(client, "Practitioner?_elements=identifier")
    (entry,) = entries(result)
    resource = entry["resource"]
    assert resource["id"] == "p1"
    assert resource["identifier"] == [{"system": RPPS, "value": "810001"}]
    assert not {"name", "gender", "telecom"} & set(resource)
    assert any(tag.get("code") == "SUBSETTED" for tag in resource["meta"]["tag"])


def test_elements_on_slots_keeps_requested_and_mandatory_only(slots: Any) -> None:
    result = search(slots, "Slot?_id=s-a&_elements=identifier&_include=Slot:schedule")
    (match,) = entries(result)
    resource = match["resource"]
    assert resource["identifier"] == [{"system": "urn:example:slot", "value": "s-a"}]
    assert "comment" not in resource  # neither requested nor mandatory
    assert any(tag.get("code") == "SUBSETTED" for tag in resource["meta"]["tag"])
    (included,) = entries(result, "include")
    assert included["resource"]["id"] == "agenda"


def test_deleted_resources_are_neither_matched_nor_included(slots: Any) -> None:
    assert slots.delete("/fhir/Slot/s-a").status_code == 200
    assert "s-a" not in ids(search(slots, "Slot?_count=100"))
    assert ids(search(slots, "Slot?_id=s-a")) == []
    assert "s-a" not in ids(search(slots, "Slot?status:not=busy"))
    assert "s-a" not in ids(search(slots, "Slot?specialty:missing=true"))
    load(slots, schedule("other", "Practitioner/p1"),
         slot("orphan", "other", "2026-03-03T09:00:00+01:00"))
    assert slots.delete("/fhir/Schedule/other").status_code == 200
    result = search(slots, "Slot?_id=orphan&_include=Slot:schedule")
    assert ids(result) == ["orphan"]
    assert ids(result, "include") == []


# -- POST _search ----------------------------------------------------------------------------

def test_post_search_with_form_body_equals_get(slots: Any) -> None:
    pairs = [("schedule.actor:Practitioner.identifier", f"{RPPS}|810001"),
             ("status", "free"), ("start", "ge2026-03-02T09:00:00+01:00"),
             ("start", "le2026-03-02T11:00:00+01:00"), ("_sort", "-start"),
             ("_include", "Slot:schedule")]
    query = urlencode(pairs)
    by_get = search(slots, f"Slot?{query}")
    response = slots.post("/fhir/Slot/_search", data=query,
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, body(response)
    by_post = body(response)
    assert by_post["type"] == "searchset"
    assert ids(by_post) == ids(by_get) == ["s-e", "s-c", "s-a", "s-b"]
    assert ids(by_post, "include") == ids(by_get, "include") == ["agenda"]
    assert by_post["total"] == by_get["total"] == 4


def test_post_search_combines_url_and_body_parameters(slots: Any) -> None:
    response = slots.post("/fhir/Slot/_search?status=free", data="_sort=start&_count=2",
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, body(response)
    result = body(response)
    assert result["total"] == 6
    assert ids(result) == [rid for rid in BY_START if rid != "s-f"][:2]


# -- unknown parameters ----------------------------------------------------------------------

def test_unknown_parameter_is_ignored_with_a_warning_by_default(slots: Any) -> None:
    result = search(slots, "Slot?status=busy&foo=bar")
    assert ids(result) == ["s-f"]
    assert result["total"] == 1
    (outcome,) = entries(result, "outcome")
    assert outcome["resource"]["resourceType"] == "OperationOutcome"
    issue = outcome["resource"]["issue"][0]
    assert issue["severity"] == "warning"
    assert "foo" in issue["diagnostics"]
    assert "foo" not in (link(result, "self") or "")


def test_lenient_handling_explicitly(slots: Any) -> None:
    result = search(slots, "Slot?status=busy&foo=bar", headers={"Prefer": "handling=lenient"})
    assert ids(result) == ["s-f"]
    assert len(entries(result, "outcome")) == 1


def test_unknown_parameter_is_a_400_when_strict(slots: Any) -> None:
    response = get(slots, "Slot?status=busy&foo=bar", headers={"Prefer": "handling=strict"})
    assert response.status_code == 400
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert "foo" in outcome["issue"][0]["diagnostics"]


def test_known_parameters_are_fine_when_strict(slots: Any) -> None:
    result = search(slots, "Slot?status=busy", headers={"Prefer": "handling=strict"})
    assert ids(result) == ["s-f"]
    assert entries(result, "outcome") == []
