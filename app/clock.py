"""The server's clock and how it writes instants: naive UTC inside, FHIR instants outside.

At the bottom of the layers (imports nothing of the application), so that storage, search,
audit and notifications share one notion of now.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def format_instant(moment: datetime) -> str:
    """FHIR instant with milliseconds for a naive-UTC or aware datetime."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> datetime:
    """Now, as a naive UTC datetime truncated to milliseconds (what we publish)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


def today() -> date:
    return datetime.now(UTC).date()
