"""Date search through HTTP: every prefix on instants (Slot.start) and on Periods
(Schedule.planningHorizon), partial dates, time zones, _lastUpdated.

FHIR R4 search 3.1.1.4.9 (date) and 3.1.1.4.3 (prefixes). Values without an offset are read in
the server's default zone, Europe/Paris. `+` in offsets is sent as %2B.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.search_data import body, found, get, load, practitioner, schedule, search, slot

ALL_SLOTS = {"a", "b", "c", "d", "e", "f", "g", "h"}


@pytest.fixture
def slots(client: Any) -> Any:
    load(client,
         practitioner("p1", "81001"),
         schedule("s1", "Practitioner/p1"),
         slot("a", "s1", "2026-03-02T08:00:00+01:00"),
         slot("b", "s1", "2026-03-02T09:00:00+01:00"),
         slot("c", "s1", "2026-03-02T23:30:00+01:00"),  # 22:30Z, still 2 March in Paris
         slot("d", "s1", "2026-03-03T00:30:00+01:00"),  # 23:30Z on 2 March, 3 March in Paris
         slot("e", "s1", "2026-03-10T10:00:00Z"),
         slot("f", "s1", "2026-04-15T10:00:00+02:00"),
         slot("g", "s1", "2027-01-05T10:00:00+01:00"),
         slot("h", "s1", "2026-07-01T00:30:00+02:00"))  # 30 June 22:30Z, 1 July in Paris
    return client


# -- instants: each prefix -------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("2026-03-02", {"a", "b", "c"}),
    ("eq2026-03-02", {"a", "b", "c"}),
    ("ne2026-03-02", ALL_SLOTS - {"a", "b", "c"}),
    ("gt2026-03-02", {"d", "e", "f", "g", "h"}),
    ("lt2026-03-03", {"a", "b", "c"}),
    ("ge2026-03-03", {"d", "e", "f", "g", "h"}),
    ("le2026-03-02", {"a", "b", "c"}),
    ("sa2026-03", {"f", "g", "h"}),
    ("eb2026-04", {"a", "b", "c", "d", "e"}),
    ("ge2026-03-02T09:00", {"b", "c", "d", "e", "f", "g", "h"}),
    ("gt2026-03-02T09:00", {"c", "d", "e", "f", "g", "h"}),
    ("le2026-03-02T09:00", {"a", "b"}),
    ("lt2026-03-02T09:00", {"a"}),
])
def test_prefixes_on_instants(slots: Any, query: str, expected: set[str]) -> None:
    assert found(slots, f"Slot?start={query}") == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("2026-03-02T09:00:00%2B01:00", {"b"}),
    ("eq2026-03-02T09:00:00%2B01:00", {"b"}),
    ("ne2026-03-02T09:00:00%2B01:00", ALL_SLOTS - {"b"}),
    ("lt2026-03-02T09:00:00%2B01:00", {"a"}),
    ("le2026-03-02T09:00:00%2B01:00", {"a", "b"}),
    ("gt2026-03-02T09:00:00%2B01:00", ALL_SLOTS - {"a", "b"}),
    ("ge2026-03-02T09:00:00%2B01:00", ALL_SLOTS - {"a"}),
    ("sa2026-03-02T09:00:00%2B01:00", ALL_SLOTS - {"a", "b"}),
    ("eb2026-03-02T09:00:00%2B01:00", {"a"}),
])
def test_prefixes_at_second_precision(slots: Any, query: str, expected: set[str]) -> None:
    assert found(slots, f"Slot?start={query}") == expected


# -- partial dates and zones -----------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("2026", ALL_SLOTS - {"g"}),
    ("2027", {"g"}),
    ("2026-03", {"a", "b", "c", "d", "e"}),
    ("2026-04", {"f"}),
    ("2026-06", set()),  # h is 30 June in UTC but 1 July in Paris
    ("2026-07", {"h"}),
    ("2026-07-01", {"h"}),
    ("2026-06-30", set()),
    ("2026-03-03", {"d"}),
    ("2026-03-02T09:00", {"b"}),
    ("2026-03-02T09:01", set()),
])
def test_partial_dates_cover_their_whole_period_in_paris_time(slots: Any, query: str,
                                                              expected: set[str]) -> None:
    assert found(slots, f"Slot?start={query}") == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("2026-03-02T08:00:00Z", {"b"}),
    ("2026-03-02T10:00:00%2B02:00", {"b"}),
    ("2026-03-02T03:00:00-05:00", {"b"}),
    ("2026-03-02T23:30:00Z", {"d"}),
    ("2026-03-10T11:00:00", {"e"}),  # no offset: Paris (UTC+1 in March)
    ("2026-03-10T10:00:00", set()),
    ("2026-04-15T10:00:00", {"f"}),  # no offset: Paris (UTC+2 in April)
    ("2026-04-15T08:00Z", {"f"}),
])
def test_values_with_time_zones(slots: Any, query: str, expected: set[str]) -> None:
    assert found(slots, f"Slot?start={query}") == expected


def test_day_of_the_spring_change_has_23_hours(client: Any) -> None:
    load(client,
         practitioner("p1", "81001"),
         schedule("s1", "Practitioner/p1"),
         slot("early", "s1", "2026-03-29T00:30:00+01:00"),
         slot("late", "s1", "2026-03-29T23:30:00+02:00"),
         slot("next", "s1", "2026-03-30T00:30:00+02:00"),
         slot("before", "s1", "2026-03-28T23:30:00+01:00"))
    assert found(client, "Slot?start=2026-03-29") == {"early", "late"}


# -- AND / OR --------------------------------------------------------------------------------

def test_repeated_parameter_is_and(slots: Any) -> None:
    assert found(slots, "Slot?start=ge2026-03-02&start=le2026-03-03") == {"a", "b", "c", "d"}
    assert found(slots, "Slot?start=ge2026-03-02T09:00:00%2B01:00"
                        "&start=lt2026-03-03T00:00:00%2B01:00") == {"b", "c"}
    assert found(slots, "Slot?start=gt2026-04&start=lt2026-03") == set()


def test_comma_is_or(slots: Any) -> None:
    assert found(slots, "Slot?start=2026-03-02,2026-04-15") == {"a", "b", "c", "f"}
    assert found(slots, "Slot?start=lt2026-03-02T09:00,ge2027") == {"a", "g"}


# -- ap --------------------------------------------------------------------------------------

def test_approximately(client: Any) -> None:
    # Relative to today, so that "10% of the gap to now" stays small: at least a day.
    day = date.today() + timedelta(days=10)

    def at(offset_days: int) -> str:
        return f"{day + timedelta(days=offset_days)}T12:00:00+01:00"

    load(client,
         practitioner("p1", "81001"),
         schedule("s1", "Practitioner/p1"),
         slot("same-day", "s1", at(0)),
         slot("next-day", "s1", at(1)),
         slot("far-after", "s1", at(6)),
         slot("far-before", "s1", at(-6)))
    matched = found(client, f"Slot?start=ap{day}")
    assert {"same-day", "next-day"} <= matched
    assert matched.isdisjoint({"far-after", "far-before"})


# -- invalid values --------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "xx2026", "ge", "tomorrow",
                                   "2026-03-02T09:00:00%2B1:00", "2026-03-02T25:00"])
def test_invalid_date_is_a_400_operation_outcome(slots: Any, value: str) -> None:
    response = get(slots, f"Slot?start={value}")
    assert response.status_code == 400
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"


# -- Periods (Schedule.planningHorizon) ------------------------------------------------------

@pytest.fixture
def horizons(client: Any) -> Any:
    """Search value 2026-03-02 covers [2026-03-02T00:00+01:00, 2026-03-03T00:00+01:00)."""
    load(client,
         practitioner("p1", "81001"),
         schedule("inside", "Practitioner/p1",  # within 2 March
                  start="2026-03-02T08:00:00+01:00", end="2026-03-02T18:00:00+01:00"),
         schedule("march", "Practitioner/p1", start="2026-03-01", end="2026-03-31"),
         schedule("open", "Practitioner/p1", start="2026-04-01"),  # no end
         schedule("january", "Practitioner/p1", start="2026-01-01", end="2026-01-31"),
         schedule("no-start", "Practitioner/p1", end="2026-02-15"),  # no start
         schedule("none", "Practitioner/p1"))  # no planningHorizon
    return client


@pytest.mark.parametrize(("query", "expected"), [
    ("2026-03-02", {"inside"}),
    ("eq2026-03-02", {"inside"}),
    ("ne2026-03-02", {"march", "open", "january", "no-start"}),
    ("gt2026-03-02", {"march", "open"}),
    ("lt2026-03-02", {"march", "january", "no-start"}),
    ("ge2026-03-02", {"inside", "march", "open"}),
    ("le2026-03-02", {"inside", "march", "january", "no-start"}),
    ("sa2026-03-02", {"open"}),
    ("eb2026-03-02", {"january", "no-start"}),
    ("2026-03", {"inside", "march"}),
    ("2026", {"inside", "march", "january"}),
    ("lt2000", {"no-start"}),  # no start means "since ever"
    ("gt2099", {"open"}),  # no end means "for ever"
    ("2026-03-02T08:00", set()),  # the horizon is longer than that minute
])
def test_prefixes_on_periods(horizons: Any, query: str, expected: set[str]) -> None:
    assert found(horizons, f"Schedule?date={query}") == expected


@pytest.fixture
def straddling(client: Any) -> Any:
    """Periods that overlap the 2 March search value only partly."""
    load(client,
         practitioner("p1", "81001"),
         schedule("ends-inside", "Practitioner/p1",  # 15 Feb → 2 March noon
                  start="2026-02-15", end="2026-03-02T12:00:00+01:00"),
         schedule("starts-inside", "Practitioner/p1",  # 2 March 14:00 → 5 March
                  start="2026-03-02T14:00:00+01:00", end="2026-03-05"))
    return client


@pytest.mark.parametrize(("prefix", "expected"), [
    ("eq", set()),
    ("ne", {"ends-inside", "starts-inside"}),
    ("gt", {"starts-inside"}),
    ("lt", {"ends-inside"}),
    ("sa", set()),
    ("eb", set()),
])
def test_partly_overlapping_periods(straddling: Any, prefix: str, expected: set[str]) -> None:
    assert found(straddling, f"Schedule?date={prefix}2026-03-02") == expected


@pytest.mark.parametrize(("prefix", "expected"), [
    # R4: ge = "the range above the search value intersects the range of the target value,
    # or the range of the search value fully contains the range of the target value";
    # a period ending at noon on the searched day does neither.
    ("ge", {"starts-inside"}),
    # le = "the range below the search value intersects the range of the target value, or
    # the range of the search value fully contains the range of the target value"; a period
    # starting at 14:00 on the searched day does neither.
    ("le", {"ends-inside"}),
])
def test_ge_le_on_periods_partly_overlapping_follow_the_r4_definition(
        straddling: Any, prefix: str, expected: set[str]) -> None:
    assert found(straddling, f"Schedule?date={prefix}2026-03-02") == expected


# -- _lastUpdated ----------------------------------------------------------------------------

def _utc(instant: str) -> datetime:
    return datetime.fromisoformat(instant.replace("Z", "+00:00"))


def test_last_updated(client: Any) -> None:
    load(client, practitioner("first", "81001"))
    time.sleep(0.01)
    load(client, practitioner("second", "81002"))
    first = search(client, "Practitioner?_id=first")["entry"][0]["resource"]["meta"][
        "lastUpdated"]
    second = search(client, "Practitioner?_id=second")["entry"][0]["resource"]["meta"][
        "lastUpdated"]
    assert _utc(first) < _utc(second)

    assert found(client, f"Practitioner?_lastUpdated={first}") == {"first"}
    assert found(client, f"Practitioner?_lastUpdated=eq{second}") == {"second"}
    assert found(client, f"Practitioner?_lastUpdated=ne{second}") == {"first"}
    assert found(client, f"Practitioner?_lastUpdated=ge{second}") == {"second"}
    assert found(client, f"Practitioner?_lastUpdated=gt{first}") == {"second"}
    assert found(client, f"Practitioner?_lastUpdated=lt{second}") == {"first"}
    assert found(client, f"Practitioner?_lastUpdated=le{first}") == {"first"}
    assert found(client, f"Practitioner?_lastUpdated=ge{first}&_lastUpdated=le{second}") == {
        "first", "second"}

    # The same instant written with another offset.
    paris = _utc(second).astimezone(UTC).replace(tzinfo=None) + timedelta(hours=5)
    shifted = paris.isoformat(timespec="milliseconds") + "%2B05:00"
    assert found(client, f"Practitioner?_lastUpdated=ge{shifted}") == {"second"}

    # Dates without a time are days of the server's zone (Europe/Paris), not UTC's: between
    # 23:00 and midnight UTC, "tomorrow" in UTC has already begun in Paris.
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    assert found(client, f"Practitioner?_lastUpdated=gt{yesterday}") == {"first", "second"}
    assert found(client, f"Practitioner?_lastUpdated=ge{tomorrow}") == set()
    assert found(client, "Practitioner?_lastUpdated=lt2000") == set()
