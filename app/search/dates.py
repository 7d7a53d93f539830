"""FHIR date/dateTime/instant values as UTC ranges [low, high], both inclusive.

A partial value covers its whole period ("2026-11" is all of November); a value without an
offset is read in the server's default time zone. Ranges are naive UTC datetimes so that
SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

DATE_RE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)

MIN_DATETIME = datetime(1, 1, 1)
MAX_DATETIME = datetime(9999, 12, 31, 23, 59, 59, 999999)
ONE_MICROSECOND = timedelta(microseconds=1)


class InvalidDate(ValueError):
    pass


@lru_cache(maxsize=8)
def zone(name: str) -> tzinfo:
    return ZoneInfo(name)


@lru_cache(maxsize=64)
def _offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def to_utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


@lru_cache(maxsize=16384)  # a bulk load's slots share their times across practitioners
def parse_range(text: str, default_tz: str = "Europe/Paris") -> tuple[datetime, datetime]:
    """Return the UTC range covered by a FHIR date, dateTime or instant string."""
    match = DATE_RE.match(text.strip())
    if not match:
        raise InvalidDate(f"'{text}' is not a valid FHIR date, dateTime or instant")
    parts = match.groupdict()
    try:
        year = int(parts["year"])
        month = int(parts["month"] or 1)
        day = int(parts["day"] or 1)
        tz = _offset(parts["tz"]) if parts["tz"] else zone(default_tz)
        if parts["hour"] is None:
            start = datetime(year, month, day, tzinfo=tz)
            # Wall-clock steps either way; timedelta is ten times cheaper than relativedelta
            # where a unit has one length (days, minutes…), which is every write's case.
            step = (relativedelta(years=1) if parts["month"] is None
                    else relativedelta(months=1) if parts["day"] is None
                    else timedelta(days=1))
        else:
            fraction = (parts["fraction"] or "0")[:6].ljust(6, "0")
            start = datetime(year, month, day, int(parts["hour"]), int(parts["minute"]),
                             int(parts["second"] or 0), int(fraction), tzinfo=tz)
            if parts["second"] is None:
                step = timedelta(minutes=1)
            elif parts["fraction"] is None:
                step = timedelta(seconds=1)
            else:
                step = timedelta(microseconds=1)
    except ValueError as exc:
        raise InvalidDate(f"'{text}' is not a valid date: {exc}") from exc
    try:
        low = to_utc_naive(start)
    except OverflowError:  # year 1 with an eastern offset: before anything we store
        low = MIN_DATETIME
    try:
        high = to_utc_naive(start + step) - ONE_MICROSECOND
    except (OverflowError, ValueError):  # past the end of year 9999: after all we store
        high = MAX_DATETIME
    return low, max(low, high)


def period_range(start: str | None, end: str | None, default_tz: str) -> tuple[datetime, datetime]:
    low = parse_range(start, default_tz)[0] if start else MIN_DATETIME
    high = parse_range(end, default_tz)[1] if end else MAX_DATETIME
    return low, high




DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
UNENCODED_OFFSET = re.compile(r" (\d{2}:\d{2})$")


def date_search_value(value: str) -> tuple[str, str]:
    """The prefix (`eq` when none) and the date of a date search value. An unencoded `+` of
    a time-zone offset arrives as a space: it is read as the client meant it."""
    prefix, text = "eq", value
    if len(value) > 2 and value[:2] in DATE_PREFIXES and not value[:2].isdigit():
        prefix, text = value[:2], value[2:]
    return prefix, UNENCODED_OFFSET.sub(r"+\1", text)
