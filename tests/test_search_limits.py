"""How much one search may ask for, and long OR lists that run whatever their length.

A search ORs comma-separated values (`start=a,b,c`) and ANDs repeated parameters. Beyond
FHIR_MAX_OR_VALUES values in one parameter (100), FHIR_MAX_SEARCH_VALUES in all (500) or
FHIR_MAX_SEARCH_PARAMS parameters (20) it answers 400 too-costly naming what is too much;
below, every kind of value list must run on both databases (SQLite refused an OR of ~500
terms, which was then reported as a 503 outage). `_count` beyond FHIR_MAX_PAGE_SIZE is
clamped and said so in the Bundle, or refused under `Prefer: handling=strict`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from app import create_app
from app.config import Settings
from app.storage.maintenance import truncate_all
from tests.factories import (
    BASE_URL,
    assert_outcome,
    create,
    practitioner,
    schedule,
    search,
    slot,
)

SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
STRICT = {"Prefer": "handling=strict"}


def _populate(client: Any) -> dict[str, str]:
    """One Practitioner (Zorro, RPPS 810000000007) with a Schedule and a Slot on 2031-01-01."""
    doctor = create(client, practitioner("810000000007", family="Zorro"))
    agenda = create(client, schedule(f"Practitioner/{doctor['id']}"))
    free = create(client, slot(f"Schedule/{agenda['id']}", start="2031-01-01T10:00:00+00:00",
                               end="2031-01-01T10:15:00+00:00"))
    return {"practitioner": doctor["id"], "schedule": agenda["id"], "slot": free["id"]}


@pytest.fixture
def data(client: Any) -> dict[str, str]:
    return _populate(client)


@pytest.fixture
def roomy(engine: Any, database_url: str) -> Any:
    """A client whose limits are raised far beyond the defaults."""
    truncate_all(engine)
    settings = Settings.from_env(database_url=database_url, fhir_base_url=BASE_URL,
                                 max_or_values=5000, max_search_values=20000)
    return create_app(settings, engine=engine).test_client()


def _values(n: int, filler: Callable[[int], str], match: str) -> str:
    """n comma-separated values, the last one matching."""
    return ",".join([*(filler(i) for i in range(n - 1)), match])


# One query per way a list of values becomes SQL, each matching exactly `expected` of `data`.
QUERIES: list[tuple[str, str, Callable[[int, dict[str, str]], str], str]] = [
    ("dates", "Slot", lambda n, d: "start=" + _values(
        n, lambda i: f"2030-01-{1 + i % 28:02d}", "2031-01-01"), "slot"),
    ("date prefixes", "Slot", lambda n, d: "start=" + _values(
        n, lambda i: f"ge2032-{1 + i % 12:02d}-01", "ge2031-01-01"), "slot"),
    ("_lastUpdated", "Practitioner", lambda n, d: "_lastUpdated=" + _values(
        n, lambda i: f"2001-01-{1 + i % 28:02d}", "ge2020"), "practitioner"),
    ("string prefixes", "Practitioner", lambda n, d: "name=" + _values(
        n, lambda i: f"n{i}", "zor"), "practitioner"),
    (":contains", "Practitioner", lambda n, d: "name:contains=" + _values(
        n, lambda i: f"n{i}", "orr"), "practitioner"),
    (":exact", "Practitioner", lambda n, d: "name:exact=" + _values(
        n, lambda i: f"n{i}", "Zorro"), "practitioner"),
    ("tokens of one system", "Practitioner", lambda n, d: "identifier=" + quote(_values(
        n, lambda i: f"{SYSTEM}|8{i:011d}", f"{SYSTEM}|810000000007")), "practitioner"),
    ("tokens of many systems", "Practitioner", lambda n, d: "identifier=" + quote(_values(
        n, lambda i: f"urn:s{i}|v", f"{SYSTEM}|810000000007")), "practitioner"),
    ("codes", "Practitioner", lambda n, d: "identifier=" + _values(
        n, lambda i: f"v{i}", "810000000007"), "practitioner"),
    ("whole systems", "Practitioner", lambda n, d: "identifier=" + quote(_values(
        n, lambda i: f"urn:s{i}|", f"{SYSTEM}|")), "practitioner"),
    (":not", "Practitioner", lambda n, d: "identifier:not=" + quote(_values(
        n, lambda i: f"{SYSTEM}|8{i:011d}", f"{SYSTEM}|1")), "practitioner"),
    ("_id", "Practitioner", lambda n, d: "_id=" + _values(
        n, lambda i: f"x{i}", d["practitioner"]), "practitioner"),
    ("typed references", "Schedule", lambda n, d: "actor=" + _values(
        n, lambda i: f"Practitioner/x{i}", f"Practitioner/{d['practitioner']}"), "schedule"),
    ("reference ids", "Schedule", lambda n, d: "actor=" + _values(
        n, lambda i: f"x{i}", d["practitioner"]), "schedule"),
    ("reference URLs", "Schedule", lambda n, d: "actor=" + quote(_values(
        n, lambda i: f"https://other.example/fhir/Practitioner/{i}",
        f"{BASE_URL}/Practitioner/{d['practitioner']}")), "schedule"),
    ("chains", "Slot", lambda n, d: "schedule.actor:Practitioner.identifier=" + _values(
        n, lambda i: f"8{i:011d}", "810000000007"), "slot"),
]


@pytest.mark.parametrize("kind,resource_type,query,expected", QUERIES,
                         ids=[q[0] for q in QUERIES])
def test_the_largest_default_value_list_runs_and_matches(client, data, kind, resource_type,
                                                         query, expected):
    result = search(client, resource_type, query(100, data))
    assert [e["resource"]["id"] for e in result.get("entry", [])] == [data[expected]], kind


@pytest.mark.parametrize("kind,resource_type,query,expected", QUERIES,
                         ids=[q[0] for q in QUERIES])
def test_raised_limits_run_thousands_of_values(roomy, kind, resource_type, query, expected):
    ids = _populate(roomy)
    result = search(roomy, resource_type, query(3000, ids))
    assert [e["resource"]["id"] for e in result.get("entry", [])] == [ids[expected]], kind


@pytest.mark.parametrize("resource_type,query,parameter", [
    ("Slot", "start=" + ",".join(["2031"] * 496), "start"),
    ("Practitioner", "name=" + ",".join(f"n{i}" for i in range(500)), "name"),
    ("Practitioner", "identifier=" + quote(",".join(f"{SYSTEM}|{i}" for i in range(101))),
     "identifier"),
    ("Schedule", "actor:Practitioner=" + ",".join(f"p{i}" for i in range(101)),
     "actor:Practitioner"),
])
@pytest.mark.parametrize("via", ["GET", "POST"])
def test_too_many_values_in_one_parameter_is_400_naming_it(client, resource_type, query,
                                                           parameter, via):
    if via == "GET":
        response = client.get(f"/fhir/{resource_type}?{query}")
    else:
        response = client.post(f"/fhir/{resource_type}/_search", data=query,
                               content_type="application/x-www-form-urlencoded")
    outcome = assert_outcome(response, 400, "too-costly")
    assert f"'{parameter}'" in outcome["issue"][0]["diagnostics"]
    assert "at most 100" in outcome["issue"][0]["diagnostics"]


def test_too_many_values_in_all_is_400(client):
    query = "&".join(["name=" + ",".join(f"n{i}" for i in range(90))] * 6)
    outcome = assert_outcome(client.get(f"/fhir/Practitioner?{query}"), 400, "too-costly")
    assert "540 values" in outcome["issue"][0]["diagnostics"]


def test_too_many_parameters_is_400(client):
    query = "&".join(["name=zor"] * 21)
    outcome = assert_outcome(client.get(f"/fhir/Practitioner?{query}"), 400, "too-costly")
    assert "21 parameters" in outcome["issue"][0]["diagnostics"]
    search(client, "Practitioner", "&".join(["name=zor"] * 20))


# -- _count beyond the largest page ------------------------------------------------------------

def test_count_beyond_the_maximum_is_clamped_and_said(client, data):
    result = search(client, "Practitioner", "_count=5000")
    assert "_count=1000" in result["link"][0]["url"]
    outcomes = [e for e in result["entry"] if e["search"]["mode"] == "outcome"]
    (issue,) = outcomes[0]["resource"]["issue"]
    assert (issue["severity"], issue["code"]) == ("warning", "too-costly")
    assert "_count=5000" in issue["diagnostics"] and "1000" in issue["diagnostics"]
    assert [e["resource"]["id"] for e in result["entry"] if e["search"]["mode"] == "match"] == [
        data["practitioner"]]


def test_count_beyond_the_maximum_is_400_under_strict_handling(client):
    response = client.get("/fhir/Practitioner?_count=1001", headers=STRICT)
    outcome = assert_outcome(response, 400, "too-costly")
    assert "1000" in outcome["issue"][0]["diagnostics"]
    assert not [e for e in search(client, "Practitioner", "_count=1000").get("entry", [])
                if e["search"]["mode"] == "outcome"]
    assert client.get("/fhir/Practitioner?_count=1000", headers=STRICT).status_code == 200


def test_clamp_and_ignored_parameters_share_one_outcome(client):
    result = search(client, "Practitioner", "_count=2000&unknown=1")
    (outcome,) = [e["resource"] for e in result["entry"] if e["search"]["mode"] == "outcome"]
    assert [i["code"] for i in outcome["issue"]] == ["not-supported", "too-costly"]
