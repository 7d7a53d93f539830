"""parse_range: FHIR date/dateTime/instant strings as inclusive naive-UTC ranges (no database)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.clock import format_instant
from app.search.dates import InvalidDate, parse_range, period_range

US = timedelta(microseconds=1)


def dt(*parts: int) -> datetime:
    return datetime(*parts)  # type: ignore[arg-type]


# -- precision -------------------------------------------------------------------------------

def test_year_covers_the_whole_year_in_paris_time() -> None:
    # 1 January and 31 December are in winter time (UTC+1).
    assert parse_range("2026") == (dt(2025, 12, 31, 23), dt(2026, 12, 31, 23) - US)


def test_month_in_winter() -> None:
    assert parse_range("2026-02") == (dt(2026, 1, 31, 23), dt(2026, 2, 28, 23) - US)


def test_month_in_summer() -> None:
    # July is in summer time (UTC+2): the month starts at 22:00 UTC the day before.
    assert parse_range("2026-07") == (dt(2026, 6, 30, 22), dt(2026, 7, 31, 22) - US)


def test_month_spanning_the_spring_change_starts_at_plus_one_and_ends_at_plus_two() -> None:
    assert parse_range("2026-03") == (dt(2026, 2, 28, 23), dt(2026, 3, 31, 22) - US)


def test_leap_february() -> None:
    assert parse_range("2028-02") == (dt(2028, 1, 31, 23), dt(2028, 2, 29, 23) - US)


def test_day_in_winter() -> None:
    assert parse_range("2026-01-15") == (dt(2026, 1, 14, 23), dt(2026, 1, 15, 23) - US)


def test_day_in_summer() -> None:
    assert parse_range("2026-07-14") == (dt(2026, 7, 13, 22), dt(2026, 7, 14, 22) - US)


def test_spring_forward_day_lasts_23_hours() -> None:
    low, high = parse_range("2026-03-29")
    assert (low, high) == (dt(2026, 3, 28, 23), dt(2026, 3, 29, 22) - US)
    assert high + US - low == timedelta(hours=23)


def test_fall_back_day_lasts_25_hours() -> None:
    low, high = parse_range("2026-10-25")
    assert (low, high) == (dt(2026, 10, 24, 22), dt(2026, 10, 25, 23) - US)
    assert high + US - low == timedelta(hours=25)


def test_minute_precision_covers_sixty_seconds() -> None:
    assert parse_range("2026-03-02T09:30") == (dt(2026, 3, 2, 8, 30),
                                               dt(2026, 3, 2, 8, 31) - US)


def test_second_precision_covers_one_second() -> None:
    assert parse_range("2026-03-02T09:30:15") == (dt(2026, 3, 2, 8, 30, 15),
                                                  dt(2026, 3, 2, 8, 30, 16) - US)


def test_microsecond_fraction_is_a_single_instant() -> None:
    assert parse_range("2026-03-02T09:30:15.123456Z") == (dt(2026, 3, 2, 9, 30, 15, 123456),
                                                          dt(2026, 3, 2, 9, 30, 15, 123456))


@pytest.mark.parametrize(("text", "micro", "unit_us"), [
    ("2026-03-02T09:30:15.5Z", 500_000, 100_000),
    ("2026-03-02T09:30:15.25Z", 250_000, 10_000),
    ("2026-03-02T09:30:15.123Z", 123_000, 1_000),
])
def test_shorter_fraction_starts_at_its_value_and_stays_within_its_unit(
        text: str, micro: int, unit_us: int) -> None:
    low, high = parse_range(text)
    assert low == dt(2026, 3, 2, 9, 30, 15, micro)
    assert low <= high < low + timedelta(microseconds=unit_us)


def test_fraction_beyond_microseconds_is_truncated() -> None:
    low, high = parse_range("2026-03-02T09:30:15.1234567Z")
    assert low == high == dt(2026, 3, 2, 9, 30, 15, 123456)


def test_fraction_without_offset_uses_the_default_zone() -> None:
    assert parse_range("2026-03-02T09:30:15.250")[0] == dt(2026, 3, 2, 8, 30, 15, 250_000)


# -- offsets ---------------------------------------------------------------------------------

def test_z_is_utc() -> None:
    assert parse_range("2026-07-14T09:00:00Z") == (dt(2026, 7, 14, 9),
                                                   dt(2026, 7, 14, 9, 0, 1) - US)


def test_positive_offset() -> None:
    assert parse_range("2026-07-14T09:00:00+02:00")[0] == dt(2026, 7, 14, 7)


def test_negative_offset() -> None:
    assert parse_range("2026-07-14T21:00:00-05:00")[0] == dt(2026, 7, 15, 2)


def test_half_hour_offset() -> None:
    assert parse_range("2026-07-14T09:00:00+05:30")[0] == dt(2026, 7, 14, 3, 30)


def test_minute_precision_with_offset() -> None:
    assert parse_range("2026-01-05T10:00Z") == (dt(2026, 1, 5, 10), dt(2026, 1, 5, 10, 1) - US)


def test_explicit_offset_overrides_the_default_zone() -> None:
    # +00:00 in summer: no Paris shift applied.
    assert parse_range("2026-07-14T09:00:00+00:00")[0] == dt(2026, 7, 14, 9)


def test_same_instant_in_different_zones_gives_the_same_range() -> None:
    assert (parse_range("2026-03-02T09:00:00+01:00")
            == parse_range("2026-03-02T08:00:00Z")
            == parse_range("2026-03-02T09:00:00"))


# -- default zone ----------------------------------------------------------------------------

def test_local_time_in_winter_is_utc_plus_one() -> None:
    assert parse_range("2026-01-15T10:00:00")[0] == dt(2026, 1, 15, 9)


def test_local_time_in_summer_is_utc_plus_two() -> None:
    assert parse_range("2026-07-15T10:00:00")[0] == dt(2026, 7, 15, 8)


def test_other_default_zone() -> None:
    assert parse_range("2026-07-15T10:00:00", "America/New_York")[0] == dt(2026, 7, 15, 14)
    assert parse_range("2026-07-15", "UTC") == (dt(2026, 7, 15), dt(2026, 7, 16) - US)


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_range(" 2026-07-15 ") == parse_range("2026-07-15")


# -- invalid values --------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "",
    "abc",
    "26-01-01",
    "2026-1-01",
    "2026-13",
    "2026-00-10",
    "2026-02-30",
    "2027-02-29",
    "2026-01-32",
    "2026-01-05T",
    "2026-01-05T10",
    "2026-01-05T25:00",
    "2026-01-05T10:60",
    "2026-01-05T10:00:61",
    "2026-01-05 10:00:00",
    "2026-01-05T10:00:00+1:00",
    "2026-01-05T10:00:00+0100",
    "2026-01-05T10:00:00+25:00",
    "2026-01-05T10:00:00 01:00",
    "2026-01-05Z",
    "2026-01-05T10:00:00.Z",
    "ge2026-01-05",
])
def test_invalid_values_raise_invalid_date(text: str) -> None:
    with pytest.raises(InvalidDate):
        parse_range(text)


def test_invalid_date_is_a_value_error() -> None:
    assert issubclass(InvalidDate, ValueError)


# -- periods and formatting ------------------------------------------------------------------

def test_period_range_uses_the_start_low_and_the_end_high() -> None:
    assert period_range("2026-03-02", "2026-03-03", "Europe/Paris") == (
        dt(2026, 3, 1, 23), dt(2026, 3, 3, 23) - US)


def test_open_periods_extend_to_the_extremes() -> None:
    low, high = period_range("2026-03-02T09:00:00Z", None, "UTC")
    assert low == dt(2026, 3, 2, 9) and high.year == 9999
    low, high = period_range(None, "2026-03-02T09:00:00Z", "UTC")
    assert low.year == 1 and high == dt(2026, 3, 2, 9, 0, 1) - US


def test_format_instant_is_utc_with_milliseconds() -> None:
    assert format_instant(dt(2026, 3, 2, 8, 0, 0, 123456)) == "2026-03-02T08:00:00.123Z"
